#!/bin/sh
# Stands in for a service that provides libpng: reports whether the library is installed, and
# succeeds either way so that the units that require it run.
if ls /usr/lib/*/libpng*.so* /usr/lib/libpng*.so* /usr/local/lib/libpng*.so* >/dev/null 2>&1; then
  echo "libpng: installed"
else
  echo "libpng: not installed (fine for this example)"
fi
