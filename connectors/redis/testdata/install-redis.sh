#!/bin/sh
# Installs redis-server (Debian/Ubuntu package "redis-server") for the Redis
# connector tests, unless it is already on PATH. Idempotent and
# non-interactive; run as root or with sudo available.
set -eu

if command -v redis-server >/dev/null 2>&1; then
	echo "redis-server already installed: $(redis-server --version)"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-redis.sh: apt-get not found; install redis-server (6.2 or later) by other means" >&2
	exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends redis-server

# The package may start a system service on port 6379; the tests start their
# own server on a unix socket and do not use it.
echo "installed: $(redis-server --version)"
