#!/usr/bin/env bash
# Tracker benchmark: the same load against the reference (bittorrent-tracker 11.2.3 on
# Node), ours (cmd/tracker) and the bare forwarding floor (bench/wsfloor: "floor" is its
# epoll transport, "floor-goroutine" gobwas/ws with a goroutine per connection, "floor-coder"
# coder/websocket with a goroutine per connection), in one run.
#
#   bench/tracker/run.sh                 all three, default sizes
#   SERVERS="reference ours" bench/tracker/run.sh
#   CONNS=1000 IDLE_CONNS=19000 DURATION=20s PACE=1s bench/tracker/run.sh
#
# Per server: (1) closed loop, CONNS connections announcing as fast as replies come
# (delivered messages/s, server CPU per delivered message, latency under saturation);
# (2) paced, CONNS connections each announcing every PACE (p50/p99 announce->reply at
# CONNS active connections); (3) a fresh server holding IDLE_CONNS idle connections
# (RSS per connection). The generator is its own process (the open-file limit, 20,000,
# is per process). CPU and RSS come from /proc/<server pid>.
#
# Holds /tmp/switchboard-bench.lock throughout, so benchmarks never overlap; other
# builds and tests may still run beside it, and the report says what the load was.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

if [ -z "${BENCH_LOCKED:-}" ]; then
  export BENCH_LOCKED=1
  exec flock /tmp/switchboard-bench.lock "$0" "$@"
fi

SERVERS=${SERVERS:-"reference ours floor floor-goroutine floor-coder"}
CONNS=${CONNS:-1000}
IDLE_CONNS=${IDLE_CONNS:-19000}
WARMUP=${WARMUP:-5s}
DURATION=${DURATION:-20s}
PACE=${PACE:-2s}
OFFERS=${OFFERS:-10}
TORRENTS=${TORRENTS:-100}
OUT=${OUT:-/tmp/switchboard-tracker-bench}
mkdir -p "$OUT"
WORK=$(mktemp -d)
RESULTS=$OUT/results.txt
: > "$RESULTS"

log() { echo "== $*" >&2; }

log "building trackerload and wsfloor"
go build -o "$WORK/trackerload" ./bench/trackerload
go build -o "$WORK/wsfloor" ./bench/wsfloor
OURS=""
if compgen -G "cmd/tracker/*.go" >/dev/null; then
  CGO_ENABLED=0 go build -trimpath -o "$WORK/tracker" ./cmd/tracker && OURS=$WORK/tracker
elif [ -x bin/tracker ]; then
  OURS=$ROOT/bin/tracker
fi

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap 'stop_server; rm -rf "$WORK"' EXIT

# wait_url LOG: every server binds port 0 and logs its ws:// URL; sets URL from the log.
wait_url() {
  local logf=$1
  for _ in $(seq 1 200); do
    URL=$(grep -o -m1 'ws://127\.0\.0\.1:[0-9][0-9]*' "$logf" 2>/dev/null || true)
    if [ -n "$URL" ]; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "server did not report its URL; its log:" >&2
  cat "$logf" >&2
  return 1
}

# start_server NAME: starts it in the background on a free port; sets SERVER_PID and URL.
start_server() {
  local name=$1 port=0
  case $name in
    reference)
      [ -d test/reference/node_modules/bittorrent-tracker ] || { echo "run: (cd test/reference && npm ci --ignore-scripts)" >&2; return 1; }
      (cd test/reference && exec node server.mjs "$port") > "$OUT/$name.log" 2>&1 &
      ;;
    ours)
      # Limits raised to what the benchmark needs (it is one IP and it floods on purpose);
      # everything else at its default.
      SWITCHBOARD_TRACKER_LISTEN=127.0.0.1:$port \
      SWITCHBOARD_TRACKER_OPS_LISTEN=127.0.0.1:0 \
      SWITCHBOARD_TRACKER_LOG_LEVEL=info \
      SWITCHBOARD_TRACKER_LIMITS_CONNECTIONS=20000 \
      SWITCHBOARD_TRACKER_LIMITS_CONNECTIONS_PER_IP=20000 \
      SWITCHBOARD_TRACKER_LIMITS_MESSAGES_PER_SECOND=100000 \
      "$OURS" > "$OUT/$name.log" 2>&1 &
      ;;
    floor)
      "$WORK/wsfloor" -transport epoll -listen "127.0.0.1:$port" > "$OUT/$name.log" 2>&1 &
      ;;
    floor-goroutine)
      "$WORK/wsfloor" -transport goroutine -listen "127.0.0.1:$port" > "$OUT/$name.log" 2>&1 &
      ;;
    floor-coder)
      "$WORK/wsfloor" -transport coder -listen "127.0.0.1:$port" > "$OUT/$name.log" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  wait_url "$OUT/$name.log"
}

load() { # load LABEL extra-args...
  local label=$1; shift
  "$WORK/trackerload" -url "$URL/" -server-pid "$SERVER_PID" -label "$label" \
    -conns "$CONNS" -offers "$OFFERS" -torrents "$TORRENTS" -warmup "$WARMUP" -duration "$DURATION" "$@" \
    2> >(sed "s/^/   [$label] /" >&2) | tee -a "$RESULTS"
}

{
  echo "# tracker benchmark $(date -u +%FT%TZ)"
  echo "# commit $(git describe --always --dirty 2>/dev/null || echo ?), $(nproc) cores, $(uname -r), node $(node --version 2>/dev/null || echo none)"
  echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# CONNS=$CONNS IDLE_CONNS=$IDLE_CONNS WARMUP=$WARMUP DURATION=$DURATION PACE=$PACE OFFERS=$OFFERS TORRENTS=$TORRENTS"
} | tee -a "$RESULTS" >&2

for name in $SERVERS; do
  if [ "$name" = ours ] && [ -z "$OURS" ]; then log "ours: no cmd/tracker or bin/tracker, skipped"; continue; fi
  log "$name: closed loop, $CONNS connections"
  start_server "$name"
  load "$name"
  log "$name: paced, $CONNS connections, one announce each per $PACE"
  load "$name-paced" -pace "$PACE"
  stop_server
  log "$name: $IDLE_CONNS idle connections (fresh server)"
  start_server "$name"
  sleep 1 # let the fresh process finish starting before its RSS is read
  load "$name-idle" -mode idle -conns "$IDLE_CONNS" -dial-concurrency 128
  stop_server
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RESULTS" >&2

"$ROOT/bench/tracker/table.sh" "$RESULTS" | tee "$OUT/results.md"
log "raw results: $RESULTS; table: $OUT/results.md"
