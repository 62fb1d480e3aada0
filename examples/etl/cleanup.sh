#!/bin/sh
# Removes the run's scratch directory once both loads are done.
set -eu
work="${TASKFRAME_RUN_DIR:-${TMPDIR:-/tmp}/taskframe-etl-$TASKFRAME_RUN_ID}"
# the run directory itself is the sidecar's to remove
find "$work" -mindepth 1 -delete
echo "cleaned up"
