"""Taskframe's Python SDK: long-lived workers that serve handler tasks for the sidecar.

    from taskframe import task

    @task.handler("resize")
    def resize(ctx):
        ctx.log("resizing %s" % ctx.json()["path"])
        return {"ok": True}

    task.run()

Standard library only; see README.md and docs/runner-protocol.md.
"""

__version__ = "0.1.0"

from ._codec import Output  # noqa: E402
from .context import CancelEvent, ChildStatus, SpawnedChild, TaskContext  # noqa: E402
from .errors import (  # noqa: E402
    Cancelled,
    ChildFailedError,
    ConnectionLost,
    NonRetryableError,
    RetryAfter,
    RpcError,
    SpawnError,
    TaskframeError,
    describe_error,
)
from .registry import Registry, task  # noqa: E402
from .worker import Worker  # noqa: E402

__all__ = [
    "__version__",
    "task",
    "Registry",
    "Worker",
    "TaskContext",
    "Output",
    "CancelEvent",
    "SpawnedChild",
    "ChildStatus",
    "NonRetryableError",
    "ChildFailedError",
    "RetryAfter",
    "Cancelled",
    "TaskframeError",
    "RpcError",
    "SpawnError",
    "ConnectionLost",
    "describe_error",
]
