#!/usr/bin/env bash
# A multi-node Ray cluster on this machine, for trying `ray job submit` (and ray_jobs/archive_job.py)
# without a real cluster: one head plus N-1 worker nodes on 127.0.0.1, each with its own ports, all
# sharing one temp dir, so that nothing collides with another Ray on the same machine.
#
#   cluster/local/ray-local.sh start [--nodes N] [--cpus-per-node C]
#   cluster/local/ray-local.sh stop
#   cluster/local/ray-local.sh status
#
# Settings (environment):
#   RAY_LOCAL_PORT            GCS port of the head                       (default 26380)
#   RAY_LOCAL_DASHBOARD_PORT  dashboard / job submission port            (default 28266)
#   RAY_LOCAL_PORT_BASE       first of the per-node port blocks          (default 27000)
#                             node K uses RAY_LOCAL_PORT_BASE + 100*K .. +99: node manager +0,
#                             object manager +1, dashboard agent +2/+3, runtime env agent +4,
#                             metrics +5, Ray client server +6 (head only), workers +10..+99
#   RAY_LOCAL_TMP             Ray temp dir, keep it short (Unix socket paths are limited to 107 bytes)
#                             (default /tmp/ray-local-$UID)
#   RAY_LOCAL_OBJECT_STORE_BYTES  object store per node                  (default 200000000)
#   RAY_LOCAL_START_TIMEOUT   seconds to wait for the cluster to come up (default 120)
#
# `start` prints the RAY_ADDRESS for `ray job submit` and the GCS address for `ray status` / ray.init.
# Each node runs under `ray start --block`, its pid recorded; `stop` ends exactly those nodes
# (and any leftover process whose command line names this cluster's temp dir), never another Ray.
set -euo pipefail

PROG=$(basename "$0")
GCS_PORT="${RAY_LOCAL_PORT:-26380}"
DASHBOARD_PORT="${RAY_LOCAL_DASHBOARD_PORT:-28266}"
PORT_BASE="${RAY_LOCAL_PORT_BASE:-27000}"
TMP_DIR="${RAY_LOCAL_TMP:-/tmp/ray-local-$(id -u)}"
OBJECT_STORE_BYTES="${RAY_LOCAL_OBJECT_STORE_BYTES:-200000000}"
START_TIMEOUT="${RAY_LOCAL_START_TIMEOUT:-120}"
STATE_DIR="$TMP_DIR/ray-local"
HOST=127.0.0.1

# Job submission and a second node on one machine need token authentication off.
export RAY_AUTH_MODE=disabled
export RAY_USAGE_STATS_ENABLED=0

usage() {
  cat <<EOF
usage: $PROG start [--nodes N] [--cpus-per-node C]
       $PROG stop
       $PROG status

start   a head plus N-1 worker nodes on $HOST (default N=2, C=2), temp dir $TMP_DIR
stop    stop every node that start started
status  show the cluster (ray status)

Ports and temp dir: RAY_LOCAL_PORT (GCS, $GCS_PORT), RAY_LOCAL_DASHBOARD_PORT ($DASHBOARD_PORT),
RAY_LOCAL_PORT_BASE ($PORT_BASE), RAY_LOCAL_TMP ($TMP_DIR); see the header of this script.
EOF
}

die() {
  echo "$PROG: error: $*" >&2
  exit 1
}

is_uint() {
  [[ "$1" =~ ^[0-9]+$ ]]
}

port_in_use() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# Whether PID is one of this cluster's processes: this user's, and its command line names the temp dir
# (so a recorded pid that the system has since reused for something else is never touched).
ours() {
  local dir=/proc/$1 cmdline
  [[ -O "$dir" ]] || return 1
  cmdline=$(tr '\0' ' ' <"$dir/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *"$TMP_DIR/session_"* || "$cmdline" == *"--temp-dir=$TMP_DIR "* ]]
}

alive() {
  kill -0 "$1" 2>/dev/null && ours "$1"
}

# Every process of this cluster still running.
stray_pids() {
  local dir pid
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
    if ours "$pid"; then echo "$pid"; fi
  done
  return 0
}

recorded_pids() {
  local f
  for f in "$STATE_DIR"/node-*.pid; do
    [[ -e "$f" ]] && cat "$f"
  done
  return 0
}

node_count() {
  # Alive nodes, from the autoscaler's view ("Active:" lists one "1 node_<id>" line per node).
  ray status --address "$HOST:$GCS_PORT" 2>/dev/null | grep -cE '^ +1 node_[0-9a-f]{16,}' || true
}

start_node() {
  local k=$1 cpus=$2 base=$((PORT_BASE + 100 * $1))
  local log="$STATE_DIR/node-$k.log"
  local args=(
    --block --disable-usage-stats
    --node-ip-address="$HOST"
    --temp-dir="$TMP_DIR"
    --num-cpus="$cpus"
    --resources="{\"node_$k\": 1}"
    --object-store-memory="$OBJECT_STORE_BYTES"
    --node-manager-port="$base"
    --object-manager-port="$((base + 1))"
    --dashboard-agent-listen-port="$((base + 2))"
    --dashboard-agent-grpc-port="$((base + 3))"
    --runtime-env-agent-port="$((base + 4))"
    --metrics-export-port="$((base + 5))"
    --min-worker-port="$((base + 10))"
    --max-worker-port="$((base + 99))"
  )
  if [[ "$k" == 0 ]]; then
    args+=(--head --port="$GCS_PORT" --include-dashboard=true --dashboard-host="$HOST"
           --dashboard-port="$DASHBOARD_PORT" --ray-client-server-port="$((base + 6))")
  else
    args+=(--address="$HOST:$GCS_PORT")
  fi
  # Each node detached in its own session, so that signals to the caller's process group spare it.
  local launcher=()
  command -v setsid >/dev/null 2>&1 && launcher=(setsid)
  nohup "${launcher[@]}" ray start "${args[@]}" </dev/null >"$log" 2>&1 &
  echo $! >"$STATE_DIR/node-$k.pid"
}

wait_for() {
  local what=$1 deadline=$((SECONDS + START_TIMEOUT))
  shift
  until "$@"; do
    local pid
    for pid in $(recorded_pids); do
      alive "$pid" || { tail -n 30 "$STATE_DIR"/node-*.log >&2 || true; die "a node exited while waiting for $what (logs: $STATE_DIR)"; }
    done
    ((SECONDS < deadline)) || die "timed out after ${START_TIMEOUT}s waiting for $what (logs: $STATE_DIR)"
    sleep 1
  done
}

gcs_up() {
  ray status --address "$HOST:$GCS_PORT" >/dev/null 2>&1
}

dashboard_up() {
  port_in_use "$DASHBOARD_PORT"
}

nodes_up() {
  [[ "$(node_count)" -ge "$NODES" ]]
}

cmd_start() {
  NODES=2
  local cpus=2
  while (($#)); do
    case "$1" in
      --nodes) [[ $# -ge 2 ]] || die "--nodes needs a value"; NODES=$2; shift 2 ;;
      --nodes=*) NODES=${1#*=}; shift ;;
      --cpus-per-node) [[ $# -ge 2 ]] || die "--cpus-per-node needs a value"; cpus=$2; shift 2 ;;
      --cpus-per-node=*) cpus=${1#*=}; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option for start: $1" ;;
    esac
  done
  if ! { is_uint "$NODES" && ((NODES >= 1 && NODES <= 50)); }; then
    die "--nodes must be a whole number from 1 to 50, not '$NODES'"
  fi
  if ! { is_uint "$cpus" && ((cpus >= 1)); }; then
    die "--cpus-per-node must be a whole number >= 1, not '$cpus'"
  fi
  for v in GCS_PORT DASHBOARD_PORT PORT_BASE; do
    is_uint "${!v}" || die "$v must be a port number, not '${!v}'"
  done
  ((PORT_BASE + 100 * NODES <= 65535)) || die "RAY_LOCAL_PORT_BASE=$PORT_BASE leaves no room for $NODES nodes"
  ((${#TMP_DIR} <= 40)) || die "RAY_LOCAL_TMP=$TMP_DIR is too long for Ray's socket paths (40 characters at most)"

  local pid
  for pid in $(recorded_pids); do
    if alive "$pid"; then die "a cluster from $TMP_DIR is already running (pid $pid); run '$PROG stop' first"; fi
  done
  for port in "$GCS_PORT" "$DASHBOARD_PORT"; do
    if port_in_use "$port"; then
      die "port $port on $HOST is in use; stop what uses it or set RAY_LOCAL_PORT / RAY_LOCAL_DASHBOARD_PORT"
    fi
  done
  for ((k = 0; k < NODES; k++)); do
    if port_in_use "$((PORT_BASE + 100 * k))"; then
      die "port $((PORT_BASE + 100 * k)) on $HOST is in use; set RAY_LOCAL_PORT_BASE"
    fi
  done

  mkdir -p "$STATE_DIR"
  rm -f "$STATE_DIR"/node-*.pid
  start_node 0 "$cpus"
  wait_for "the head's GCS on $HOST:$GCS_PORT" gcs_up
  for ((k = 1; k < NODES; k++)); do
    start_node "$k" "$cpus"
  done
  wait_for "the dashboard on $HOST:$DASHBOARD_PORT" dashboard_up
  wait_for "$NODES nodes to join" nodes_up

  cat <<EOF
Ray cluster up: $NODES node(s) x $cpus CPU(s) on $HOST, temp dir $TMP_DIR
  export RAY_AUTH_MODE=disabled
  export RAY_ADDRESS=http://$HOST:$DASHBOARD_PORT   # for ray job submit / ray job status
  GCS address: $HOST:$GCS_PORT                       # for ray status --address, ray.init(address=...)
  stop it with: $PROG stop
EOF
}

cmd_stop() {
  (($# == 0)) || { usage >&2; die "stop takes no options"; }
  local pids pid
  pids=$(recorded_pids)
  # `ray start --block` stops its node's processes when it gets SIGTERM (signalling them all at once
  # can leave the GCS hanging in its graceful shutdown); what is left after a while is killed.
  for pid in $pids; do
    if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  local deadline=$((SECONDS + 15)) left
  while ((SECONDS < deadline)); do
    left=""
    for pid in $pids; do
      if alive "$pid"; then left+=" $pid"; fi
    done
    [[ -z "$left" && -z "$(stray_pids)" ]] && break
    sleep 1
  done
  # Anything still naming this cluster's temp dir (a node that ignored SIGTERM, a worker that outlived
  # its raylet).
  local strays
  strays=$(stray_pids)
  if [[ -n "$strays" ]]; then
    # shellcheck disable=SC2086
    kill -TERM $strays 2>/dev/null || true
    sleep 2
    strays=$(stray_pids)
    # shellcheck disable=SC2086
    if [[ -n "$strays" ]]; then kill -KILL $strays 2>/dev/null || true; fi
  fi
  rm -f "$STATE_DIR"/node-*.pid
  if [[ -n "$pids" ]]; then
    echo "Ray cluster in $TMP_DIR stopped"
  else
    echo "no Ray cluster recorded in $TMP_DIR"
  fi
}

cmd_status() {
  ray status --address "$HOST:$GCS_PORT"
}

main() {
  (($#)) || { usage >&2; exit 2; }
  local cmd=$1
  shift
  case "$cmd" in
    -h|--help|help) usage; exit 0 ;;
    start|stop|status) ;;
    *) usage >&2; die "unknown command: $cmd" ;;
  esac
  command -v ray >/dev/null 2>&1 || die "the 'ray' command is not on PATH; activate the venv that has ray[default] installed"
  "cmd_$cmd" "$@"
}

main "$@"
