#!/usr/bin/env bash
# Start-to-ready, idle RSS and request benchmarks against a fresh release `kumo serve`.
# Usage: bench/run.sh [extra `kumo bench` args]. Needs `cargo build --release -p kumo` first;
# KUMO_BENCH_BIN names another build to serve (an older commit's, for an A/B in one session).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${KUMO_BENCH_BIN:-target/release/kumo}
[ -x "$bin" ] || { echo "build first: cargo build --release -p kumo" >&2; exit 1; }
port=${KUMO_BENCH_PORT:-4577}
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT

start=$(date +%s%N)
"$bin" serve --listen 127.0.0.1:$port --data-dir "$dir" --zone-capacity 100000 --driver null 2>"$dir/log" &
pid=$!
until curl -sf "http://127.0.0.1:$port/_kumo/health" >/dev/null; do sleep 0.002; done
ready=$(( ($(date +%s%N) - start) / 1000000 ))
echo "start to ready (process spawn to first healthy answer): ${ready} ms"
grep -o 'ready_ms=[0-9]*' "$dir/log" | sed 's/^/  as logged by kumo: /' || true
sleep 1
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

target/release/kumo bench --target 127.0.0.1:$port --server-pid $pid --data-dir "$dir" "$@"
echo "RSS after the run: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
