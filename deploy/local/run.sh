#!/usr/bin/env bash
# Runs a local cluster on loopback in the foreground: 3 metasrv nodes
# (n1 on 3002/3003, n2 on 3102/3103, n3 on 3202/3203), 3 datanodes (dn1-dn3,
# ids 1-3 on 4001-4003) and a demo table. Ctrl-C stops it.
#
# Usage:
#   deploy/local/run.sh [BIN_DIR] [DATA_DIR]          run the cluster (make run)
#   deploy/local/run.sh restart NODE [DATA_DIR]       restart one node with its flags (make restart NODE=n2)
#   deploy/local/run.sh stop NODE [DATA_DIR]          stop one node, e.g. to watch a failover (make stop NODE=dn1)
#   deploy/local/run.sh start NODE [DATA_DIR]         start a stopped node again (make start NODE=dn1)
#   deploy/local/run.sh status [DATA_DIR]             the nodes, their PIDs and command lines
# NODE is n1, n2, n3, dn1, dn2 or dn3 (datanode-1 and datanode1 mean dn1). BIN_DIR
# defaults to bin, DATA_DIR to data/local. restart/stop/start/status work from
# another terminal while the cluster runs.
#
# What the running cluster keeps in DATA_DIR, besides each node's data dir:
#   NODE.log    the node's output; the cluster's terminal shows it, prefixed [NODE]
#               (the log of the run before is kept as NODE.log.1)
#   NODE.pid    the node's PID (removed when it stops)
#   NODE.args   its command line, NUL-separated: restart and start run exactly this
#   cluster.pid, cluster.args, cluster.cwd   this script's PID, command line and directory
# A PID is signalled only while that process's command line is still the one recorded.
set -euo pipefail

default_data=data/local
nodes=(n1 n2 n3 dn1 dn2 dn3)
self=$0

usage() { sed -n '6,14s/^# \{0,1\}//p' "$self"; }
die() { echo "run.sh: $*" >&2; exit 1; }

# canon NAME: the canonical node name, or fail.
canon() {
  case "$1" in
    n[123] | dn[123]) echo "$1" ;;
    datanode-[123] | datanode[123]) echo "dn${1: -1}" ;;
    *) return 1 ;;
  esac
}

# proc_args PID: the process's command line, arguments separated by spaces
# (nothing when there is no such process or it has exited).
proc_args() {
  local s
  if [ -r "/proc/$1/cmdline" ]; then
    s=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true)
    echo "${s% }"
  else
    ps -ww -o args= -p "$1" 2>/dev/null || true
  fi
}

# read_args NODE: the recorded command line of NODE into the array cmd.
read_args() {
  cmd=()
  [ -f "$data/$1.args" ] || return 1
  local a
  while IFS= read -r -d '' a; do cmd+=("$a"); done <"$data/$1.args"
  [ "${#cmd[@]}" -gt 0 ]
}

# node_pid NODE: prints NODE's PID if it runs with the recorded command line.
node_pid() {
  local pid
  read_args "$1" || return 1
  pid=$(cat "$data/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(proc_args "$pid")" = "${cmd[*]}" ] && echo "$pid"
}

# cluster_pid: prints the PID of the run.sh that runs the cluster in $data.
cluster_pid() {
  local pid
  pid=$(cat "$data/cluster.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -f "$data/cluster.args" ] &&
    [ "$(proc_args "$pid")" = "$(cat "$data/cluster.args")" ] && echo "$pid"
}

# shows PATH as typed for the banner: the data dir argument only when not the default.
data_arg() { if [ "$data_shown" != "$default_data" ]; then echo " $data_shown"; fi; }

# start_node NODE [detach]: starts NODE's recorded command line, appending to
# NODE.log, in a process group of its own (set -m): Ctrl-C in a terminal reaches
# only the script there, and the cluster's script then sends each node a single
# SIGTERM (a second signal makes a metasrv node skip its leadership hand-over).
# From restart/start (detach) it also runs under nohup, so it outlives that terminal.
start_node() {
  local n=$1 detach=${2:-}
  read_args "$n" || die "no recorded command line for $n in $data"
  set -m
  if [ -n "$detach" ]; then
    nohup "${cmd[@]}" >>"$data/$n.log" 2>&1 </dev/null &
  else
    "${cmd[@]}" >>"$data/$n.log" 2>&1 </dev/null &
  fi
  echo $! >"$data/$n.pid"
  set +m
}

# stop_node NODE: SIGTERM, then SIGKILL after 20 s; fails if NODE was not running.
stop_node() {
  local n=$1 pid i
  pid=$(node_pid "$n") || return 1
  read_args "$n" # node_pid ran in a subshell
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 200); do
    [ "$(proc_args "$pid")" = "${cmd[*]}" ] || break
    [ "$i" -eq 200 ] && { echo "$n (pid $pid) still runs after 20 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
    sleep 0.1
  done
  rm -f "$data/$n.pid"
}

# print_nodes: one block per node: name, PID (or "stopped"), command to restart it, command line.
print_nodes() {
  local n pid
  for n in "${nodes[@]}"; do
    read_args "$n" || continue
    if pid=$(node_pid "$n"); then pid="pid $pid"; else pid="stopped"; fi
    printf '  %-4s %-11s %s restart %s%s\n' "$n" "$pid" "$self" "$n" "$(data_arg)"
    printf '                   %s\n' "${cmd[*]}"
  done
}

# json_field KEY JSON: a string or literal field of a flat JSON object ("" for null).
json_field() {
  local v
  v=$(printf '%s' "$2" | sed -En "s/.*\"$1\":(\"(\\\\.|[^\"\\\\])*\"|[^,}]*).*/\1/p")
  [ "$v" = null ] && v=
  v=${v#\"}
  echo "${v%\"}"
}

# print_maintenance: the cluster's maintenance state, and how to turn it off when on.
print_maintenance() {
  local m by reason since expires
  m=$(curl -s -m 3 'http://127.0.0.1:3002/admin/maintenance?verbose=true' || true)
  case "$m" in
    *'"enabled":true'*)
      by=$(json_field by "$m"); reason=$(json_field reason "$m")
      since=$(json_field since "$m"); expires=$(json_field expires_at "$m")
      echo "MAINTENANCE IS ON (the cluster's state in $data_shown keeps it across runs): failover and balancing are paused."
      echo "  by: ${by:-(not given)}  reason: ${reason:-(not given)}  since: ${since:-?}  expires: ${expires:-never}"
      echo "  turn it off: curl -X POST 'http://localhost:3002/admin/maintenance?enable=false'"
      ;;
    *'"enabled":false'*) echo "Maintenance is off (failover and balancing are active)." ;;
    *) echo "Maintenance state unknown: GET /admin/maintenance?verbose=true answered '${m:-nothing}'." ;;
  esac
}

# ---- restart / stop / start / status: one node of a running cluster ----

sub=run
case "${1:-}" in
  restart | stop | start | status) sub=$1; shift ;;
  -h | --help | help) usage; exit 0 ;;
esac

if [ "$sub" != run ]; then
  if [ "$sub" = status ]; then
    data=${1:-$default_data}
  else
    [ -n "${1:-}" ] || die "$sub: which node? one of ${nodes[*]} (usage: $self $sub NODE [DATA_DIR])"
    node=$(canon "$1") || die "$sub: unknown node '$1': one of ${nodes[*]} (datanode-1 also means dn1)"
    data=${2:-$default_data}
  fi
  data_shown=$data
  [ -d "$data" ] || die "no local cluster data in '$data' (start the cluster with make run or $self)"
  if ! cpid=$(cluster_pid); then
    running=()
    for n in "${nodes[@]}"; do node_pid "$n" >/dev/null && running+=("$n"); done
    msg="the local cluster of $data is not running (start it with make run or $self)"
    [ "${#running[@]}" -gt 0 ] && msg="$msg; still running from an earlier run: ${running[*]}"
    if [ "$sub" = stop ] && [ "${#running[@]}" -gt 0 ]; then
      echo "run.sh: $msg" >&2 # stopping a leftover is still allowed
    else
      die "$msg; nothing to $sub"
    fi
  fi
  case "$sub" in
    status)
      echo "cluster (run.sh pid $cpid) in $data, logs in $data/NODE.log:"
      print_nodes
      ;;
    stop)
      pid=$(node_pid "$node") || die "$node is not running; nothing stopped"
      stop_node "$node"
      echo "$node (pid $pid) stopped. Start it again: $self start $node$(data_arg)"
      ;;
    start | restart)
      # The recorded command lines are relative to the cluster's directory.
      data=$(cd "$data" && pwd)
      cd "$(cat "$data/cluster.cwd")"
      if pid=$(node_pid "$node"); then
        [ "$sub" = start ] && die "$node already runs (pid $pid); use restart"
        stop_node "$node"
        echo "$node (pid $pid) stopped."
      elif [ "$sub" = restart ]; then
        echo "$node was not running; starting it."
      fi
      start_node "$node" detach
      pid=$(cat "$data/$node.pid")
      echo "$node started, pid $pid: ${cmd[*]}"
      echo "logging to $data_shown/$node.log (shown, prefixed [$node], by the cluster's terminal)"
      sleep 0.5
      node_pid "$node" >/dev/null || { tail -n 20 "$data/$node.log" >&2; die "$node exited at once (its log is above)"; }
      if [ "${node#n}" != "$node" ]; then
        port=$((2902 + ${node#n} * 100))
        for _ in $(seq 1 150); do
          code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port/admin/ready" || true)
          [ "$code" = 200 ] && { echo "$node is ready (GET http://127.0.0.1:$port/admin/ready is 200)."; break; }
          sleep 0.1
        done
        [ "$code" = 200 ] || echo "$node is not ready yet after 15 s (GET /admin/ready: ${code:-no answer}); see its log."
      fi
      ;;
  esac
  exit 0
fi

# ---- run: the cluster in the foreground ----

bin=${1:-bin}
data=${2:-$default_data}
data_shown=$data
mkdir -p "$data"
if cpid=$(cluster_pid); then
  die "a local cluster already runs from $data (run.sh pid $cpid); Ctrl-C it first, or see: $self status$(data_arg)"
fi
for n in "${nodes[@]}"; do
  if pid=$(node_pid "$n"); then
    die "$n from an earlier run of $data still runs (pid $pid); stop it: $self stop $n$(data_arg)"
  fi
done
echo $$ >"$data/cluster.pid"
proc_args $$ >"$data/cluster.args"
pwd >"$data/cluster.cwd"
peers="n1=127.0.0.1:3003,n2=127.0.0.1:3103,n3=127.0.0.1:3203"
metas="127.0.0.1:3002,127.0.0.1:3102,127.0.0.1:3202"
tails=()

# stop RC: stops every node (one SIGTERM each, SIGKILL after 20 s) and the log
# followers, then exits with RC. Runs on Ctrl-C, SIGTERM, SIGHUP and any exit.
stop() {
  trap - INT TERM HUP EXIT
  set +e # a closed terminal must not keep the nodes from being stopped
  echo "stopping the cluster..."
  local n pid left i
  for n in "${nodes[@]}"; do
    if pid=$(node_pid "$n"); then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for i in $(seq 1 200); do
    left=()
    for n in "${nodes[@]}"; do node_pid "$n" >/dev/null && left+=("$n"); done
    [ "${#left[@]}" -eq 0 ] && break
    if [ "$i" -eq 200 ]; then
      echo "still running after 20 s, SIGKILL: ${left[*]}"
      for n in "${left[@]}"; do pid=$(node_pid "$n") && kill -KILL "$pid" 2>/dev/null; done
    fi
    sleep 0.1
  done
  sleep 0.3 # let the log followers print the last lines
  for p in "${tails[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${tails[@]}"; do wait "$p" 2>/dev/null || true; done
  for n in "${nodes[@]}"; do rm -f "$data/$n.pid"; done
  rm -f "$data/cluster.pid"
  echo "stopped. Data is kept in $data (make clean-data removes it)."
  exit "$1"
}
trap 'stop 0' INT TERM HUP
trap 'stop $?' EXIT

# follow NODE: show NODE.log on this terminal, prefixed [NODE], across restarts.
follow() {
  [ -f "$data/$1.log" ] && mv -f "$data/$1.log" "$data/$1.log.1"
  : >"$data/$1.log"
  set -m
  tail -n +1 -F "$data/$1.log" 2>/dev/null > >(trap '' INT; exec sed -u "s/^/[$1] /") &
  tails+=($!)
  set +m
}

for i in 1 2 3; do
  base=$((2902 + i * 100))
  follow "n$i"
  printf '%s\0' "$bin/metasrv" --node-id "n$i" --rpc-addr "127.0.0.1:$base" --raft-addr "127.0.0.1:$((base + 1))" \
    --data-dir "$data/n$i" --peers "$peers" >"$data/n$i.args"
  start_node "n$i"
done

for _ in $(seq 1 100); do
  if curl -fsS -m 1 http://127.0.0.1:3002/admin/leader >/dev/null 2>&1; then break; fi
  sleep 0.1
done

for i in 1 2 3; do
  follow "dn$i"
  printf '%s\0' "$bin/datanode" --id "$i" --addr "127.0.0.1:400$i" --metasrv "$metas" --data-dir "$data/dn$i" \
    >"$data/dn$i.args"
  start_node "dn$i"
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
  { [ "$code" = 201 ] || [ "$code" = 409 ]; } && break
  sleep 0.2
done
r=$(data_arg)
cat <<MSG

metasrv cluster is up: n1 127.0.0.1:3002, n2 127.0.0.1:3102, n3 127.0.0.1:3202 (Ctrl-C stops it)
datanodes 1-3 on 127.0.0.1:4001-4003 hold the 6 regions of table "demo".
Processes (logs in $data/NODE.log), each with the command that restarts it with its flags:
$(print_nodes)
  stop one: $self stop NODE$r   start it again: $self start NODE$r
  (make restart|stop|start NODE=n2 does the same; $self status$r lists them)
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
Watch a failover: stop one datanode ($self stop dn1$r), then after
about 15 s (GreptimeDB's default detection) its regions are on the others:
  curl 'http://localhost:3002/admin/regions?datanode=1'
With maintenance on (enable=true) nothing moves until you disable it.
Bring it back with $self start dn1$r.
$(print_maintenance)

MSG
wait
