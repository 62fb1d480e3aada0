#!/usr/bin/env python3
"""Conformance adapter for the Python SDK (docs/conformance-adapter.md).

    task conformance -- python3 sdks/python/conformance_adapter.py

A worker built with the public API only, serving `conformance.echo` and
`conformance.script`. Environment: TASKFRAME_SOCKET (or
TASKFRAME_RUNNER_URL), TASKFRAME_CONFORMANCE_CONCURRENCY (default 4),
TASKFRAME_WORKER_NAME. SIGTERM drains and exits 0.
"""

import json
import os
import sys

# importable without installing the SDK: the package sits next to this file
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from taskframe import Cancelled, NonRetryableError, Output, RetryAfter, Worker  # noqa: E402


def echo(ctx):
    """The input, unchanged, with the input's content type."""
    return Output(ctx.input, ctx.content_type)


def script(ctx):
    """Follows attempts[min(attempt, len) - 1] of {"attempts": [{"steps": [...]}, ...]}."""
    spec = ctx.json() or {}
    attempts = spec.get("attempts") or [{}]
    behaviour = attempts[min(max(ctx.attempt, 1), len(attempts)) - 1] or {}
    awaited = []  # the children of the last await_children step
    for step in behaviour.get("steps") or []:
        if not isinstance(step, dict) or not step:
            raise NonRetryableError("a step is an object with one key, got %r" % (step,))
        if "log" in step:
            ctx.log(str(step["log"]), stream=step.get("stream", "stdout"))
        elif "heartbeat" in step:
            progress = step["heartbeat"]
            ctx.heartbeat(None if progress is None else float(progress), step.get("message", ""))
        elif "sleep_ms" in step:
            if ctx.wait_cancelled(float(step["sleep_ms"]) / 1000.0):
                raise Cancelled(ctx.cancel_reason)
        elif "wait_cancel" in step:
            ctx.wait_cancelled()
            raise Cancelled(ctx.cancel_reason)
        elif "spawn" in step:
            ctx.spawn([_child(child) for child in step["spawn"]])
        elif "await_children" in step:
            options = step["await_children"] or {}
            awaited = ctx.await_children(fail_on_error=options.get("fail_on_error") is not False)
        elif "return_children" in step:
            children = [{"key": c.key, "output": c.output.decode("utf-8", errors="replace")} for c in awaited]
            return Output(json.dumps(children), "application/json")
        elif "crash" in step:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        elif "return" in step:
            value = step["return"]
            if value is None or isinstance(value, str):
                # the SDK would send these as nothing / text: the case asks for JSON
                return Output(json.dumps(value), "application/json")
            return value  # dicts, lists, numbers, booleans: the SDK's JSON encoding
        elif "return_text" in step:
            return str(step["return_text"])
        elif "fail" in step:
            raise _failure(step["fail"] or {})
        else:
            raise NonRetryableError("unknown step %r" % (", ".join(sorted(step)),))
    return None


def _child(child):
    """A spawn step's child; its `input` is a JSON value, sent as application/json whatever its type."""
    child = dict(child)
    if "input" in child:
        child["input"] = Output(json.dumps(child["input"]), "application/json")
    return child


def _failure(fail):
    kind = fail.get("kind", "retryable")
    message = str(fail.get("message", ""))
    if kind == "non_retryable":
        return NonRetryableError(message)
    if kind == "retry_after":
        return RetryAfter(float(fail.get("retry_after_ms", 0)) / 1000.0, message)
    if kind == "retryable":
        # a plain exception whose class name is the requested type
        return type(str(fail.get("type") or "Error"), (Exception,), {})(message)
    return NonRetryableError("unknown fail kind %r" % (kind,))


def main():
    worker = Worker(
        handlers={"conformance.echo": echo, "conformance.script": script},
        concurrency=int(os.environ.get("TASKFRAME_CONFORMANCE_CONCURRENCY") or 4),
        name=os.environ.get("TASKFRAME_WORKER_NAME") or "python-conformance",
    )
    worker.run()


if __name__ == "__main__":
    main()
