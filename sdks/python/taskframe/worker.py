"""The long-lived worker: registers handlers, takes assignments from one stream, reports in batches."""

import asyncio
import functools
import inspect
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple

from . import __version__ as SDK_VERSION
from ._codec import as_int, b64encode, child_spec, encode_value
from ._transport import Client, Endpoint, Stream
from .context import ChildStatus, SpawnedChild, TaskContext
from .errors import Cancelled, ConnectionLost, RpcError, SpawnError, describe_error

__all__ = ["Worker", "Handler"]

Handler = Callable[[TaskContext], Any]

logger = logging.getLogger("taskframe")

# What accumulates within this long travels in one call.
FLUSH_S = 0.005
# How long run() keeps trying to reach a sidecar that is not listening yet.
CONNECT_PATIENCE_S = 15.0


class Worker:
    """A long-lived worker serving named handlers for the sidecar on this host.

        worker = Worker(handlers={"resize": resize}, concurrency=8)
        worker.run()   # until SIGTERM/SIGINT (or worker.stop()) and the tasks in hand are reported

    Plain functions run in a thread pool of `concurrency` threads; `async def`
    handlers run on an asyncio loop in a thread of its own. Connects to
    `socket` (default: env TASKFRAME_SOCKET) or `url` (env TASKFRAME_RUNNER_URL).
    """

    def __init__(
        self,
        handlers: Optional[Mapping[str, Handler]] = None,
        concurrency: int = 8,
        socket: Optional[str] = None,
        url: Optional[str] = None,
        name: Optional[str] = None,
        labels: Optional[Mapping[str, str]] = None,
        handle_signals: bool = True,
        timeout: float = 60.0,
    ) -> None:
        if handlers is None:
            from .registry import task

            handlers = task.handlers
        handlers = dict(handlers)
        if not handlers:
            raise ValueError("a worker needs at least one handler")
        for handler_name, handler in handlers.items():
            if not handler_name or not isinstance(handler_name, str):
                raise ValueError("handler names are non-empty strings, got %r" % (handler_name,))
            if not callable(handler):
                raise TypeError("handler %r is not callable: %r" % (handler_name, handler))
        if int(concurrency) < 1:
            raise ValueError("concurrency must be at least 1, got %r" % (concurrency,))
        self.handlers: Dict[str, Handler] = handlers
        self.concurrency = int(concurrency)
        self.name = name or "python-%d" % os.getpid()
        self.labels = {str(k): str(v) for k, v in (labels or {}).items()}
        self._endpoint_args = (socket, url)
        self._timeout = timeout
        self._handle_signals = handle_signals

        self._worker_id = ""
        self._endpoint: Optional[Endpoint] = None
        self._client: Optional[Client] = None
        self._stream: Optional[Stream] = None
        self._executor: Optional[ThreadPoolExecutor] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[threading.Thread] = None
        self._loop_lock = threading.Lock()
        self._jobs: Set["asyncio.Task[Any]"] = set()  # only touched on the loop thread

        # everything below is guarded by _cond
        self._cond = threading.Condition()
        self._running: Dict[str, TaskContext] = {}
        self._outbox: List[Tuple[str, Dict[str, Any]]] = []  # ("log" | "progress", entry), in order
        self._completions: List[Dict[str, Any]] = []
        self._closing = False

        self._stop_lock = threading.Lock()
        self._stopping = False
        self._halt = threading.Event()
        self._ran = False

    @property
    def worker_id(self) -> str:
        """The id the sidecar gave this worker ("" before it registered)."""
        return self._worker_id

    # -- lifecycle -----------------------------------------------------------

    def run(self) -> None:
        """Registers, then serves assignments until stop() (SIGTERM, SIGINT) and the sidecar ends the
        stream. Raises ConnectionLost (or RpcError) if the sidecar goes away otherwise."""
        if self._ran:
            raise RuntimeError("a Worker runs once; make a new one")
        self._ran = True
        endpoint = self._endpoint = Endpoint(*self._endpoint_args)
        self._client = Client(endpoint, timeout=self._timeout)
        restore = self._install_signal_handlers()
        try:
            registered = self._register()
            self._worker_id = registered.get("workerId", "")
            if not self._worker_id:
                raise RpcError("internal", "Register answered without a workerId", "Register")
            interval_s = max(0.1, as_int(registered.get("heartbeatIntervalMs")) / 1000.0 or 5.0)
            logger.info(
                "taskframe: worker %s (%s) registered with %s: %s",
                self.name,
                self._worker_id,
                endpoint,
                ", ".join(sorted(self.handlers)),
            )
            self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="taskframe-handler")
            if any(_is_async(h) for h in self.handlers.values()):
                self._ensure_loop()
            flusher = threading.Thread(target=self._flush_loop, name="taskframe-flush", daemon=True)
            beater = threading.Thread(target=self._heartbeat_loop, args=(interval_s,), name="taskframe-heartbeat", daemon=True)
            flusher.start()
            beater.start()
            try:
                self._serve()
            finally:
                self._shutdown(flusher, beater)
        finally:
            restore()
            if self._client is not None:
                self._client.close()

    def stop(self) -> None:
        """Asks the sidecar for no more work (Drain); run() returns once the tasks in hand are reported.
        Safe to call from any thread, more than once."""
        with self._stop_lock:
            if self._stopping:
                return
            self._stopping = True
            worker_id = self._worker_id
        if worker_id:
            self._drain(worker_id)
        # else: run() drains right after it registers

    def _drain(self, worker_id: str) -> None:
        client = self._client
        if client is None:
            return
        try:
            client.call("Drain", {"workerId": worker_id})
            logger.info("taskframe: draining: finishing %d task(s) in hand", len(self._running))
        except RpcError as error:
            logger.warning("taskframe: Drain failed (%s); closing the stream", error)
            stream = self._stream
            if stream is not None:
                stream.close()

    def _register(self) -> Dict[str, Any]:
        assert self._client is not None
        request = {
            "language": "python",
            "sdkVersion": SDK_VERSION,
            "handlers": sorted(self.handlers),
            "maxConcurrency": self.concurrency,
            "labels": self.labels,
            "name": self.name,
        }
        give_up = time.monotonic() + CONNECT_PATIENCE_S
        delay = 0.05
        while True:
            try:
                return self._client.call("Register", request)
            except RpcError as error:
                # the sidecar may not be listening yet: wait for it a little
                if error.code != "unavailable" or time.monotonic() > give_up or self._stopping:
                    raise
            time.sleep(delay)
            delay = min(1.0, delay * 2)

    def _serve(self) -> None:
        """Reads the Assignments stream until it ends."""
        with self._stop_lock:
            stopping = self._stopping
        if stopping:
            self._drain(self._worker_id)
        try:
            self._stream = Stream(self._endpoint, "Assignments", {"workerId": self._worker_id})
            for message in self._stream:
                # assignments first: a cancel may be about an assignment of the same message
                assignments = message.get("assignments")
                if assignments:
                    self._dispatch(assignments)
                for cancel in message.get("cancels") or ():
                    self._cancel(cancel)
        except (ConnectionLost, RpcError) as error:
            if self._stopping:
                logger.warning("taskframe: the stream ended while stopping: %s", error)
                return
            raise
        logger.info("taskframe: the sidecar ended the stream; the worker stops")

    def _shutdown(self, flusher: threading.Thread, beater: threading.Thread) -> None:
        with self._cond:
            left = list(self._running.values())
        for ctx in left:  # no longer ours: their reports would be refused
            ctx.cancelled.cancel("the worker's stream ended")
        self._halt.set()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        flusher.join(timeout=max(self._timeout, 1.0))
        beater.join(timeout=1.0)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        loop = self._loop
        if loop is not None:
            try:  # let cancelled async handlers see their cancellation through, briefly
                asyncio.run_coroutine_threadsafe(self._wind_down(), loop).result(timeout=2.0)
            except Exception:
                pass
            loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=1.0)

    async def _wind_down(self) -> None:
        if self._jobs:
            await asyncio.wait(list(self._jobs), timeout=1.0)

    def _install_signal_handlers(self) -> Callable[[], None]:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def restore() -> None:
            for signum, handler in previous.items():
                try:
                    signal.signal(signum, handler)
                except (ValueError, OSError):
                    pass
            previous.clear()

        def on_signal(signum: int, _frame: Any) -> None:
            # a second signal gets the default behaviour (SIGINT: KeyboardInterrupt)
            restore()
            logger.info("taskframe: %s: draining", signal.Signals(signum).name)
            threading.Thread(target=self.stop, name="taskframe-stop", daemon=True).start()

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
        return restore

    # -- assignments ---------------------------------------------------------

    def _dispatch(self, assignments: List[Dict[str, Any]]) -> None:
        """Starts a stream message's assignments: sync handlers in the pool, async ones on the loop
        (all of them in one hop to the loop thread)."""
        on_loop = []
        for assignment in assignments:
            ctx = TaskContext(assignment, self)
            handler = self.handlers.get(ctx.handler)
            with self._cond:
                previous = self._running.get(ctx.task_id)
                self._running[ctx.task_id] = ctx
            if previous is not None:
                previous.cancelled.cancel("the task was assigned again")
            if handler is None:
                self._finish(ctx, self._failure(ctx, LookupError("no handler %r in this worker" % ctx.handler)))
            elif _is_async(handler):
                on_loop.append((ctx, handler))
            else:
                assert self._executor is not None
                self._executor.submit(self._execute, ctx, handler)
        if on_loop:
            loop = self._ensure_loop()
            loop.call_soon_threadsafe(self._start_async, loop, on_loop)

    def _start_async(self, loop: asyncio.AbstractEventLoop, batch: List[Tuple[TaskContext, Handler]]) -> None:
        for ctx, handler in batch:
            job = loop.create_task(self._execute_async(ctx, handler))
            self._track(loop, ctx, job)
            job.add_done_callback(functools.partial(self._cancelled_before_start, ctx))

    def _cancelled_before_start(self, ctx: TaskContext, job: "asyncio.Task[Any]") -> None:
        """A task cancelled before its first step never ran _execute_async's handlers: report it here."""
        if job.cancelled():
            self._finish(ctx, self._failure(ctx, Cancelled(ctx.cancelled.reason or "cancelled")))

    def _track(self, loop: asyncio.AbstractEventLoop, ctx: TaskContext, job: "asyncio.Task[Any]") -> None:
        """Keeps a handler's asyncio task alive until it ends; the task's cancellation cancels it."""
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        ctx.cancelled.add_callback(functools.partial(loop.call_soon_threadsafe, job.cancel))

    def _execute(self, ctx: TaskContext, handler: Handler) -> None:
        try:
            result = handler(ctx)
            if inspect.isawaitable(result):  # e.g. a lambda returning a coroutine
                loop = self._ensure_loop()
                result = asyncio.run_coroutine_threadsafe(self._await_on_loop(loop, ctx, result), loop).result()
            completion = self._success(ctx, result)
        except BaseException as error:  # noqa: B902 - everything a handler raises is reported
            completion = self._failure(ctx, error)
        self._finish(ctx, completion)

    async def _await_on_loop(self, loop: asyncio.AbstractEventLoop, ctx: TaskContext, awaitable: Any) -> Any:
        job = asyncio.ensure_future(awaitable)
        self._track(loop, ctx, job)
        try:
            return await job
        except asyncio.CancelledError:
            if job.cancelled() and ctx.cancelled.is_set():
                raise Cancelled(ctx.cancelled.reason) from None
            raise

    async def _execute_async(self, ctx: TaskContext, handler: Handler) -> None:
        try:
            result = await handler(ctx)
            completion = self._success(ctx, result)
        except asyncio.CancelledError:
            # cancelled the asyncio way (CancelledError at the handler's next await)
            completion = self._failure(ctx, Cancelled(ctx.cancelled.reason or "cancelled"))
        except BaseException as error:  # noqa: B902
            completion = self._failure(ctx, error)
        self._finish(ctx, completion)

    def _success(self, ctx: TaskContext, result: Any) -> Dict[str, Any]:
        try:
            output, content_type = encode_value(result)
        except (TypeError, ValueError) as error:
            return self._failure(ctx, TypeError("the handler's result cannot be encoded as JSON: %s" % error))
        completion = dict(ctx._identity)
        completion["output"] = b64encode(output)
        if content_type:
            completion["outputContentType"] = content_type
        return completion

    def _failure(self, ctx: TaskContext, error: BaseException) -> Dict[str, Any]:
        completion = dict(ctx._identity)
        completion["error"] = describe_error(error)
        return completion

    def _finish(self, ctx: TaskContext, completion: Dict[str, Any]) -> None:
        with self._cond:
            if self._running.get(ctx.task_id) is ctx:
                del self._running[ctx.task_id]
            self._completions.append(completion)
            self._cond.notify()

    def _cancel(self, cancel: Dict[str, Any]) -> None:
        with self._cond:
            ctx = self._running.get(cancel.get("taskId", ""))
        if ctx is None:
            return
        attempt, epoch = as_int(cancel.get("attempt")), as_int(cancel.get("leaseEpoch"))
        if (attempt and attempt != ctx.attempt) or (epoch and epoch != ctx.lease_epoch):
            return
        ctx.cancelled.cancel(cancel.get("reason") or "cancelled")

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    try:
                        loop.run_forever()
                    finally:
                        loop.close()

                self._loop_thread = threading.Thread(target=serve, name="taskframe-asyncio", daemon=True)
                self._loop_thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    # -- reports (called from handlers) ---------------------------------------

    def _log(self, ctx: TaskContext, line: str, stream: str) -> None:
        entry = dict(ctx._identity)
        entry["stream"] = "LOG_STREAM_STDERR" if stream == "stderr" else "LOG_STREAM_STDOUT"
        entry["text"] = line
        entry["atUnixMs"] = int(time.time() * 1000)
        with self._cond:
            self._outbox.append(("log", entry))
            self._cond.notify()

    def _progress(self, ctx: TaskContext, progress: float, message: str) -> None:
        entry = dict(ctx._identity)
        entry["progress"] = progress
        if message:
            entry["message"] = message
        with self._cond:
            self._outbox.append(("progress", entry))
            self._cond.notify()

    def _spawn(self, ctx: TaskContext, children: List[Dict[str, Any]]) -> List[SpawnedChild]:
        specs = [child_spec(child) for child in children]
        if not specs:
            return []
        request = dict(ctx._identity)
        request["workerId"] = self._worker_id
        request["children"] = specs
        assert self._client is not None
        try:
            response = self._client.call("Spawn", request)
        except RpcError as error:
            raise SpawnError(
                error.code,
                "spawning %d child(ren) of %s failed: %s" % (len(specs), ctx.task_name or ctx.task_id, error.message),
                "Spawn",
                error.status,
            ) from None
        return [
            SpawnedChild(c.get("key", ""), c.get("taskId", ""), c.get("name", ""), bool(c.get("existing", False)))
            for c in response.get("children") or ()
        ]

    def _children(self, ctx: TaskContext, keys: List[str]) -> List[ChildStatus]:
        request = dict(ctx._identity)
        request["workerId"] = self._worker_id
        if keys:
            request["keys"] = keys
        assert self._client is not None
        response = self._client.call("Children", request)
        return [ChildStatus.from_message(c) for c in response.get("children") or ()]

    # -- batching --------------------------------------------------------------

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                while not (self._outbox or self._completions) and not self._closing:
                    self._cond.wait()
                if not (self._outbox or self._completions):
                    return  # closing, nothing left
                # gather what else finishes within FLUSH_S, unless nothing is still running
                end = time.monotonic() + FLUSH_S
                while self._running and not self._closing:
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                outbox, self._outbox = self._outbox, []
                completions, self._completions = self._completions, []
            self._send(outbox, completions)

    def _send(self, outbox: List[Tuple[str, Dict[str, Any]]], completions: List[Dict[str, Any]]) -> None:
        """Logs and progress in the order they were made (consecutive ones in one call), then results."""
        assert self._client is not None
        start = 0
        while start < len(outbox):
            kind = outbox[start][0]
            end = start
            while end < len(outbox) and outbox[end][0] == kind:
                end += 1
            entries = [entry for _, entry in outbox[start:end]]
            start = end
            try:
                if kind == "log":
                    self._client.call("Log", {"workerId": self._worker_id, "lines": entries})
                else:
                    self._heartbeat(entries)
            except RpcError as error:
                logger.warning("taskframe: sending %d %s report(s) failed: %s", len(entries), kind, error)
        if not completions:
            return
        try:
            response = self._client.call("Complete", {"workerId": self._worker_id, "completions": completions})
        except RpcError as error:
            logger.warning("taskframe: reporting %d result(s) failed: %s", len(completions), error)
            return
        for receipt in response.get("receipts") or ():
            if not receipt.get("accepted"):
                logger.warning(
                    "taskframe: the sidecar did not take the result of task %s: %s",
                    receipt.get("taskId", "?"),
                    receipt.get("reason", "no reason given"),
                )

    def _heartbeat(self, tasks: List[Dict[str, Any]]) -> None:
        assert self._client is not None
        response = self._client.call("Heartbeat", {"workerId": self._worker_id, "tasks": tasks})
        lost = response.get("lostTaskIds") or ()
        if lost:
            with self._cond:
                contexts = [self._running.get(task_id) for task_id in lost]
            for ctx in contexts:
                if ctx is not None:
                    ctx.cancelled.cancel("the task's lease was lost")

    def _heartbeat_loop(self, interval_s: float) -> None:
        next_beat = time.monotonic() + interval_s
        while not self._halt.wait(min(0.1, interval_s)):
            with self._cond:
                running = list(self._running.values())
            if not running:
                next_beat = time.monotonic() + interval_s
                continue
            now_ms = time.time() * 1000
            for ctx in running:
                if 0 < ctx.deadline_unix_ms <= now_ms:
                    ctx.cancelled.cancel("deadline exceeded")
            if time.monotonic() < next_beat:
                continue
            next_beat = time.monotonic() + interval_s
            tasks = []
            for ctx in running:
                entry = dict(ctx._identity)
                entry["progress"] = -1
                tasks.append(entry)
            try:
                self._heartbeat(tasks)
            except RpcError as error:
                logger.warning("taskframe: heartbeat failed: %s", error)


def _is_async(handler: Any) -> bool:
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)
