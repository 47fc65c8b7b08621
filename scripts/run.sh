#!/usr/bin/env bash
# make run: every daemon built so far, on loopback, with a generated dev secret.
set -euo pipefail
cd "$(dirname "$0")/.."
secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
pids=()
stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait; }
trap stop INT TERM EXIT
start() { # name args...
  local name=$1; shift
  ( exec "bin/$name" "$@" 2>&1 | sed -u "s/^/[$name] /" ) &
  pids+=($!)
}
export SWITCHBOARD_TURND_AUTH_SECRETS="$secret" SWITCHBOARD_CREDAPI_AUTH_SECRETS="$secret"
[ -x bin/tracker ] && start tracker --listen=127.0.0.1:8000
[ -x bin/turnd ] && start turnd --config=configs/turnd.dev.yaml
[ -x bin/credapi ] && start credapi --config=configs/credapi.dev.yaml
cat <<MSG

Switchboard is running on loopback (Ctrl-C stops it):
  tracker   ws://127.0.0.1:8000        (trystero: relayConfig: {urls: ['ws://127.0.0.1:8000']})
  credapi   http://127.0.0.1:8080      (ICE servers: http://127.0.0.1:8080/v1/ice-servers)
  TURN      turn:127.0.0.1:3478        (credentials from credapi)
  metrics   http://127.0.0.1:9401/metrics (tracker), :9402 (turnd), :9403 (credapi)

MSG
wait
