#!/usr/bin/env bash
# Long runs of the pipeline property test and soak test.
#
#   scripts/property.sh          # 100,000 property cases (pipeline/property_test.go)
#   scripts/property.sh soak     # a steady pipeline for 10 minutes (pipeline/soak_test.go)
#
# The property run takes its seed from KISFLOW_PROPERTY_SEED (default 1)
# and can be made shorter or longer with KISFLOW_PROPERTY_CASES; the soak's
# length is KISFLOW_SOAK (default 10m). Extra arguments go to go test
# (-race, -v, ...). A failing case prints the line that replays it alone.
set -euo pipefail

cd "$(dirname "$0")/.."

mode=${1:-property}
case "$mode" in
soak)
	shift
	KISFLOW_SOAK=${KISFLOW_SOAK:-10m} exec go test -run '^TestSoak$' -count=1 -timeout 0 -v "$@" ./pipeline/
	;;
property)
	[ $# -gt 0 ] && shift
	KISFLOW_PROPERTY_CASES=${KISFLOW_PROPERTY_CASES:-100000} exec go test -run '^TestProperty$' -count=1 -timeout 0 "$@" ./pipeline/
	;;
-*)
	KISFLOW_PROPERTY_CASES=${KISFLOW_PROPERTY_CASES:-100000} exec go test -run '^TestProperty$' -count=1 -timeout 0 "$@" ./pipeline/
	;;
*)
	echo "usage: $0 [property|soak] [go test flags]" >&2
	exit 2
	;;
esac
