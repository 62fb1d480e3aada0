#!/bin/sh
set -eu
. "$(dirname "$0")/workdir.sh"
case "${1:-words}" in
  words) wc -w < "$WORK/input.txt" | tr -d ' ' > "$WORK/words" ;;
  lines) wc -l < "$WORK/input.txt" | tr -d ' ' > "$WORK/lines" ;;
  *) echo "usage: count.sh words|lines" >&2; exit 2 ;;
esac
echo "counted $1: $(cat "$WORK/$1")"
