#!/bin/sh
# Fails on its first attempt, as a flaky network call would; the retry succeeds.
set -eu
if [ "${TASKFRAME_ATTEMPT:-1}" = 1 ]; then
  echo "upload: connection reset by peer (attempt $TASKFRAME_ATTEMPT)" >&2
  exit 75
fi
echo "uploaded on attempt $TASKFRAME_ATTEMPT"
