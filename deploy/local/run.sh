#!/usr/bin/env bash
# Runs a local cluster on loopback in the foreground: 3 metasrv nodes
# (n1 on 3002/3003, n2 on 3102/3103, n3 on 3202/3203), 3 datanodes (ids 1-3
# on 4001-4003) and a demo table. Ctrl-C stops it.
# Usage: deploy/local/run.sh [BIN_DIR] [DATA_DIR]
set -euo pipefail
bin=${1:-bin}
data=${2:-data/local}
mkdir -p "$data"
peers="n1=127.0.0.1:3003,n2=127.0.0.1:3103,n3=127.0.0.1:3203"
pids=()

stop() {
  trap - INT TERM
  echo "stopping the cluster..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "stopped. Data is kept in $data (make clean-data removes it)."
  exit 0
}
trap stop INT TERM HUP

for i in 1 2 3; do
  base=$(( 2902 + i * 100 ))
  "$bin/metasrv" --node-id "n$i" --rpc-addr "127.0.0.1:$base" --raft-addr "127.0.0.1:$((base + 1))" \
    --data-dir "$data/n$i" --peers "$peers" \
    > >(sed -u "s/^/[n$i] /") 2>&1 &
  pids+=($!)
done

for _ in $(seq 1 100); do
  if curl -fsS -m 1 http://127.0.0.1:3002/admin/leader >/dev/null 2>&1; then break; fi
  sleep 0.1
done

metas="127.0.0.1:3002,127.0.0.1:3102,127.0.0.1:3202"
for i in 1 2 3; do
  "$bin/datanode" --id "$i" --addr "127.0.0.1:400$i" --metasrv "$metas" --data-dir "$data/dn$i" \
    > >(sed -u "s/^/[dn$i] /") 2>&1 &
  pids+=($!)
done

# The demo table: 6 regions spread over the three datanodes, once all are alive.
for _ in $(seq 1 100); do
  alive=$(curl -s -m 2 http://127.0.0.1:3002/admin/datanodes | grep -o '"status":"alive"' | wc -l || true)
  [ "$alive" -ge 3 ] && break
  sleep 0.2
done
for _ in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:3002/admin/tables \
    -H 'Content-Type: application/json' -d '{"name":"demo","regions":6}' || true)
  [ "$code" = 201 ] || [ "$code" = 409 ] && break
  sleep 0.2
done
cat <<MSG

metasrv cluster is up: n1 127.0.0.1:3002, n2 127.0.0.1:3102, n3 127.0.0.1:3202 (Ctrl-C stops it)
datanodes 1-3 on 127.0.0.1:4001-4003 hold the 6 regions of table "demo".
Try, against any node:
  curl -X POST 'http://localhost:3002/admin/maintenance?enable=true'
  curl -X GET http://localhost:3102/admin/maintenance
  curl -X POST 'http://localhost:3202/admin/maintenance?enable=false'
  curl 'http://localhost:3002/admin/maintenance?verbose=true'
  curl http://localhost:3002/admin/leader
  curl http://localhost:3002/admin/cluster
  curl http://localhost:3002/admin/events
  curl http://localhost:3002/admin/regions
  curl http://localhost:3002/admin/datanodes
Watch a failover: kill one datanode (pkill -f 'datanode --id 1 '), then after
about 15 s (GreptimeDB's default detection) its regions are on the others:
  curl 'http://localhost:3002/admin/regions?datanode=1'
With maintenance on (enable=true) nothing moves until you disable it.

MSG
wait
