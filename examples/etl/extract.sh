#!/bin/sh
# Extracts the day's records (here: generated) into the run's scratch directory.
set -eu
day="$1"
work="${TASKFRAME_RUN_DIR:-${TMPDIR:-/tmp}/taskframe-etl-$TASKFRAME_RUN_ID}"
mkdir -p "$work"
for i in 1 2 3 4 5 6 7 8; do echo "$day,user$i,$((i * 7 % 5))"; done > "$work/records.csv"
echo "extracted $(wc -l < "$work/records.csv") records for $day"
