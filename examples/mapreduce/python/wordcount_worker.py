"""A Taskframe worker in Python serving the wordcount MapReduce job's map and
reduce as handlers (`map: { handler: wordcount.map }`,
`reduce: { handler: wordcount.reduce }`); see docs/mapreduce.md. It counts
words as the doc's map.sh and reduce.sh do."""

import re

from taskframe import task
from taskframe.mapreduce import mapper, reducer

WORD = re.compile(r"[A-Za-z0-9]+")  # a word: a maximal run of ASCII letters and digits, as `tr -cs`


@task.handler("wordcount.map")
@mapper
def map_words(line):
    for word in WORD.findall(line):
        yield word, 1


@task.handler("wordcount.reduce")
@reducer
def sum_counts(key, values):
    yield "%s\t%d" % (key, sum(int(v) for v in values))


if __name__ == "__main__":
    task.run(name="wordcount-python", concurrency=2)
