#!/bin/sh
set -eu
. "$(dirname "$0")/workdir.sh"
cat > "$WORK/input.txt" <<'TEXT'
A task of a given level in the task tree needs to be executing all possible
tasks at the level simultaneously as to insure speed. We also need to be able
to view results or metadata on these tasks and their execution.
TEXT
echo "fetched $(wc -l < "$WORK/input.txt") lines into $WORK/input.txt"
