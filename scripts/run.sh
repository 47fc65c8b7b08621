#!/usr/bin/env bash
# make run without make: cmd/devrun starts tracker, turnd and credapi on 127.0.0.1 with a
# generated shared secret, prints the client settings and stops all three on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./cmd/devrun "$@"
