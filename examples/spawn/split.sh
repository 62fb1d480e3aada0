#!/bin/sh
# Spawns one child per part, then a merge that needs them all.
set -eu
parts=$1
needs=""
for i in $(seq 1 "$parts"); do
  task spawn "part-$i" --retries 1 -- sh -c "echo processing part $i; sleep 0.2"
  needs="$needs part-$i"
done
# shellcheck disable=SC2086 # one --needs word per part
task spawn merge --needs $needs -- echo "merged $parts parts"
