#!/bin/sh
# Builds the example worker, then replaces this shell with it, so that the
# worker itself gets the sidecar's SIGTERM and drains. The binary is kept in
# the temp directory, rebuilt (from Go's build cache) on every start.
set -e
cd "$(dirname "$0")"
bin="${TMPDIR:-/tmp}/taskframe-go-example-$(id -u)/worker"
go build -o "$bin" ./worker
exec "$bin"
