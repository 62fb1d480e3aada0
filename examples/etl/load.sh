#!/bin/sh
# Loads the transformed totals into target $1 (here: prints them).
set -eu
work="${TASKFRAME_RUN_DIR:-${TMPDIR:-/tmp}/taskframe-etl-$TASKFRAME_RUN_ID}"
echo "loading into $1: $(cat "$work/totals.json")"
