#!/usr/bin/env bash
# The Java SDK's conformance adapter (docs/conformance-adapter.md), as one command:
#   task conformance -- sdks/java/conformance-adapter.sh
# Builds the SDK first if it has not been built.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ ! -f "$here/build/taskframe.jar" || ! -d "$here/build/conformance" ]]; then
  bash "$here/build.sh" >&2
fi
exec java -XX:+UseSerialGC -cp "$here/build/taskframe.jar:$here/build/conformance" \
  taskframe.conformance.ConformanceAdapter "$@"
