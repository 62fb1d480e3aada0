"""Exceptions a handler raises to choose how its task fails, and how errors are reported."""

from typing import Any, Dict, Iterable, List, Optional

__all__ = [
    "TaskframeError",
    "RpcError",
    "SpawnError",
    "ConnectionLost",
    "NonRetryableError",
    "ChildFailedError",
    "RetryAfter",
    "Cancelled",
    "describe_error",
]


class TaskframeError(Exception):
    """Base class of the SDK's own errors (not of the ones handlers raise)."""


class RpcError(TaskframeError):
    """A Runner protocol call failed: `code` is the Connect error code (e.g. "not_found")."""

    def __init__(self, code: str, message: str, method: str = "", status: int = 0) -> None:
        self.code = code or "unknown"
        self.message = message
        self.method = method
        self.status = status
        where = "%s: " % method if method else ""
        super().__init__("%s%s: %s" % (where, self.code, message))


class ConnectionLost(TaskframeError):
    """The Assignments stream ended with an error or its connection broke: the worker is lost."""


class NonRetryableError(Exception):
    """Raise from a handler to fail the task for good: no further attempts."""


class ChildFailedError(NonRetryableError):
    """Raised by `ctx.await_children()`: a child did not succeed (its state is not
    TASK_STATE_SUCCEEDED, or a task it spawned did not succeed). Non-retryable: retrying the
    parent would find the same children. `failed` holds their ChildStatus, `children` all of them.
    """

    def __init__(self, failed: Iterable[Any], children: Optional[Iterable[Any]] = None) -> None:
        self.failed: List[Any] = list(failed)
        self.children: List[Any] = list(children) if children is not None else list(self.failed)
        what = "a child" if len(self.failed) == 1 else "%d children" % len(self.failed)
        super().__init__("%s did not succeed: %s" % (what, "; ".join(_describe_child(c) for c in self.failed)))


def _describe_child(child: Any) -> str:
    state = getattr(child, "state", "") or "TASK_STATE_UNSPECIFIED"
    if state == "TASK_STATE_SUCCEEDED" and getattr(child, "subtree_failed", False):
        state += ", but a task it spawned did not"
    name = getattr(child, "name", "") or getattr(child, "key", "?")
    detail = getattr(child, "detail", "")
    return "%s %s%s" % (name, state, " (%s)" % detail if detail else "")


class RetryAfter(Exception):
    """Raise from a handler to fail this attempt and have the next one wait at least `seconds`."""

    def __init__(self, seconds: float, message: Optional[str] = None) -> None:
        if seconds < 0:
            raise ValueError("RetryAfter needs a non-negative delay, got %r" % (seconds,))
        self.seconds = float(seconds)
        super().__init__(message if message is not None else "retry after %g s" % self.seconds)

    @property
    def retry_after_ms(self) -> int:
        return int(round(self.seconds * 1000))


class Cancelled(Exception):
    """Raised by `ctx.raise_if_cancelled()`: the task was cancelled (message: the reason)."""


def describe_error(error: BaseException) -> Dict[str, Any]:
    """How a raised exception is reported (every SDK maps the same way):

    NonRetryableError -> nonRetryable; RetryAfter -> retryAfterMs; anything
    else is retryable. `type` is the exception's class name and `message` is
    str(error).
    """
    described = {
        "type": type(error).__name__ or "Exception",
        "message": _message(error),
        "nonRetryable": isinstance(error, NonRetryableError),
    }
    if isinstance(error, RetryAfter):
        described["retryAfterMs"] = error.retry_after_ms
    return described


def _message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a broken __str__ must not lose the report
        return repr(error)


class SpawnError(RpcError):
    """ctx.spawn failed: the sidecar refused the children (or does not support spawning yet)."""
