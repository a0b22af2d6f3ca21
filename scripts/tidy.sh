#!/usr/bin/env bash
# Runs go mod tidy in the root module and in every nested module (the
# connector, tracing and example modules replace the root module with this
# checkout, so a dependency added to the root must reach their go.sum too).
set -euo pipefail
cd "$(dirname "$0")/.."
go mod tidy
for m in $(git ls-files '*/go.mod' | xargs -n1 dirname); do
	echo "tidy $m"
	(cd "$m" && go mod tidy)
done
