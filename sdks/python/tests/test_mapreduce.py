"""taskframe.mapreduce: input ranges, partitioning, the staging layout and the first-wins publish."""

import collections
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.join(HERE, "..")
sys.path.insert(0, SDK)

from taskframe import Cancelled, NonRetryableError, task  # noqa: E402
from taskframe.context import CancelEvent  # noqa: E402
from taskframe.mapreduce import fnv1a32, mapper, partition_of, read_range, reducer  # noqa: E402

EXAMPLE = os.path.join(HERE, "..", "..", "..", "examples", "mapreduce", "python", "wordcount_worker.py")


class FakeContext:
    """What the handlers use of a TaskContext: json(), log(), attempt, cancelled."""

    def __init__(self, descriptor, attempt=1):
        self.descriptor = descriptor
        self.attempt = attempt
        self.cancelled = CancelEvent()
        self.logs = []

    def json(self):
        return self.descriptor

    def log(self, line, stream="stdout"):
        self.logs.append(str(line))


@mapper
def map_words(line):
    for word in line.split():
        yield word, 1


@reducer
def sum_counts(key, values):
    yield "%s\t%d" % (key, sum(int(v) for v in values))


class StagingTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="taskframe-mr-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.staging = os.path.join(self.dir, "staging")

    def make_partitions(self, maps, reducers):
        for p in range(maps):
            os.makedirs(os.path.join(self.staging, "map", str(p)))
        for r in range(reducers):
            os.makedirs(os.path.join(self.staging, "reduce", str(r)))

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def map_descriptor(self, partition, reducers, **source):
        d = {"phase": "map", "job": "j", "staging": self.staging, "partition": partition, "reducers": reducers}
        d.update(source)
        return d

    def reduce_descriptor(self, partition, maps):
        return {"phase": "reduce", "job": "j", "staging": self.staging, "partition": partition, "maps": maps}

    def listing(self, *parts):
        return sorted(os.listdir(os.path.join(self.staging, *parts)))

    def read(self, *parts):
        with open(os.path.join(self.staging, *parts), "rb") as f:
            return f.read()


class HashTest(unittest.TestCase):
    def test_fnv1a32(self):
        self.assertEqual(fnv1a32(b""), 2166136261)
        self.assertEqual(fnv1a32(b"a"), 0xE40C292C)
        self.assertEqual(fnv1a32(b"foobar"), 0xBF9CF968)

    def test_partition_of_hashes_the_utf8_bytes(self):
        self.assertEqual(partition_of("é", 7), fnv1a32("é".encode("utf-8")) % 7)
        self.assertEqual(partition_of("a", 1), 0)


class ReadRangeTest(StagingTestCase):
    DATA = b"alpha beta\n\ngamma\r\n d\n\n\nlast line without newline"

    def lines(self, path, cuts):
        out = []
        for start, end in zip(cuts, cuts[1:]):
            out.extend(read_range(path, start, end))
        return out

    def test_every_cut_into_two_ranges_owns_each_line_once(self):
        path = self.write("in.txt", self.DATA)
        expected = self.DATA.split(b"\n")
        for cut in range(len(self.DATA) + 1):
            self.assertEqual(self.lines(path, [0, cut, len(self.DATA)]), expected, "cut at %d" % cut)

    def test_every_cut_into_three_ranges_owns_each_line_once(self):
        data = b"ab\ncd\n\nefg\nh\n"
        path = self.write("in.txt", data)
        expected = data.split(b"\n")[:-1]  # the file ends with a newline: no empty last line
        for i in range(len(data) + 1):
            for j in range(i, len(data) + 1):
                self.assertEqual(self.lines(path, [0, i, j, len(data) + 5]), expected, "cuts %d %d" % (i, j))

    def test_a_line_that_begins_inside_is_read_past_end(self):
        path = self.write("in.txt", b"one\ntwo\nthree\n")
        self.assertEqual(list(read_range(path, 0, 1)), [b"one"])
        self.assertEqual(list(read_range(path, 1, 5)), [b"two"])  # "two" begins at 4
        self.assertEqual(list(read_range(path, 4, 4)), [])
        self.assertEqual(list(read_range(path, 5, 100)), [b"three"])


class MapTest(StagingTestCase):
    TEXT = "the cat saw the dog\nthe dog ran\n\nzoë ran fast\n"

    def run_map(self, partition=0, reducers=3, attempt=1, fn=map_words, **source):
        if not source:
            path = self.write("in.txt", self.TEXT.encode("utf-8"))
            source = {"input": [{"path": path, "start": 0, "end": len(self.TEXT.encode("utf-8"))}]}
        ctx = FakeContext(self.map_descriptor(partition, reducers, **source), attempt=attempt)
        return ctx, fn(ctx)

    def records(self, partition, reducers):
        out = []
        for r in range(reducers):
            for line in self.read("map", str(partition), "done", "r-%d" % r).splitlines():
                key, value = line.split(b"\t")
                self.assertEqual(fnv1a32(key) % reducers, r, "key %r is in r-%d" % (key, r))
                out.append((key.decode("utf-8"), value.decode("utf-8")))
        return out

    def test_writes_every_partition_file_and_the_counters(self):
        self.make_partitions(1, 3)
        ctx, counters = self.run_map(reducers=3)
        self.assertEqual(self.listing("map", "0"), ["done"])
        self.assertEqual(self.listing("map", "0", "done"), ["counters.json", "r-0", "r-1", "r-2"])
        words = self.TEXT.split()
        self.assertEqual(sorted(self.records(0, 3)), sorted((w, "1") for w in words))
        size = sum(os.path.getsize(os.path.join(self.staging, "map", "0", "done", "r-%d" % r)) for r in range(3))
        expected = {"records_in": 4, "records_out": len(words), "bytes_out": size}
        self.assertEqual(counters, expected)
        self.assertEqual(json.loads(self.read("map", "0", "done", "counters.json")), expected)

    def test_empty_partitions_still_get_their_file(self):
        self.make_partitions(1, 8)
        self.run_map(reducers=8, keys=["a"])
        self.assertEqual(len([n for n in self.listing("map", "0", "done") if n.startswith("r-")]), 8)
        self.assertEqual(self.records(0, 8), [("a", "1")])

    def test_keys_are_the_input_lines(self):
        self.make_partitions(3, 2)

        @mapper
        def echo(line):
            yield line, len(line)

        _, counters = self.run_map(partition=2, reducers=2, fn=echo, keys=["s3://b/a", "s3://b/bb"])
        self.assertEqual(sorted(self.records(2, 2)), [("s3://b/a", "8"), ("s3://b/bb", "9")])
        self.assertEqual(counters["records_in"], 2)

    def test_flushes_large_outputs_in_pieces(self):
        self.make_partitions(1, 2)
        lines = ["w%d x%d" % (i, i % 7) for i in range(60000)]
        path = self.write("big.txt", ("\n".join(lines) + "\n").encode())
        with mock.patch("taskframe.mapreduce.FLUSH_BYTES", 4096), mock.patch("taskframe.mapreduce.BUFFERED_MAX", 6000):
            _, counters = self.run_map(reducers=2, input=[{"path": path, "start": 0, "end": os.path.getsize(path)}])
        self.assertEqual(counters["records_out"], 120000)
        self.assertEqual(collections.Counter(k for k, _ in self.records(0, 2)),
                         collections.Counter(" ".join(lines).split()))

    def test_a_second_attempt_loses_the_rename_and_leaves_nothing(self):
        self.make_partitions(1, 2)
        self.run_map(reducers=2, attempt=1)
        first = self.read("map", "0", "done", "r-0"), self.read("map", "0", "done", "r-1")

        @mapper
        def other(line):  # a different output shows which attempt's files stayed
            yield "other", 1

        ctx, _ = self.run_map(reducers=2, attempt=2, fn=other)
        self.assertEqual(self.listing("map", "0"), ["done"])
        self.assertEqual((self.read("map", "0", "done", "r-0"), self.read("map", "0", "done", "r-1")), first)
        self.assertTrue(any("lost to an earlier attempt" in line for line in ctx.logs), ctx.logs)

    def test_a_missing_staging_directory_means_the_job_was_aborted(self):
        with self.assertRaises(NonRetryableError) as caught:
            self.run_map(reducers=2, keys=["a"])
        self.assertIn("is gone: the job was aborted", str(caught.exception))
        self.assertFalse(os.path.exists(self.staging))

    def test_a_tab_or_newline_in_a_record_fails_the_attempt(self):
        self.make_partitions(1, 2)
        for key, value in (("a\tb", 1), ("ok", "x\ny")):

            @mapper
            def bad(line):
                yield key, value

            with self.assertRaises(ValueError) as caught:
                self.run_map(reducers=2, fn=bad, keys=["x"])
            self.assertIn(repr(key), str(caught.exception))
            self.assertEqual(self.listing("map", "0"), [])

    def test_a_failing_function_removes_the_attempt_directory(self):
        self.make_partitions(1, 2)

        @mapper
        def boom(line):
            raise RuntimeError("boom")

        with self.assertRaisesRegex(RuntimeError, "boom"):
            self.run_map(reducers=2, fn=boom, keys=["x"])
        self.assertEqual(self.listing("map", "0"), [])

    def test_stops_when_cancelled(self):
        self.make_partitions(1, 2)
        seen = []
        ctx = FakeContext(self.map_descriptor(0, 2, keys=["k%d" % i for i in range(100000)]))

        @mapper
        def cancelling(line):
            seen.append(line)
            if len(seen) == 10:
                ctx.cancelled.cancel("run cancelled")
            yield line, 1

        with self.assertRaisesRegex(Cancelled, "run cancelled"):
            cancelling(ctx)
        self.assertLess(len(seen), 10000)
        self.assertEqual(self.listing("map", "0"), [])

    def test_malformed_descriptors_name_the_field(self):
        self.make_partitions(1, 1)
        good = self.map_descriptor(0, 2, keys=["a"])
        cases = [
            ({"phase": "reduce"}, "phase"),
            ({"staging": 3}, "staging"),
            ({"partition": -1}, "partition"),
            ({"reducers": 0}, "reducers"),
            ({"reducers": True}, "reducers"),
            ({"keys": "a"}, "keys"),
            ({"keys": None, "input": [{"path": "x", "start": 5, "end": 1}]}, "input"),
        ]
        for change, field in cases:
            d = dict(good, **change)
            if d.get("keys") is None:
                d.pop("keys")
            with self.assertRaises(NonRetryableError, msg=field) as caught:
                map_words(FakeContext(d))
            self.assertIn(repr(field), str(caught.exception))
        d = dict(good)
        d.pop("keys")
        with self.assertRaisesRegex(NonRetryableError, "'input' and 'keys'"):
            map_words(FakeContext(d))
        with self.assertRaisesRegex(NonRetryableError, "JSON object"):
            map_words(FakeContext(None))
        self.assertEqual(self.listing("map", "0"), [])


class ReduceTest(StagingTestCase):
    def stage_map_output(self, p, r, data):
        done = os.path.join(self.staging, "map", str(p), "done")
        os.makedirs(done, exist_ok=True)
        with open(os.path.join(done, "r-%d" % r), "wb") as f:
            f.write(data)

    def test_groups_sorted_keys_bytewise_with_values_in_order(self):
        self.make_partitions(2, 2)
        self.stage_map_output(0, 1, "b\t1\né\t2\na\t3\nZ\t4\nz\n".encode("utf-8"))
        self.stage_map_output(1, 1, "a\t5\nä\t6\nb\t7\n\t8\nz\tx\ty".encode("utf-8"))  # no newline at the end
        calls = []

        @reducer
        def collect(key, values):
            calls.append((key, values))
            return "%s=%s" % (key, ",".join(values))

        ctx = FakeContext(self.reduce_descriptor(1, 2))
        counters = collect(ctx)
        # bytewise: "" < "Z" < "a" < "b" < "z" < "ä" (c3 a4) < "é" (c3 a9)
        self.assertEqual(
            calls,
            [("", ["8"]), ("Z", ["4"]), ("a", ["3", "5"]), ("b", ["1", "7"]), ("z", ["", "x\ty"]),
             ("ä", ["6"]), ("é", ["2"])],
        )
        part = "=8\nZ=4\na=3,5\nb=1,7\nz=,x\ty\nä=6\né=2\n".encode("utf-8")
        self.assertEqual(self.listing("reduce", "1"), ["done"])
        self.assertEqual(self.read("reduce", "1", "done", "part"), part)
        expected = {"records_in": 10, "records_out": 7, "bytes_out": len(part)}
        self.assertEqual(counters, expected)
        self.assertEqual(json.loads(self.read("reduce", "1", "done", "counters.json")), expected)

    def test_output_may_be_lines_a_line_or_none(self):
        self.make_partitions(1, 1)
        self.stage_map_output(0, 0, b"a\t1\nb\t2\nc\t3\n")

        @reducer
        def mixed(key, values):
            return {"a": ["a1", "a2"], "b": None, "c": "c"}[key]

        self.assertEqual(mixed(FakeContext(self.reduce_descriptor(0, 1)))["records_out"], 3)
        self.assertEqual(self.read("reduce", "0", "done", "part"), b"a1\na2\nc\n")

    def test_a_missing_map_output_names_the_map_partition(self):
        self.make_partitions(3, 1)
        self.stage_map_output(0, 0, b"")
        self.stage_map_output(2, 0, b"")
        with self.assertRaisesRegex(NonRetryableError, "map partition 1"):
            sum_counts(FakeContext(self.reduce_descriptor(0, 3)))
        self.assertEqual(self.listing("reduce", "0"), [])

    def test_a_second_attempt_loses_and_a_missing_staging_fails(self):
        self.make_partitions(1, 1)
        self.stage_map_output(0, 0, b"a\t1\n")
        sum_counts(FakeContext(self.reduce_descriptor(0, 1), attempt=1))
        ctx = FakeContext(self.reduce_descriptor(0, 1), attempt=2)
        sum_counts(ctx)
        self.assertEqual(self.listing("reduce", "0"), ["done"])
        self.assertTrue(any("lost to an earlier attempt" in line for line in ctx.logs), ctx.logs)
        shutil.rmtree(self.staging)
        with self.assertRaisesRegex(NonRetryableError, "is gone: the job was aborted"):
            sum_counts(FakeContext(self.reduce_descriptor(0, 1)))


class WordcountExampleTest(StagingTestCase):
    def load_example(self):
        patch = mock.patch.dict(task.handlers)  # the example registers into the default registry
        patch.start()
        self.addCleanup(patch.stop)
        spec = importlib.util.spec_from_file_location("wordcount_worker", EXAMPLE)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        return task.handlers["wordcount.map"], task.handlers["wordcount.reduce"]

    def test_a_whole_job(self):
        map_handler, reduce_handler = self.load_example()
        text = b"It's the cat, the CAT and 2 cats.\nthe end\xff of it\n\nthe"
        path = self.write("corpus.txt", text)
        maps, reducers, cut = 3, 2, [0, 7, 20, len(text)]
        self.make_partitions(maps, reducers)
        for p in range(maps):
            source = {"input": [{"path": path, "start": cut[p], "end": cut[p + 1]}]}
            map_handler(FakeContext(self.map_descriptor(p, reducers, **source)))
        out = b""
        for r in range(reducers):
            reduce_handler(FakeContext(self.reduce_descriptor(r, maps)))
            out += self.read("reduce", str(r), "done", "part")
        counts = dict(line.split("\t") for line in out.decode().splitlines())
        self.assertEqual(
            counts,
            {"It": "1", "s": "1", "the": "4", "cat": "1", "CAT": "1", "and": "1", "2": "1", "cats": "1",
             "end": "1", "of": "1", "it": "1"},
        )


if __name__ == "__main__":
    unittest.main()
