#!/usr/bin/env bash
# make bench: every load comparison, one after another under one lock, so no two benchmarks
# share the 2 cores. Results go to stdout; the recorded figures live in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/tracker/run.sh            # takes /tmp/switchboard-bench.lock itself
flock /tmp/switchboard-bench.lock bash bench/turn/run.sh
flock /tmp/switchboard-bench.lock bash bench/credapi/run.sh
