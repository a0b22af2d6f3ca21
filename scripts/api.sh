#!/usr/bin/env bash
# Lists the exported API of every public package of the root module in
# api/<package>.txt, the way Go's own api/ files list the standard library,
# and prints the number of exported names per group against its budget.
#
#   scripts/api.sh          regenerate api/*.txt
#   scripts/api.sh check    fail if the API differs from api/*.txt, or a
#                           budget is exceeded (CI runs this)
set -euo pipefail
cd "$(dirname "$0")/.."

core=(row backpressure stage fanout pipeline)
checkpoints=(checkpoint)
outer=(config connectors connectors/memory connectors/stream flow metrics monitor)
core_budget=105
checkpoints_budget=12
outer_budget=170

list() { go run ./internal/tools/apilist "$@"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for pkg in "${core[@]}" "${checkpoints[@]}" "${outer[@]}"; do
	list "$pkg" > "$tmp/$(echo "$pkg" | tr / .).txt"
done

count() { local n=0; for pkg in "$@"; do n=$((n + $(wc -l < "$tmp/$(echo "$pkg" | tr / .).txt"))); done; echo "$n"; }
core_n=$(count "${core[@]}")
outer_n=$(count "${outer[@]}")
checkpoints_n=$(count "${checkpoints[@]}")
echo "core packages (${core[*]}): $core_n exported names, budget $core_budget"
echo "checkpoint packages (${checkpoints[*]}): $checkpoints_n exported names, budget $checkpoints_budget"
echo "other packages (${outer[*]}): $outer_n exported names, budget $outer_budget"

if [ "${1:-}" = check ]; then
	status=0
	if ! diff -ru api "$tmp" >"$tmp.diff" 2>&1; then
		echo "the exported API changed without api/*.txt changing with it:"
		cat "$tmp.diff"
		echo "run scripts/api.sh and commit api/ if the change is meant"
		status=1
	fi
	rm -f "$tmp.diff"
	[ "$core_n" -le "$core_budget" ] || { echo "core API over budget"; status=1; }
	[ "$outer_n" -le "$outer_budget" ] || { echo "other API over budget"; status=1; }
	[ "$checkpoints_n" -le "$checkpoints_budget" ] || { echo "checkpoint API over budget"; status=1; }
	exit $status
fi
rm -rf api && mkdir api && cp "$tmp"/*.txt api/
echo "api/ regenerated"
