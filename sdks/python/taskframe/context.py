"""What a handler gets: its task's identity and input, logging, progress, spawning and cancellation."""

import asyncio
import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

from .errors import Cancelled, ChildFailedError

__all__ = ["TaskContext", "CancelEvent", "SpawnedChild", "ChildStatus"]

# How await_children polls: the first wait, doubling up to the last.
AWAIT_FIRST_S = 0.02
AWAIT_MAX_S = 1.0

# TaskState by number, for a sidecar that sends enums as numbers (proto3 JSON allows it).
_TASK_STATES = (
    "TASK_STATE_UNSPECIFIED",
    "TASK_STATE_CREATED",
    "TASK_STATE_PENDING",
    "TASK_STATE_RUNNING",
    "TASK_STATE_SUCCEEDED",
    "TASK_STATE_FAILED",
    "TASK_STATE_RETRYING",
    "TASK_STATE_CANCELLED",
    "TASK_STATE_TIMED_OUT",
    "TASK_STATE_SKIPPED",
    "TASK_STATE_CHECK_FAILED",
)


class CancelEvent(threading.Event):
    """Set when the task is cancelled (run cancelled, deadline passed, lease lost).

    A threading.Event that is also truthy once set: `if ctx.cancelled: ...`,
    `ctx.cancelled.wait(1.0)`; `reason` says why.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reason = ""
        self._callbacks: List[Callable[[], None]] = []
        self._callback_lock = threading.Lock()

    def __bool__(self) -> bool:
        return self.is_set()

    def cancel(self, reason: str) -> bool:
        """Sets the event with a reason (the first reason wins); True if it was not set before."""
        with self._callback_lock:
            if self.is_set():
                return False
            self.reason = reason or "cancelled"
            super().set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                pass
        return True

    def set(self) -> None:  # noqa: A003 - threading.Event's API
        self.cancel("cancelled")

    def add_callback(self, callback: Callable[[], None]) -> None:
        """Calls `callback` (from the cancelling thread) once the event is set; at once if it is."""
        with self._callback_lock:
            if not self.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def remove_callback(self, callback: Callable[[], None]) -> None:
        with self._callback_lock:
            try:
                self._callbacks.remove(callback)
            except ValueError:
                pass

    def __repr__(self) -> str:
        return "<CancelEvent %s>" % ("cancelled: %s" % self.reason if self.is_set() else "not cancelled")


class SpawnedChild:
    """A child added to the run by ctx.spawn: `name` is `<parent name>/<key>`; `existing` if spawned before."""

    __slots__ = ("key", "task_id", "name", "existing")

    def __init__(self, key: str, task_id: str, name: str, existing: bool) -> None:
        self.key = key
        self.task_id = task_id
        self.name = name
        self.existing = existing

    def as_dict(self) -> Dict[str, Any]:
        return {"key": self.key, "task_id": self.task_id, "name": self.name, "existing": self.existing}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpawnedChild) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return "SpawnedChild(key=%r, task_id=%r, name=%r, existing=%r)" % (
            self.key,
            self.task_id,
            self.name,
            self.existing,
        )


@dataclass(frozen=True)
class ChildStatus:
    """Where a child of the task stands (ctx.children / ctx.await_children).

    `name` is `<parent name>/<key>`; `state` the TaskState's proto name
    ("TASK_STATE_SUCCEEDED", ...); `settled` once the child and everything it
    spawned have ended; `subtree_failed` if a task it spawned (at any depth)
    did not succeed; `output` (bytes) + `output_content_type` once it
    succeeded; `detail` why it ended as it did (a failed child's error).
    """

    key: str
    task_id: str
    name: str
    state: str
    attempt: int
    settled: bool
    subtree_failed: bool
    output: bytes
    output_content_type: str
    detail: str

    @property
    def succeeded(self) -> bool:
        """The child succeeded, and so did everything it spawned."""
        return self.state == "TASK_STATE_SUCCEEDED" and not self.subtree_failed

    def text(self, encoding: str = "utf-8") -> str:
        """The output as text."""
        return self.output.decode(encoding)

    def json(self) -> Any:
        """The output parsed as JSON (None for an empty output)."""
        if not self.output:
            return None
        return json.loads(self.output.decode("utf-8"))

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_message(cls, message: Dict[str, Any]) -> "ChildStatus":
        """From a ChildStatus in proto3 JSON (defaults omitted)."""
        from ._codec import as_int, b64decode

        state = message.get("state") or "TASK_STATE_UNSPECIFIED"
        if isinstance(state, int):
            state = _TASK_STATES[state] if 0 <= state < len(_TASK_STATES) else "TASK_STATE_%d" % state
        return cls(
            key=message.get("key", ""),
            task_id=message.get("taskId", ""),
            name=message.get("name", ""),
            state=str(state),
            attempt=as_int(message.get("attempt")),
            settled=bool(message.get("settled", False)),
            subtree_failed=bool(message.get("subtreeFailed", False)),
            output=b64decode(message.get("output")),
            output_content_type=message.get("outputContentType", ""),
            detail=message.get("detail", ""),
        )


Keys = Union[None, str, Iterable[str]]


def _keys(keys: Keys) -> List[str]:
    if keys is None:
        return []
    if isinstance(keys, str):
        return [keys]
    return [str(key) for key in keys]


def _settled(children: List[ChildStatus], fail_on_error: bool) -> Optional[List[ChildStatus]]:
    """The children if every one is settled (raising ChildFailedError for failures if asked), else None."""
    if not all(child.settled for child in children):
        return None
    failed = [child for child in children if not child.succeeded]
    if fail_on_error and failed:
        raise ChildFailedError(failed, children)
    return children


class TaskContext:
    """One assignment of a handler task.

    Attributes: task_id, run_id, task_name, attempt (1-based), lease_epoch,
    handler, input (bytes), content_type, traceparent, deadline (Unix
    seconds, or None), cancelled (a CancelEvent).
    """

    def __init__(self, assignment: Dict[str, Any], worker: Any) -> None:
        from ._codec import as_int, b64decode

        self._worker = worker
        self.task_id: str = assignment.get("taskId", "")
        self.run_id: str = assignment.get("runId", "")
        self.task_name: str = assignment.get("taskName", "")
        self.attempt: int = as_int(assignment.get("attempt"))
        self.handler: str = assignment.get("handler", "")
        self.input: bytes = b64decode(assignment.get("input"))
        self.content_type: str = assignment.get("contentType", "")
        self.traceparent: str = assignment.get("traceparent", "")
        self.deadline_unix_ms: int = as_int(assignment.get("deadlineUnixMs"))
        # the identity triple, exactly as received, for every report about this assignment
        self._identity = {
            "taskId": self.task_id,
            "attempt": assignment.get("attempt", 0),
            "leaseEpoch": assignment.get("leaseEpoch", "0"),
        }
        self.lease_epoch: int = as_int(assignment.get("leaseEpoch"))
        self.cancelled = CancelEvent()

    # -- input -------------------------------------------------------------

    @property
    def deadline(self) -> Optional[float]:
        """When the handler should have stopped by (Unix seconds), or None."""
        return self.deadline_unix_ms / 1000.0 if self.deadline_unix_ms > 0 else None

    def time_left(self) -> Optional[float]:
        """Seconds until the deadline (may be negative), or None without one."""
        deadline = self.deadline
        return None if deadline is None else deadline - time.time()

    def text(self, encoding: str = "utf-8") -> str:
        """The input as text."""
        return self.input.decode(encoding)

    def json(self) -> Any:
        """The input parsed as JSON (None for an empty input)."""
        if not self.input:
            return None
        return json.loads(self.input.decode("utf-8"))

    # -- reports -----------------------------------------------------------

    def log(self, line: Any, stream: str = "stdout") -> None:
        """A line in the task's log (`task logs NAME`); stream "stdout" or "stderr". Does not block."""
        if stream not in ("stdout", "stderr"):
            raise ValueError("stream must be 'stdout' or 'stderr', got %r" % (stream,))
        self._worker._log(self, line if isinstance(line, str) else str(line), stream)

    def heartbeat(self, progress: Optional[float] = None, message: str = "") -> None:
        """Still working: progress 0..1 (None: unknown) and a message, shown in the task's log. Does not block."""
        if progress is not None:
            progress = float(progress)
            if progress < 0:
                progress = -1.0
            elif progress > 1:
                progress = 1.0
        self._worker._progress(self, -1.0 if progress is None else progress, message or "")

    def spawn(self, children: Iterable[Dict[str, Any]]) -> List[SpawnedChild]:
        """Adds children to this task's run and returns them (idempotent per key: a retried
        parent gets the existing children back, with existing=True). Blocks for the call.

            ctx.spawn([{"key": "a", "handler": "resize", "input": {"size": 64}},
                       {"key": "b", "handler": "upload", "needs": ["a"], "retries": 2}])

        A child is a dict: key, handler + input (bytes, str, None or a JSON value;
        content_type to override), or command + args; needs, after, retries,
        timeout_ms, labels, pool. Raises SpawnError if the sidecar refuses.
        """
        if isinstance(children, dict):
            children = [children]
        return self._worker._spawn(self, list(children))

    async def spawn_async(self, children: Iterable[Dict[str, Any]]) -> List[SpawnedChild]:
        """ctx.spawn for async handlers: the call runs off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.spawn, children)

    # -- children ----------------------------------------------------------

    def children(self, keys: Keys = None) -> List[ChildStatus]:
        """Where this task's children stand, in spawn order (only `keys` if given; a str is one key).
        One call, blocks for it; raises RpcError if the sidecar refuses."""
        return self._worker._children(self, _keys(keys))

    async def children_async(self, keys: Keys = None) -> List[ChildStatus]:
        """ctx.children for async handlers: the call runs off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.children, keys)

    def await_children(self, keys: Keys = None, fail_on_error: bool = True) -> List[ChildStatus]:
        """Blocks until every child (only `keys` if given) is settled: it and all it spawned have
        ended. Returns their ChildStatus in spawn order.

        If one did not succeed (state not TASK_STATE_SUCCEEDED, or subtree_failed) and
        fail_on_error, raises ChildFailedError (a NonRetryableError naming each failed child).
        Polls every 20 ms, doubling to 1 s; raises Cancelled if the task is cancelled meanwhile.
        """
        wanted = _keys(keys)
        wait = AWAIT_FIRST_S
        while True:
            self.raise_if_cancelled()
            done = _settled(self._worker._children(self, wanted), fail_on_error)
            if done is not None:
                return done
            if self.cancelled.wait(wait):
                raise Cancelled(self.cancelled.reason)
            wait = min(AWAIT_MAX_S, wait * 2)

    async def await_children_async(self, keys: Keys = None, fail_on_error: bool = True) -> List[ChildStatus]:
        """ctx.await_children for async handlers: polls without blocking the event loop."""
        wanted = _keys(keys)
        wait = AWAIT_FIRST_S
        while True:
            self.raise_if_cancelled()
            done = _settled(await self.children_async(wanted), fail_on_error)
            if done is not None:
                return done
            if await self.wait_cancelled_async(wait):
                raise Cancelled(self.cancelled.reason)
            wait = min(AWAIT_MAX_S, wait * 2)

    # -- cancellation ------------------------------------------------------

    @property
    def cancel_reason(self) -> str:
        """Why the task was cancelled ("" if it was not)."""
        return self.cancelled.reason

    def wait_cancelled(self, timeout: Optional[float] = None) -> bool:
        """Blocks until the task is cancelled or `timeout` seconds pass; True if cancelled.
        A cancellable sleep: `if ctx.wait_cancelled(5): raise Cancelled(ctx.cancel_reason)`."""
        return self.cancelled.wait(timeout)

    async def wait_cancelled_async(self, timeout: Optional[float] = None) -> bool:
        """wait_cancelled for async code. (An async handler is also cancelled the asyncio way, with
        CancelledError at its current await; this is for code that shields itself from that.)"""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(True))

        self.cancelled.add_callback(wake)
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self.cancelled.remove_callback(wake)
        return self.cancelled.is_set()

    def raise_if_cancelled(self) -> None:
        """Raises Cancelled(reason) if the task was cancelled."""
        if self.cancelled.is_set():
            raise Cancelled(self.cancelled.reason)

    def __repr__(self) -> str:
        return "<TaskContext %s %s attempt %d (%s)>" % (self.task_name, self.task_id, self.attempt, self.handler)
