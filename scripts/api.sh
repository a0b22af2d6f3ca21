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

# Each group: its name, its budget of exported names, its packages.
groups=(
	"core|110|row backpressure stage fanout pipeline"
	"checkpoints|12|checkpoint"
	"other packages|196|config connectors connectors/memory connectors/stream flow metrics monitor"
	"stateful|90|keyed window"
	"scheduling|130|schedule"
	"test kits|3|schedule/schedtest" # contract tests that implementations run
)

list() { go run ./internal/tools/apilist "$@"; }
file() { echo "$1" | tr / .; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for g in "${groups[@]}"; do
	IFS='|' read -r name budget pkgs <<<"$g"
	n=0
	for pkg in $pkgs; do
		list "$pkg" > "$tmp/$(file "$pkg").txt"
		n=$((n + $(wc -l < "$tmp/$(file "$pkg").txt")))
	done
	echo "$name ($pkgs): $n exported names, budget $budget"
	if [ "$n" -gt "$budget" ]; then
		echo "$name: API over budget"
		status=1
	fi
done

if [ "${1:-}" = check ]; then
	if ! diff -ru api "$tmp" >"$tmp.diff" 2>&1; then
		echo "the exported API changed without api/*.txt changing with it:"
		cat "$tmp.diff"
		echo "run scripts/api.sh and commit api/ if the change is meant"
		status=1
	fi
	rm -f "$tmp.diff"
	exit $status
fi
rm -rf api && mkdir api && cp "$tmp"/*.txt api/
echo "api/ regenerated"
exit $status
