#!/usr/bin/env bash
# Runs a local 3-node metasrv cluster on loopback in the foreground:
# n1 on 3002/3003, n2 on 3102/3103, n3 on 3202/3203. Ctrl-C stops it.
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
trap stop INT TERM

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
cat <<MSG

metasrv cluster is up: n1 127.0.0.1:3002, n2 127.0.0.1:3102, n3 127.0.0.1:3202 (Ctrl-C stops it)
Try, against any node:
  curl -X POST 'http://localhost:3002/admin/maintenance?enable=true'
  curl -X GET http://localhost:3102/admin/maintenance
  curl -X POST 'http://localhost:3202/admin/maintenance?enable=false'
  curl 'http://localhost:3002/admin/maintenance?verbose=true'
  curl http://localhost:3002/admin/leader
  curl http://localhost:3002/admin/cluster
  curl http://localhost:3002/admin/events

MSG
wait
