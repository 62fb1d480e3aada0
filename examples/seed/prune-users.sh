#!/bin/sh
# A dry run: says which accounts it would prune, and changes nothing.
set -eu
here=$(dirname "$0")
while read -r user; do
  if [ -n "$user" ]; then echo "would prune inactive user $user"; fi
done <"$here/inactive-users.txt"
