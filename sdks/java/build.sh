#!/usr/bin/env bash
# Builds the Java SDK with the JDK alone (javac + jar, Java 17+; no Maven, no network):
#   build/taskframe.jar    the SDK (package taskframe)
#   build/conformance/     the conformance adapter (taskframe.conformance.ConformanceAdapter)
#   build/examples/        examples/java/ExampleWorker, compiled as a check
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$here/build"
# javac starts faster with the C1 compiler only (it runs for a few seconds)
javac_flags=(-J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 --release 17 -encoding UTF-8 -Xlint:all)

mkdir -p "$out"
tmp="$(mktemp -d "$out/.tmp-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

mapfile -t sources < <(find "$here/src" -name '*.java' | sort)
sources+=("$here/conformance/ConformanceAdapter.java")
example="$root/examples/java/ExampleWorker.java"
[[ -f "$example" ]] && sources+=("$example")

# one javac run (the slow part), then split the classes
javac "${javac_flags[@]}" -d "$tmp/classes" "${sources[@]}"
mkdir -p "$tmp/conformance/taskframe" "$tmp/examples"
mv "$tmp/classes/taskframe/conformance" "$tmp/conformance/taskframe/"
find "$tmp/classes" -maxdepth 1 -name '*.class' -exec mv {} "$tmp/examples/" \;

cat > "$tmp/manifest.txt" <<MANIFEST
Automatic-Module-Name: taskframe
Implementation-Title: Taskframe Java SDK
Implementation-Version: 0.1.0
MANIFEST
jar --create --file "$tmp/taskframe.jar" --manifest "$tmp/manifest.txt" -C "$tmp/classes" .

rm -rf "$out/conformance" "$out/examples"
mv "$tmp/conformance" "$tmp/examples" "$out/"
mv -f "$tmp/taskframe.jar" "$out/taskframe.jar"
echo "built $out/taskframe.jar, $out/conformance, $out/examples" >&2
