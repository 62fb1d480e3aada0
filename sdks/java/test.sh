#!/usr/bin/env bash
# Builds the Java SDK, then runs its tests (plain Java, no framework): JSON, envelopes, chunked
# bodies, error mapping, result encoding, and workers against a fake sidecar on a unix socket.
#   bash sdks/java/test.sh [name filter]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/build.sh"
out="$here/build/test"
rm -rf "$out"
mapfile -t sources < <(find "$here/test" -name '*.java' | sort)
javac -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 --release 17 -encoding UTF-8 -Xlint:all \
  -cp "$here/build/taskframe.jar" -d "$out" "${sources[@]}"
exec java -XX:+UseSerialGC -cp "$here/build/taskframe.jar:$out" taskframe.test.TestMain "$@"
