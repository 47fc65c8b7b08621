#!/usr/bin/env bash
# Turns the RESULT lines of bench/tracker/run.sh into a markdown table.
set -euo pipefail
awk '
function kv(line,   n, i, f, p) {
  delete v
  n = split(line, f, " ")
  for (i = 2; i <= n; i++) { p = index(f[i], "="); v[substr(f[i], 1, p - 1)] = substr(f[i], p + 1) }
}
/^#/ { print "    " $0; next }
/^RESULT/ {
  kv($0)
  name = v["label"]; sub(/-(paced|idle)$/, "", name)
  if (!(name in seen)) { seen[name] = 1; order[++n] = name }
  if (v["mode"] == "idle") {
    idle[name] = v["rss_per_conn_kib"] " (" v["held"] " held)"
  } else if (v["pace"] != "0s") {
    paced[name] = v["p50_ms"] " / " v["p99_ms"] " (" v["delivered_per_s"] " msg/s, " v["server_cpu_us_per_msg"] " µs/msg)"
  } else {
    loop[name] = v["delivered_per_s"] " | " v["server_cpu_us_per_msg"] " | " v["p50_ms"] " / " v["p99_ms"] " | " v["recv_error"] + 0 " / " v["dropped"] + 0 " / " v["timeouts"] + 0
  }
}
END {
  print ""
  print "| server | closed loop: delivered msg/s | server CPU µs per delivered msg | p50 / p99 ms | errors / dropped / timeouts | paced: p50 / p99 ms | RSS KiB per idle conn |"
  print "|---|---:|---:|---:|---:|---:|---:|"
  for (i = 1; i <= n; i++) {
    s = order[i]
    print "| " s " | " (s in loop ? loop[s] : "– | – | – | –") " | " (s in paced ? paced[s] : "–") " | " (s in idle ? idle[s] : "–") " |"
  }
}' "$1"
