#!/usr/bin/env bash
# The SDK tests build and run Python, Go and Java workers, the sidecar's
# install cache tests make Python venvs, the jail tests run tasks in
# bubblewrap with a libseccomp filter, and the dashboard tests drive a
# headless Chromium; the chaos suite moves hosts' clocks with libfaketime.
# This installs what is missing from Debian's packages (Python 3.9+ with
# venv, Go 1.19+, JDK 17+, bubblewrap, libseccomp2, chromium, faketime), and
# does nothing when everything is there. Needs root (or sudo)
# only to install.
set -euo pipefail

missing=()
command -v python3 >/dev/null || missing+=(python3)
command -v go >/dev/null || missing+=(golang-go)
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v bwrap >/dev/null || missing+=(bubblewrap)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v faketime >/dev/null || missing+=(faketime)
ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || missing+=(libseccomp2)
# the install cache makes venvs with /usr/bin/python3 when there is one; Debian ships its ensurepip apart
python=/usr/bin/python3
[ -x "$python" ] || python=python3
"$python" -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "installing ${missing[*]} (for the SDK, jail, dashboard and chaos tests)" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "not root and no sudo: install ${missing[*]} yourself, then run the tests" >&2
    exit 1
  fi
  sudo=sudo
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
