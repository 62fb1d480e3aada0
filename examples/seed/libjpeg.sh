#!/bin/sh
# Stands in for a service that provides libjpeg: reports whether the library is installed, and
# succeeds either way so that the units that require it run.
if ls /usr/lib/*/libjpeg.so* /usr/lib/libjpeg.so* /usr/local/lib/libjpeg.so* >/dev/null 2>&1; then
  echo "libjpeg: installed"
else
  echo "libjpeg: not installed (fine for this example)"
fi
