#!/usr/bin/env bash
# TURN relay benchmark: the same coturn turnutils_uclient load against turnd and against
# coturn's turnserver, side by side in one run, on loopback. Prints one table row per
# (profile, server): relayed packets, loss, wall time, packets/s, server CPU seconds (from
# /proc/<pid>/stat utime+stime), CPU per relayed packet, average RTT (uclient) and p50/p99
# RTT (bench/turn/rttprobe at 200 pps beside the load). Then a loss-free rate sweep.
# Needs: coturn (turnserver, turnutils_uclient, turnutils_peer), go. Run it under
#   flock /tmp/switchboard-bench.lock bench/turn/run.sh
# so benchmarks never overlap. Results go to docs/benchmarks.md by hand (## turnd).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=$(mktemp -d /tmp/turnbench.XXXXXX)
SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
REALM=bench.local
# Below the ephemeral range (32768+), so no outgoing connection can hold them.
PEER_PORT=${PEER_PORT:-24800}
COTURN_PORT=${COTURN_PORT:-24780}
TURND_PORT=${TURND_PORT:-24790}
TURND_OPS=${TURND_OPS:-127.0.0.1:24791}
REPEAT=${REPEAT:-2}
pids=()
cleanup() {
  if [ -n "${TURND_PID:-}" ] && ! kill -0 "$TURND_PID" 2>/dev/null; then echo "turnd exited early:"; tail -20 "$WORK/turnd.log"; fi
  if [ -n "${COTURN_PID:-}" ] && ! kill -0 "$COTURN_PID" 2>/dev/null; then echo "coturn exited early:"; tail -20 "$WORK"/coturn*.log; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

go build -o "$WORK/turnd" ./cmd/turnd
go build -o "$WORK/rttprobe" ./bench/turn/rttprobe

turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >/dev/null 2>&1 &
pids+=($!)

cat >"$WORK/turnserver.conf" <<EOF
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=$COTURN_PORT
min-port=20000
max-port=22999
use-auth-secret
static-auth-secret=$SECRET
realm=$REALM
allow-loopback-peers
cli-password=bench-cli-unused
no-cli
no-tls
no-dtls
fingerprint
no-stdout-log
log-file=$WORK/coturn.log
simple-log
user-quota=0
total-quota=0
EOF
turnserver -c "$WORK/turnserver.conf" >/dev/null 2>&1 &
COTURN_PID=$!
pids+=($COTURN_PID)

# turnd with the production defaults except: loopback, loopback peers allowed (the peer is
# local), no bandwidth cap (coturn has none by default), warn logging.
SWITCHBOARD_TURND_AUTH_SECRETS="$SECRET" "$WORK/turnd" \
  --listen=127.0.0.1:$TURND_PORT --ops.listen=$TURND_OPS --realm=$REALM --log.level=warn \
  --relay.ip=127.0.0.1 --relay.min_port=23000 --relay.max_port=24699 --peers.allow=127.0.0.0/8 \
  --quotas.bandwidth_bytes_per_second=0 --tls.listen=127.0.0.1:0 \
  --relay.tcp_allocations=true >"$WORK/turnd.log" 2>&1 &
TURND_PID=$!
pids+=($TURND_PID)

# Both relays must answer a full allocate + channel round trip before measuring.
for port in "$COTURN_PORT" "$TURND_PORT"; do
  for _ in $(seq 50); do
    "$WORK/rttprobe" -server 127.0.0.1:"$port" -peer 127.0.0.1:"$PEER_PORT" -secret "$SECRET" -rate 50 -duration 100ms \
      2>/dev/null | grep -q 'recv=[1-9]' && break
    sleep 0.2
  done
done

# A server that dies mid-run is reported, not silently skipped.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || { echo "server pid $1 ($(name_of "$1")) exited during the run" >&2; echo 0; }; }
name_of() { if [ "$1" = "$COTURN_PID" ]; then echo coturn; else echo turnd; fi; }
HZ=$(getconf CLK_TCK)

# run_profile NAME SERVER_PID PORT UCLIENT_ARGS...
run_profile() {
  local name=$1 pid=$2 port=$3; shift 3
  local t0 t1 c0 c1 out probe
  c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
  "$WORK/rttprobe" -server 127.0.0.1:"$port" -peer 127.0.0.1:"$PEER_PORT" -secret "$SECRET" \
    -rate 200 -duration 4s >"$WORK/probe.out" 2>&1 &
  probe=$!
  out=$(timeout 300 turnutils_uclient -e 127.0.0.1 -r "$PEER_PORT" -p "$port" -u bench -W "$SECRET" "$@" 127.0.0.1 2>&1 || true)
  wait "$probe" || true
  t1=$(date +%s.%N); c1=$(cpu_ticks "$pid")
  local sent recv lost avg
  sent=$(sed -n 's/.*start_mclient: tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\).*/\1/p' <<<"$out" | tail -1)
  recv=$(sed -n 's/.*start_mclient: tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\).*/\2/p' <<<"$out" | tail -1)
  lost=$(sed -n 's/.*Total lost packets \([0-9]*\) (\([0-9.]*\)%).*/\2/p' <<<"$out" | tail -1)
  avg=$(sed -n 's/.*Average round trip delay \([0-9.]*\) ms.*/\1/p' <<<"$out" | tail -1)
  local p99 p50
  p50=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' "$WORK/probe.out"); p99=$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' "$WORK/probe.out")
  awk -v n="$name" -v s="${sent:-0}" -v r="${recv:-0}" -v l="${lost:-?}" -v t0="$t0" -v t1="$t1" \
      -v c="$((c1 - c0))" -v hz="$HZ" -v avg="${avg:-?}" -v p50="${p50:-?}" -v p99="${p99:-?}" 'BEGIN {
    pk = s + r; wall = t1 - t0; cpu = c / hz
    printf "| %s | %d | %s%% | %.2f | %.0f | %.2f | %.2f | %s | %s | %s |\n", n, pk, l, wall, pk / wall, cpu, (pk ? cpu / pk * 1e6 : 0), avg, p50, p99
  }'
}

echo "turnd $(git -C "$ROOT" describe --always --dirty), coturn $(turnserver --version 2>/dev/null | head -1), $(nproc) cores, $(date -u +%FT%TZ)"
echo
echo "| profile / server | relayed pkts | loss | wall s | pkts/s | server CPU s | CPU µs/pkt | avg RTT ms (uclient) | p50 ms (probe) | p99 ms (probe) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
PROFILES=(
  "paced: -m 20 -n 1000 -l 1000 -z 5 -c|-m 20 -n 1000 -l 1000 -z 5 -c"
  "as fast as uclient can: -m 4 -n 25000 -l 100 -z 0 -c|-m 4 -n 25000 -l 100 -z 0 -c"
  "send indications: -m 10 -n 1000 -l 500 -z 2 -c -s|-m 10 -n 1000 -l 500 -z 2 -c -s"
)
# TCP_RELAY=1: only RFC 6062 TCP relays (coturn offers them by default). uclient -T ignores
# the peer and pairs its clients, each relaying to the other's TCP allocation.
if [ "${TCP_RELAY:-0}" = 1 ]; then
  PROFILES=(
    "tcp relay (-T), paced: -m 10 -n 2000 -l 1000 -z 2|-T -m 10 -n 2000 -l 1000 -z 2"
    "tcp relay (-T), as fast as uclient can: -m 4 -n 20000 -l 100 -z 0|-T -m 4 -n 20000 -l 100 -z 0"
  )
fi
for rep in $(seq "$REPEAT"); do
  for p in "${PROFILES[@]}"; do
    label=${p%%|*}; args=${p#*|}
    # shellcheck disable=SC2086
    run_profile "$label / coturn (run $rep)" "$COTURN_PID" "$COTURN_PORT" $args
    # shellcheck disable=SC2086
    run_profile "$label / turnd (run $rep)" "$TURND_PID" "$TURND_PORT" $args
  done
done

if [ "${TCP_RELAY:-0}" = 1 ]; then
  curl -s "http://$TURND_OPS/metrics" | grep -E '^switchboard_turn_(relayed_bytes|tcp_peer)' || true
  exit 0
fi
echo
echo "Loss-free rate sweep (-l 200 -z 1 -c, -n 3000 per client; offered ≈ clients × 1000 pkts/s each way):"
echo "| clients | coturn relayed pkts/s | coturn loss | turnd relayed pkts/s | turnd loss |"
echo "|---|---|---|---|---|"
for m in 2 5 10 20 40; do
  row="| $m"
  for srv in coturn turnd; do
    if [ $srv = coturn ]; then port=$COTURN_PORT; else port=$TURND_PORT; fi
    t0=$(date +%s.%N)
    out=$(timeout 300 turnutils_uclient -e 127.0.0.1 -r "$PEER_PORT" -p "$port" -u sweep -W "$SECRET" -m "$m" -n 3000 -l 200 -z 1 -c 127.0.0.1 2>&1 || true)
    t1=$(date +%s.%N)
    s=$(sed -n 's/.*start_mclient: tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\).*/\1/p' <<<"$out" | tail -1)
    r=$(sed -n 's/.*start_mclient: tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\).*/\2/p' <<<"$out" | tail -1)
    l=$(sed -n 's/.*Total lost packets \([0-9]*\) (\([0-9.]*\)%).*/\2/p' <<<"$out" | tail -1)
    row+=$(awk -v s="${s:-0}" -v r="${r:-0}" -v t0="$t0" -v t1="$t1" -v l="${l:-?}" 'BEGIN { printf " | %.0f | %s%%", (s + r) / (t1 - t0), l }')
  done
  echo "$row |"
done
echo
echo "turnd metrics after the run:"
curl -s "http://$TURND_OPS/metrics" | grep -E '^switchboard_turn_(relayed|relay_dropped|allocations_(created|refused))' || true
