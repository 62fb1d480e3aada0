#!/bin/sh
set -eu
. "$(dirname "$0")/workdir.sh"
echo "words: $(cat "$WORK/words")"
echo "top:   $(cat "$WORK/top")"
# the run directory itself is the sidecar's to remove
find "$WORK" -mindepth 1 -delete
