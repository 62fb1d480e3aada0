#!/bin/sh
set -eu
. "$(dirname "$0")/workdir.sh"
echo "words: $(cat "$WORK/words")"
echo "top:   $(cat "$WORK/top")"
rm -rf "$WORK"
