"""MapReduce handlers: `@mapper` and `@reducer` turn a plain function into the
handler of a job's `map: { handler: NAME }` or `reduce: { handler: NAME }`
(see docs/mapreduce.md):

    from taskframe import task
    from taskframe.mapreduce import mapper, reducer

    @task.handler("wordcount.map")
    @mapper
    def map_words(line):
        for word in line.split():
            yield word, 1

    @task.handler("wordcount.reduce")
    @reducer
    def sum_counts(key, values):
        yield "%s\\t%d" % (key, sum(int(v) for v in values))

The handler receives the partition's descriptor as its input, reads the
partition, runs the function, and publishes its files in the job's staging
directory: into `attempt-<attempt>-<nonce>/`, renamed to `done/` (the first
attempt of a partition to finish wins; a later one deletes its files and
succeeds). It returns the attempt's counters.

A map function takes one input line (str, without its newline) and yields
(key, value) pairs; a record's key and value are str(key) and str(value) and
cannot hold a tab or a newline. A reduce function takes a key and the list
of its values (str), in a partition sorted bytewise by key, and returns an
iterable of output lines (without newlines), one line (a str), or None.
"""

import errno
import functools
import inspect
import itertools
import json
import operator
import os
import secrets
import shutil
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from .errors import Cancelled, NonRetryableError

__all__ = ["mapper", "reducer", "fnv1a32", "partition_of", "read_range"]

FNV_OFFSET_BASIS = 2166136261
FNV_PRIME = 16777619

# A partition's records are written once its buffer holds this many bytes,
# and every buffer once they hold BUFFERED_MAX together.
FLUSH_BYTES = 1 << 20
BUFFERED_MAX = 16 << 20
# How many input lines (map) or keys (reduce) between two looks at ctx.cancelled.
CANCEL_CHECK_EVERY = 4096

Counters = Dict[str, int]
Handler = Callable[[Any], Counters]


def fnv1a32(data: bytes) -> int:
    """The 32-bit FNV-1a hash of `data`."""
    h = FNV_OFFSET_BASIS
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return h


def partition_of(key: str, reducers: int) -> int:
    """The reduce partition of a record's key: fnv1a32(UTF-8 key bytes) mod reducers."""
    return fnv1a32(_encode(key)) % reducers


def read_range(path: str, start: int, end: int) -> Iterator[bytes]:
    """The lines (without their b"\\n") of `path` that begin at an offset in [start, end).

    The last one may run past `end`: it is read to its end. Cutting a file
    into adjacent ranges at any bytes yields each of its lines exactly once.
    """
    with open(path, "rb") as f:
        if start > 0:
            f.seek(start - 1)
            f.readline()  # the line that holds byte start-1 belongs to the range before
        offset = f.tell()
        while offset < end:
            line = f.readline()
            if not line:
                return
            offset += len(line)
            yield line[:-1] if line.endswith(b"\n") else line


def mapper(fn: Callable[[str], Optional[Iterable[Tuple[Any, Any]]]]) -> Handler:
    """Decorates `fn(line) -> (key, value) pairs` into the handler of a map partition."""
    _check_plain(fn, "mapper")

    @functools.wraps(fn)
    def handler(ctx: Any) -> Counters:
        d = _descriptor(ctx, "map")
        parent = os.path.join(d["staging"], "map", str(d["partition"]))
        return _in_attempt(ctx, parent, lambda path: _map(ctx, fn, d, path))

    return handler


def reducer(fn: Callable[[str, List[str]], Any]) -> Handler:
    """Decorates `fn(key, values) -> output lines` into the handler of a reduce partition."""
    _check_plain(fn, "reducer")

    @functools.wraps(fn)
    def handler(ctx: Any) -> Counters:
        d = _descriptor(ctx, "reduce")
        parent = os.path.join(d["staging"], "reduce", str(d["partition"]))
        return _in_attempt(ctx, parent, lambda path: _reduce(ctx, fn, d, path))

    return handler


# -- map -------------------------------------------------------------------


def _input_lines(d: Dict[str, Any]) -> Iterator[str]:
    if "keys" in d:
        yield from d["keys"]
        return
    for r in d["input"]:
        for line in read_range(r["path"], r["start"], r["end"]):
            yield line.decode("utf-8", "surrogateescape")


def _map(ctx: Any, fn: Callable[..., Any], d: Dict[str, Any], path: str) -> Counters:
    reducers = d["reducers"]
    files = [os.path.join(path, "r-%d" % r) for r in range(reducers)]
    for name in files:
        open(name, "wb").close()  # every partition's file exists, even empty
    buffers = [bytearray() for _ in range(reducers)]
    buffered = 0
    partitions: Dict[bytes, int] = {}  # a cache of keys' partitions
    counters = {"records_in": 0, "records_out": 0, "bytes_out": 0}

    def flush(r: int) -> None:
        with open(files[r], "ab") as f:
            f.write(buffers[r])
        buffers[r].clear()

    for line in _input_lines(d):
        counters["records_in"] += 1
        if counters["records_in"] % CANCEL_CHECK_EVERY == 0:
            _raise_if_cancelled(ctx)
        for pair in fn(line) or ():
            try:
                key, value = pair
            except (TypeError, ValueError):
                raise TypeError("a map function yields (key, value) pairs, got %r" % (pair,)) from None
            key_bytes, record = _record(str(key), str(value))
            r = partitions.get(key_bytes)
            if r is None:
                r = fnv1a32(key_bytes) % reducers
                if len(partitions) < 65536:
                    partitions[key_bytes] = r
            buffers[r] += record
            buffered += len(record)
            counters["records_out"] += 1
            counters["bytes_out"] += len(record)
            if len(buffers[r]) >= FLUSH_BYTES:
                buffered -= len(buffers[r])
                flush(r)
            elif buffered >= BUFFERED_MAX:
                for i in range(reducers):
                    if buffers[i]:
                        flush(i)
                buffered = 0
    _raise_if_cancelled(ctx)
    for r in range(reducers):
        if buffers[r]:
            flush(r)
    return counters


def _record(key: str, value: str) -> Tuple[bytes, bytes]:
    """A record's key bytes and its b"KEY\\tVALUE\\n"."""
    for what, text in (("key", key), ("value", value)):
        if "\t" in text or "\n" in text:
            raise ValueError(
                "the record with key %r has a tab or a newline in its %s: keys and values cannot hold them"
                % (key, what)
            )
    key_bytes = _encode(key)
    return key_bytes, key_bytes + b"\t" + _encode(value) + b"\n"


# -- reduce ----------------------------------------------------------------


def _reduce(ctx: Any, fn: Callable[..., Any], d: Dict[str, Any], path: str) -> Counters:
    records: List[Tuple[bytes, bytes]] = []
    for p in range(d["maps"]):
        _raise_if_cancelled(ctx)
        name = os.path.join(d["staging"], "map", str(p), "done", "r-%d" % d["partition"])
        try:
            with open(name, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise NonRetryableError("map partition %d has no output for this reduce (no %s)" % (p, name)) from None
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # the empty string after the last newline
        for line in lines:
            key, _, value = line.partition(b"\t")
            records.append((key, value))
    records.sort(key=operator.itemgetter(0))  # bytewise, stable: as LC_ALL=C sort

    counters = {"records_in": len(records), "records_out": 0, "bytes_out": 0}
    with open(os.path.join(path, "part"), "wb", buffering=FLUSH_BYTES) as out:
        groups = itertools.groupby(records, key=operator.itemgetter(0))
        for n, (key, group) in enumerate(groups, 1):
            if n % CANCEL_CHECK_EVERY == 0:
                _raise_if_cancelled(ctx)
            values = [_decode(value) for _, value in group]
            for line in _lines(fn(_decode(key), values)):
                data = (line if isinstance(line, bytes) else _encode(str(line))) + b"\n"
                out.write(data)
                counters["records_out"] += 1
                counters["bytes_out"] += len(data)
    _raise_if_cancelled(ctx)
    return counters


def _lines(result: Any) -> Iterable[Any]:
    if result is None:
        return ()
    if isinstance(result, (str, bytes)):
        return (result,)
    return result


# -- attempts and descriptors ----------------------------------------------


def _in_attempt(ctx: Any, parent: str, work: Callable[[str], Counters]) -> Counters:
    """Runs work(attempt directory) and publishes the directory as `parent/done`.

    The directory is made with a plain mkdir (the job's staging directory
    must still be there); it is removed if the work fails or loses the race.
    """
    attempt = "attempt-%d-%s" % (getattr(ctx, "attempt", 0), secrets.token_hex(8))
    path = os.path.join(parent, attempt)
    try:
        os.mkdir(path)
    except FileNotFoundError:
        raise _gone(parent) from None
    try:
        counters = work(path)
        with open(os.path.join(path, "counters.json"), "w") as f:
            json.dump(counters, f)
    except BaseException as error:
        shutil.rmtree(path, ignore_errors=True)
        if isinstance(error, OSError) and not os.path.isdir(parent):
            raise _gone(parent) from error
        raise
    try:
        os.rename(path, os.path.join(parent, "done"))
    except OSError as error:
        shutil.rmtree(path, ignore_errors=True)
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            ctx.log("%s lost to an earlier attempt: %s/done is already published" % (attempt, parent))
            return counters
        if not os.path.isdir(parent):
            raise _gone(parent) from error
        raise
    ctx.log(
        "published %s/done: %d records in, %d out (%d bytes)"
        % (parent, counters["records_in"], counters["records_out"], counters["bytes_out"])
    )
    return counters


def _gone(parent: str) -> NonRetryableError:
    staging = os.path.dirname(os.path.dirname(parent))
    return NonRetryableError("the job's staging directory %s is gone: the job was aborted (no %s)" % (staging, parent))


def _descriptor(ctx: Any, phase: str) -> Dict[str, Any]:
    """The task's input, checked to be a descriptor of `phase`."""
    try:
        d = ctx.json()
    except ValueError as error:
        raise NonRetryableError("a %s handler's input must be a JSON descriptor: %s" % (phase, error)) from None

    def bad(field: str, want: str) -> NonRetryableError:
        got = d.get(field) if field in d else "nothing"
        return NonRetryableError("%s descriptor: %r must be %s, got %r" % (phase, field, want, got))

    if not isinstance(d, dict):
        raise NonRetryableError("a %s handler's input must be a JSON object (a descriptor), got %r" % (phase, d))
    if d.get("phase") != phase:
        raise bad("phase", repr(phase))
    if not isinstance(d.get("staging"), str) or not d["staging"]:
        raise bad("staging", "a directory")
    counts = [("partition", 0), ("reducers", 1) if phase == "map" else ("maps", 0)]
    for field, least in counts:
        value = d.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise bad(field, "an integer >= %d" % least)
    if phase == "map":
        if ("input" in d) == ("keys" in d):
            raise NonRetryableError("map descriptor: needs one of 'input' and 'keys'")
        if "keys" in d:
            if not isinstance(d["keys"], list) or not all(isinstance(k, str) for k in d["keys"]):
                raise bad("keys", "a list of strings")
        elif not isinstance(d["input"], list) or not all(_is_range(r) for r in d["input"]):
            raise bad("input", "a list of {path, start, end} with 0 <= start <= end")
    return d


def _is_range(r: Any) -> bool:
    return (
        isinstance(r, dict)
        and isinstance(r.get("path"), str)
        and all(isinstance(r.get(k), int) and not isinstance(r.get(k), bool) for k in ("start", "end"))
        and 0 <= r["start"] <= r["end"]
    )


# -- helpers ---------------------------------------------------------------


def _check_plain(fn: Any, name: str) -> None:
    if not callable(fn):
        raise TypeError("@%s decorates a function, got %r" % (name, fn))
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError("@%s decorates a plain function or generator, not an async one: %r" % (name, fn))


def _raise_if_cancelled(ctx: Any) -> None:
    cancelled = getattr(ctx, "cancelled", None)
    if cancelled:
        raise Cancelled(getattr(cancelled, "reason", "") or "cancelled")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")
