#!/bin/sh
# Reduce: every record of this partition on stdin, sorted by word, so that the
# records of one word are adjacent; prints `WORD<TAB>TOTAL` once per word.
awk -F '\t' '
  $1 != word { if (NR > 1) print word "\t" total; word = $1; total = 0 }
  { total += $2 }
  END { if (NR > 0) print word "\t" total }
'
