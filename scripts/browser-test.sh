#!/usr/bin/env bash
# Runs the browser tests: installs Debian's chromium when it is missing,
# then renders the monitor page of a live pipeline and the tasks page of a
# scheduler in headless chromium (on 127.0.0.1 only), checks their DOM and
# saves docs/monitor.png and docs/tasks.png.
#
#   scripts/browser-test.sh            # from anywhere in the repository
#   KISFLOW_SCREENSHOT=/tmp/m.png scripts/browser-test.sh
set -euo pipefail

cd "$(dirname "$0")/.."

find_chromium() {
	command -v chromium || command -v chromium-browser || true
}

if [ -z "$(find_chromium)" ]; then
	echo "browser-test: installing chromium" >&2
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then
		SUDO="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi

CHROMIUM="$(find_chromium)"
if [ -z "$CHROMIUM" ]; then
	echo "browser-test: chromium not found after install" >&2
	exit 1
fi
"$CHROMIUM" --version >&2

KISFLOW_BROWSER=1 KISFLOW_CHROMIUM="$CHROMIUM" \
	go test -count=1 -run '^TestBrowser' -v ./monitor/ ./schedule/ "$@"
