#!/bin/sh
# Flaky on purpose: fails its first two attempts, then succeeds (Restart=5 allows 5 retries).
set -eu
attempt=${TASKFRAME_ATTEMPT:-1}
if [ "$attempt" -le 2 ]; then
  echo "flaky: failed on attempt $attempt" >&2
  exit 1
fi
echo "flaky: succeeded on attempt $attempt"
