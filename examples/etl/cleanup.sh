#!/bin/sh
# Removes the run's scratch directory once both loads are done.
set -eu
rm -rf "${TMPDIR:-/tmp}/taskframe-etl-$TASKFRAME_RUN_ID"
echo "cleaned up"
