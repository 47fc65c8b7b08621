#!/usr/bin/env bash
# credapi vs a minimal Node.js server doing the same work (HMAC + JSON), measured in one run:
# wrk against each in turn, requests/s and p99 from wrk, server CPU from /proc/<pid>/stat.
# bench/httpfloor (epoll loops answering a fixed response, no work at all), run with one loop
# and with one loop per core, shows the floor: the CPU the kernel and a minimal loop spend per
# request — the least any server can spend here, whatever its user space does. Run again with
# -handler, it answers through credapi's real handler: the floor plus the unavoidable work,
# i.e. the best a hand-written transport for credapi could reach.
# Usage: bench/credapi/run.sh [duration=15s] [connections=64]
# Wrap in `flock /tmp/switchboard-bench.lock` when others share the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
dur=${1:-15s}
conns=${2:-64}
for tool in wrk node go; do
  command -v "$tool" >/dev/null || { echo "bench/credapi: $tool is not installed (.ci/run installs wrk)" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

CGO_ENABLED=0 go build -trimpath -o "$work/credapi" ./cmd/credapi
CGO_ENABLED=0 go build -trimpath -o "$work/httpfloor" ./bench/httpfloor
secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
go_port=18480 node_port=18481 floor_port=18483 floor1_port=18484 hand_port=18485 hand1_port=18486 raw_port=18487 rawhand_port=18488 ops_port=19480
origin=http://localhost:3000

# credapi with its production defaults except what the benchmark needs: loopback ports,
# the same URIs and origin as the Node server, and per-client and global rate limits far
# above the offered load (both limiters still run on every request).
SWITCHBOARD_CREDAPI_AUTH_SECRETS="$secret" "$work/credapi" \
  --listen=127.0.0.1:$go_port --ops.listen=127.0.0.1:$ops_port --log.level=warn \
  --ice.urls=stun:127.0.0.1:3478,turn:127.0.0.1:3478?transport=udp,turn:127.0.0.1:3478?transport=tcp \
  --cors.origins=$origin,https://chat.example.com \
  --rate_limit.per_minute=1000000000 --rate_limit.burst=1000000 \
  --rate_limit.global_per_second=1000000000 --rate_limit.global_burst=1000000 2>"$work/credapi.log" &
pids+=($!); go_pid=$!
"$work/httpfloor" -addr=127.0.0.1:$floor_port &
pids+=($!); floor_pid=$!
"$work/httpfloor" -addr=127.0.0.1:$floor1_port -loops=1 &
pids+=($!); floor1_pid=$!
SECRET="$secret" "$work/httpfloor" -addr=127.0.0.1:$hand_port -handler &
pids+=($!); hand_pid=$!
SECRET="$secret" "$work/httpfloor" -addr=127.0.0.1:$hand1_port -loops=1 -handler &
pids+=($!); hand1_pid=$!
"$work/httpfloor" -addr=127.0.0.1:$raw_port -raw &
pids+=($!); raw_pid=$!
SECRET="$secret" "$work/httpfloor" -addr=127.0.0.1:$rawhand_port -raw -handler &
pids+=($!); rawhand_pid=$!
SECRET="$secret" PORT=$node_port node bench/credapi/node-anchor.mjs &
pids+=($!); node_pid=$!

wait_up() { for _ in $(seq 100); do curl -sf -o /dev/null -H "Origin: $origin" "$1" && return 0; sleep 0.1; done; echo "not up: $1" >&2; exit 1; }
wait_up "http://127.0.0.1:$go_port/v1/ice-servers"
wait_up "http://127.0.0.1:$node_port/v1/ice-servers"
wait_up "http://127.0.0.1:$floor_port/v1/ice-servers"
wait_up "http://127.0.0.1:$floor1_port/v1/ice-servers"
wait_up "http://127.0.0.1:$hand_port/v1/ice-servers"
wait_up "http://127.0.0.1:$hand1_port/v1/ice-servers"
wait_up "http://127.0.0.1:$raw_port/v1/ice-servers"
wait_up "http://127.0.0.1:$rawhand_port/v1/ice-servers"

# utime and stime (fields 14, 15) in clock ticks: user space and kernel on the server's behalf.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# run NAME PID URL: warm up, then measure; prints a table row.
run() {
  local name=$1 pid=$2 url=$3
  wrk -t1 -c"$conns" -d3s -H "Origin: $origin" "$url" >/dev/null
  local u0 s0 u1 s1
  read -r u0 s0 < <(ticks "$pid")
  local out="$work/${name// /_}.wrk"
  wrk -t1 -c"$conns" -d"$dur" --latency -H "Origin: $origin" "$url" >"$out"
  read -r u1 s1 < <(ticks "$pid")
  local rps p99 reqs errs cpu usr sys
  rps=$(awk '/^Requests\/sec/ {print $2}' "$out")
  p99=$(awk '$1=="99%" {print $2}' "$out")
  reqs=$(awk '/requests in/ {print $1}' "$out")
  errs=$(awk '/Non-2xx/ {print $NF}' "$out"); errs=${errs:-0}
  usr=$(awk -v a="$u0" -v b="$u1" -v hz="$hz" 'BEGIN {printf "%.2f", (b-a)/hz}')
  sys=$(awk -v a="$s0" -v b="$s1" -v hz="$hz" 'BEGIN {printf "%.2f", (b-a)/hz}')
  cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN {printf "%.2f", u+s}')
  local per us_req; per=$(awk -v r="$reqs" -v c="$cpu" 'BEGIN {printf "%.0f", r/c}')
  us_req=$(awk -v r="$reqs" -v u="$usr" -v s="$sys" 'BEGIN {printf "%.1f / %.1f", u/r*1e6, s/r*1e6}')
  printf '| %s | %s | %s | %s | %s | %s (%s user, %s sys) | %s | %s |\n' "$name" "$rps" "$p99" "$reqs" "$errs" "$cpu" "$usr" "$sys" "$per" "$us_req"
  echo "$per" >"$work/${name// /_}.per"
  if [ "$errs" != 0 ]; then echo "bench/credapi: $name answered $errs non-2xx responses; this row is not comparable" >&2; fi
}

echo "wrk -t1 -c$conns -d$dur --latency -H 'Origin: $origin' http://127.0.0.1:PORT/v1/ice-servers"
echo "$(nproc) cores; go $(go env GOVERSION); node $(node --version); $(date -u +%FT%TZ)"
echo
echo "| server | requests/s | p99 | requests | non-2xx | server CPU s | requests per CPU-second | CPU µs per request user / sys |"
echo "|---|---|---|---|---|---|---|---|"
run credapi "$go_pid" "http://127.0.0.1:$go_port/v1/ice-servers"
run node "$node_pid" "http://127.0.0.1:$node_port/v1/ice-servers"
run "floor $(nproc) loops" "$floor_pid" "http://127.0.0.1:$floor_port/v1/ice-servers"
run "floor 1 loop" "$floor1_pid" "http://127.0.0.1:$floor1_port/v1/ice-servers"
run "floor+handler $(nproc) loops" "$hand_pid" "http://127.0.0.1:$hand_port/v1/ice-servers"
run "floor+handler 1 loop" "$hand1_pid" "http://127.0.0.1:$hand1_port/v1/ice-servers"
run "floor raw $(nproc) loops" "$raw_pid" "http://127.0.0.1:$raw_port/v1/ice-servers"
run "floor+handler raw $(nproc) loops" "$rawhand_pid" "http://127.0.0.1:$rawhand_port/v1/ice-servers"
echo
ratio() { awk -v g="$(cat "$work/$1.per")" -v n="$(cat "$work/node.per")" -v l="$2" 'BEGIN {printf "%s / node requests per CPU-second: %.1fx (target >= 5x)\n", l, g/n}'; }
ratio credapi credapi
ratio "floor_$(nproc)_loops" "floor $(nproc) loops (no work)"
ratio floor_1_loop "floor 1 loop (no work)"
ratio "floor+handler_$(nproc)_loops" "floor+handler $(nproc) loops"
ratio floor+handler_1_loop "floor+handler 1 loop"
ratio "floor_raw_$(nproc)_loops" "floor raw $(nproc) loops (no work)"
ratio "floor+handler_raw_$(nproc)_loops" "floor+handler raw $(nproc) loops"
