#!/bin/sh
# make-corpus.sh KIB DIR [FILES]: writes FILES (default 8) text files of
# pseudo-random words (a fixed seed: the same corpus every time) into DIR
# (about KIB KiB in all).
set -eu
kib=${1:?usage: make-corpus.sh KIB DIR [FILES]}
dir=${2:?usage: make-corpus.sh KIB DIR [FILES]}
files=${3:-8}
mkdir -p "$dir"
i=0
while [ "$i" -lt "$files" ]; do
  awk -v bytes=$((kib * 1024 / files)) -v seed="$i" '
    BEGIN {
      srand(seed + 1)
      n = split("the of and to in is that it was for on are with as his they be at one have this from or had by hot word but what some we can out other were all there when up use your how said an each she which do their time if will way about many then them write would like so these her long make thing see him two has look more day could go come did number sound no most people my over know water than call first who may down side been now find", common, " ")
      written = 0
      while (written < bytes) {
        line = ""
        words = 6 + int(rand() * 10)
        for (j = 0; j < words; j++) {
          # mostly common words, a long tail of rare ones, some capitalised
          if (rand() < 0.8) w = common[1 + int(rand() * n)]
          else w = sprintf("w%d", int(rand() * rand() * 50000))
          if (rand() < 0.05) w = toupper(substr(w, 1, 1)) substr(w, 2)
          line = line (j ? (rand() < 0.1 ? ", " : " ") : "") w
        }
        line = line "."
        print line
        written += length(line) + 1
      }
    }' > "$dir/part-$i.txt" &
  i=$((i + 1))
done
wait
