#!/bin/sh
# Exit 0 (run the prune) when more accounts are inactive than MAX_INACTIVE_USERS (default 3),
# exit 1 (skip it) otherwise. The accounts are a local sample file: nothing is queried.
set -eu
here=$(dirname "$0")
max=${MAX_INACTIVE_USERS:-3}
count=$(grep -c . "$here/inactive-users.txt" || true)
echo "inactive users: $count (limit $max)"
[ "$count" -gt "$max" ]
