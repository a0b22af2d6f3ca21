#!/usr/bin/env bash
# Runs the benchmarks once (COUNT repetitions, 5 by default) and prints the
# README's table: median ns/row per implementation and the ratios to the
# plain loop and to the hand-written channel pipeline, from that one run,
# with the date, machine and load it ran on.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
pattern=${BENCH:-'W1$|W2$|W3$|W4$|W5$|KisFlowJSON'}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench "$pattern" -benchmem -count "$count" ./bench/ | tee "$out" >&2
echo
echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go env GOVERSION)), load average $(cut -d' ' -f1-3 /proc/loadavg), with"
echo "\`go test -run '^\$' -bench '$pattern' -benchmem -count $count ./bench/\`:"
echo
go run ./internal/tools/benchtable < "$out"
