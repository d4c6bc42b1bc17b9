#!/usr/bin/env bash
# Resident memory of the demo (docs/operations.md, "Sizing"): starts the
# release binary with --demo on a loopback port, reads
# process_resident_memory_bytes from /metrics as Prometheus would (and the
# kernel's peak, VmHWM) at the given seconds after start (default 30 s, 1, 2,
# 4 and 8 minutes, then every 10 minutes up to an hour, when the demo's
# one-hour async lookback is full), then stops it.
#
#   cargo build --release && bash tests/tools/demo_rss.sh [SECONDS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=target/release/functiongraph_exporter
LOG=$(mktemp)
trap 'kill -TERM "$PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
"$BIN" --demo --web.listen-address 127.0.0.1:0 2>"$LOG" &
PID=$!
ADDR=
for _ in $(seq 1 100); do
  ADDR=$(grep -o 'serving metrics on http://[0-9.:]*' "$LOG" | head -1 | sed 's|serving metrics on http://||' || true)
  [ -n "$ADDR" ] && break
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "the demo did not start" >&2; cat "$LOG" >&2; exit 1; }
START=$(date +%s)
TIMES=("$@")
[ ${#TIMES[@]} -gt 0 ] || TIMES=(30 60 120 240 480 600 1200 1800 2400 3000 3600)
for t in "${TIMES[@]}"; do
  while [ $(( $(date +%s) - START )) -lt "$t" ]; do sleep 1; done
  RSS=$(curl -fsS --compressed -H 'Accept: application/openmetrics-text;version=1.0.0' "http://$ADDR/metrics" \
    | awk '/^process_resident_memory_bytes /{print $2}')
  HWM=$(awk '/VmHWM/{print $2}' "/proc/$PID/status")
  awk -v t="$t" -v r="$RSS" -v h="$HWM" \
    'BEGIN{printf "t=%ss process_resident_memory_bytes=%.0f (%.1f MiB), peak VmHWM %.1f MiB\n", t, r, r/1048576, h/1024}'
done
