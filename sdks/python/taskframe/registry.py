"""`@task.handler("name")`: handlers registered by decorator, and `task.run()` to serve them."""

from typing import Any, Callable, Dict, Optional, TypeVar, Union, overload

__all__ = ["Registry", "task"]

F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """Named handlers, collected with a decorator:

        @task.handler("resize")
        def resize(ctx): ...

        task.run(concurrency=8)   # a Worker serving every registered handler
    """

    def __init__(self) -> None:
        self.handlers: Dict[str, Callable[..., Any]] = {}

    @overload
    def handler(self, name: F) -> F: ...

    @overload
    def handler(self, name: Optional[str] = None) -> Callable[[F], F]: ...

    def handler(self, name: Union[str, Callable[..., Any], None] = None) -> Any:
        """Registers the decorated function under `name` (default: the function's name)."""
        if callable(name):  # bare @task.handler
            return self.handler(None)(name)

        def register(fn: F) -> F:
            if not callable(fn):
                raise TypeError("@handler decorates a function, got %r" % (fn,))
            key = name or getattr(fn, "__name__", "")
            if not key:
                raise ValueError("a handler needs a name: @task.handler(\"name\")")
            if key in self.handlers and self.handlers[key] is not fn:
                raise ValueError("a handler named %r is already registered (%r)" % (key, self.handlers[key]))
            self.handlers[key] = fn
            return fn

        return register

    def run(self, **options: Any) -> None:
        """Serves the registered handlers with a Worker(**options) until SIGTERM/SIGINT."""
        from .worker import Worker

        Worker(handlers=self.handlers, **options).run()

    def __repr__(self) -> str:
        return "<Registry %s>" % sorted(self.handlers)


#: The default registry: `from taskframe import task`.
task = Registry()
