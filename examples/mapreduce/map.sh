#!/bin/sh
# Map: the partition's lines on stdin; one record per distinct word on stdout,
# `WORD<TAB>COUNT` (counted here already: "in-mapper combining" keeps the
# shuffle small). A word is a run of ASCII letters and digits.
tr -cs 'A-Za-z0-9' '\n' | awk 'NF { n[$0]++ } END { for (w in n) print w "\t" n[w] }'
