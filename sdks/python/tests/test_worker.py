"""The Worker against a fake sidecar speaking the Runner protocol on a unix socket."""

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.join(HERE, "..")
sys.path.insert(0, SDK)
sys.path.insert(0, HERE)

from fake_sidecar import FakeSidecar, assignment  # noqa: E402

from taskframe import (  # noqa: E402
    Cancelled,
    ChildFailedError,
    ChildStatus,
    ConnectionLost,
    NonRetryableError,
    Output,
    RetryAfter,
    RpcError,
    SpawnError,
    Worker,
    task,
)
from taskframe.registry import Registry  # noqa: E402


def output_of(completion):
    return base64.b64decode(completion.get("output", ""))


class WorkerTestCase(unittest.TestCase):
    heartbeat_ms = 5000

    def setUp(self):
        self.fake = FakeSidecar(heartbeat_ms=self.heartbeat_ms)
        self.addCleanup(self.fake.close)
        self.error = None

    def start(self, handlers, **options):
        options.setdefault("concurrency", 8)
        worker = Worker(handlers=handlers, socket=self.fake.path, name="test", **options)

        def run():
            try:
                worker.run()
            except BaseException as error:  # noqa: B902
                self.error = error

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.fake.wait(lambda: self.fake.streams > 0)
        self.addCleanup(self.stop, worker, thread)
        return worker, thread

    def stop(self, worker, thread):
        if thread.is_alive():
            worker.stop()
            thread.join(10)
        self.assertFalse(thread.is_alive(), "run() did not return")


class RegisterAndResultsTest(WorkerTestCase):
    def test_registers_its_handlers_and_settings(self):
        self.start({"b": lambda ctx: None, "a": lambda ctx: None}, concurrency=3, labels={"zone": "x"})
        self.assertEqual(
            self.fake.registered,
            {
                "language": "python",
                "sdkVersion": "0.1.0",
                "handlers": ["a", "b"],
                "maxConcurrency": 3,
                "labels": {"zone": "x"},
                "name": "test",
            },
        )
        self.assertEqual(self.fake.requests("Assignments"), [{"workerId": "w-1"}])

    def test_results_are_encoded_by_type_with_the_identity_as_received(self):
        handlers = {
            "json": lambda ctx: {"n": ctx.json()["n"] + 1},
            "text": lambda ctx: ctx.text().upper(),
            "bytes": lambda ctx: ctx.input[::-1],
            "none": lambda ctx: None,
            "typed": lambda ctx: Output(ctx.input, ctx.content_type),
            "ctx": lambda ctx: [ctx.task_id, ctx.run_id, ctx.task_name, ctx.attempt, ctx.lease_epoch, ctx.content_type],
        }
        self.start(handlers)
        self.fake.send(
            [
                assignment("t1", "json", {"n": 1}),
                assignment("t2", "text", "héllo", "text/plain"),
                assignment("t3", "bytes", b"\x00\x01\xff"),
                assignment("t4", "none"),
                assignment("t5", "typed", b"<b/>", "text/html"),
                assignment("t6", "ctx", b"", "x/y", attempt=3, epoch="9007199254740993", name="pipe/t6"),
            ]
        )
        c1, c2, c3, c4, c5, c6 = self.fake.wait_completed("t1", "t2", "t3", "t4", "t5", "t6")
        self.assertEqual((output_of(c1), c1["outputContentType"]), (b'{"n":2}', "application/json"))
        self.assertEqual((output_of(c2), c2["outputContentType"]), ("HÉLLO".encode(), "text/plain; charset=utf-8"))
        self.assertEqual((output_of(c3), c3["outputContentType"]), (b"\xff\x01\x00", "application/octet-stream"))
        self.assertEqual((output_of(c4), c4.get("outputContentType", "")), (b"", ""))
        self.assertIn("output", c4)  # the oneof is set: a result, not an error
        self.assertEqual((output_of(c5), c5["outputContentType"]), (b"<b/>", "text/html"))
        self.assertEqual(
            json.loads(output_of(c6)), ["t6", "run-1", "pipe/t6", 3, 9007199254740993, "x/y"]
        )
        # the identity triple goes back exactly as it came
        self.assertEqual((c6["taskId"], c6["attempt"], c6["leaseEpoch"]), ("t6", 3, "9007199254740993"))

    def test_errors_map_to_completion_errors(self):
        class Boom(Exception):
            pass

        def raise_(error):
            def handler(ctx):
                raise error

            return handler

        self.start(
            {
                "non": raise_(NonRetryableError("bad input")),
                "after": raise_(RetryAfter(1.5, "busy")),
                "plain": raise_(Boom("kaput")),
                "json": lambda ctx: object(),
            }
        )
        self.fake.send([assignment("a", "non"), assignment("b", "after"), assignment("c", "plain"), assignment("d", "json")])
        a, b, c, d = self.fake.wait_completed("a", "b", "c", "d")
        self.assertEqual(a["error"], {"type": "NonRetryableError", "message": "bad input", "nonRetryable": True})
        self.assertEqual(
            b["error"], {"type": "RetryAfter", "message": "busy", "nonRetryable": False, "retryAfterMs": 1500}
        )
        self.assertEqual(c["error"], {"type": "Boom", "message": "kaput", "nonRetryable": False})
        self.assertEqual(d["error"]["type"], "TypeError")
        self.assertNotIn("output", a)

    def test_a_large_payload_round_trips(self):
        payload = os.urandom(5 * 1024 * 1024)
        self.start({"echo": lambda ctx: Output(ctx.input, ctx.content_type)})
        self.fake.send([assignment("big", "echo", payload, "application/x-big")])
        (done,) = self.fake.wait_completed("big", timeout=30)
        self.assertEqual(output_of(done), payload)
        self.assertEqual(done["outputContentType"], "application/x-big")


class BatchingTest(WorkerTestCase):
    def test_many_assignments_in_one_message_come_back_in_few_calls(self):
        started = threading.Semaphore(0)
        go = threading.Event()

        def inc(ctx):
            started.release()
            go.wait(10)
            return ctx.json() + 1

        self.start({"inc": inc}, concurrency=200)
        ids = ["t%d" % i for i in range(200)]
        self.fake.send([assignment(t, "inc", i) for i, t in enumerate(ids)])
        for _ in ids:  # every handler is running: they all finish at about the same time
            self.assertTrue(started.acquire(timeout=10))
        go.set()
        done = self.fake.wait_completed(*ids)
        self.assertEqual([json.loads(output_of(c)) for c in done], list(range(1, 201)))
        calls = self.fake.requests("Complete")
        self.assertLess(len(calls), 40, "completions are batched")
        self.assertEqual(sum(len(c["completions"]) for c in calls), 200)

    def test_logs_and_progress_go_out_in_order_and_before_the_result(self):
        def chatty(ctx):
            ctx.log("one")
            ctx.heartbeat(0.5, "half")
            ctx.log("two", stream="stderr")
            return "done"

        self.start({"chatty": chatty})
        self.fake.send([assignment("t", "chatty")])
        self.fake.wait_completed("t")
        kinds = []
        for method, request in self.fake.calls:
            if method == "Log":
                kinds += [(line["text"], line.get("stream")) for line in request["lines"]]
            elif method == "Heartbeat":
                kinds += [("progress %s %s" % (t["progress"], t.get("message")), None) for t in request["tasks"]]
            elif method == "Complete":
                kinds.append(("complete", None))
        self.assertEqual(
            kinds,
            [
                ("one", "LOG_STREAM_STDOUT"),
                ("progress 0.5 half", None),
                ("two", "LOG_STREAM_STDERR"),
                ("complete", None),
            ],
        )
        line = self.fake.requests("Log")[0]["lines"][0]
        self.assertEqual((line["taskId"], line["attempt"], line["leaseEpoch"]), ("t", 1, "1"))
        self.assertIsInstance(line["atUnixMs"], int)


class CancelTest(WorkerTestCase):
    heartbeat_ms = 100

    def test_a_cancel_notice_sets_ctx_cancelled(self):
        started = threading.Event()

        def wait(ctx):
            started.set()
            self.assertFalse(ctx.cancelled)
            if ctx.wait_cancelled(10):
                raise Cancelled(ctx.cancel_reason)
            return "not cancelled"

        self.start({"wait": wait})
        self.fake.send([assignment("t", "wait", epoch="4")])
        self.assertTrue(started.wait(5))
        # a notice for another attempt or epoch is not this assignment's
        self.fake.send(cancels=[{"taskId": "t", "attempt": 1, "leaseEpoch": "3", "reason": "old"}])
        self.fake.send(cancels=[{"taskId": "t", "attempt": 1, "leaseEpoch": "4", "reason": "run cancelled"}])
        (done,) = self.fake.wait_completed("t")
        self.assertEqual(done["error"], {"type": "Cancelled", "message": "run cancelled", "nonRetryable": False})

    def test_a_cancel_in_the_same_message_as_its_assignment_is_applied(self):
        async def nap(ctx):
            await asyncio.sleep(10)

        def wait(ctx):
            return ctx.wait_cancelled(10) and ctx.cancel_reason

        self.start({"nap": nap, "wait": wait})
        self.fake.send(
            [assignment("a", "nap"), assignment("s", "wait")],
            cancels=[{"taskId": "a", "reason": "at once"}, {"taskId": "s", "reason": "at once"}],
        )
        a, s = self.fake.wait_completed("a", "s", timeout=5)
        self.assertEqual(a["error"], {"type": "Cancelled", "message": "at once", "nonRetryable": False})
        self.assertEqual(output_of(s), b"at once")

    def test_lost_tasks_in_a_heartbeat_answer_are_cancelled(self):
        self.fake.lost.add("t")

        def wait(ctx):
            ctx.cancelled.wait(10)
            return ctx.cancel_reason

        self.start({"wait": wait})
        self.fake.send([assignment("t", "wait")])
        (done,) = self.fake.wait_completed("t")
        self.assertEqual(output_of(done), b"the task's lease was lost")
        self.assertTrue(any(t["taskId"] == "t" for r in self.fake.requests("Heartbeat") for t in r["tasks"]))

    def test_a_passed_deadline_cancels(self):
        def wait(ctx):
            self.assertIsNotNone(ctx.deadline)
            ctx.cancelled.wait(10)
            return ctx.cancel_reason

        self.start({"wait": wait})
        self.fake.send([assignment("t", "wait", deadline_ms=int(time.time() * 1000) + 200)])
        (done,) = self.fake.wait_completed("t")
        self.assertEqual(output_of(done), b"deadline exceeded")

    def test_running_tasks_are_heartbeaten(self):
        release = threading.Event()
        self.start({"slow": lambda ctx: release.wait(10)})
        self.fake.send([assignment("t", "slow", epoch="2")])
        self.fake.wait(lambda: len(self.fake.requests("Heartbeat")) >= 2)
        release.set()
        beat = self.fake.requests("Heartbeat")[0]
        self.assertEqual(beat["tasks"], [{"taskId": "t", "attempt": 1, "leaseEpoch": "2", "progress": -1}])


class AsyncHandlerTest(WorkerTestCase):
    def test_async_handlers_run_concurrently_on_one_loop(self):
        async def nap(ctx):
            await asyncio.sleep(0.3)
            ctx.log("napped")
            return threading.current_thread().name

        self.start({"nap": nap}, concurrency=20)
        ids = ["n%d" % i for i in range(20)]
        began = time.monotonic()
        self.fake.send([assignment(t, "nap") for t in ids])
        done = self.fake.wait_completed(*ids)
        self.assertLess(time.monotonic() - began, 2.5)
        self.assertEqual({output_of(c) for c in done}, {b"taskframe-asyncio"})

    def test_a_cancelled_async_handler_gets_cancelled_error(self):
        async def forever(ctx):
            await asyncio.sleep(60)

        self.start({"forever": forever})
        self.fake.send([assignment("t", "forever")])
        self.fake.wait(lambda: self.fake.streams > 0)
        time.sleep(0.1)
        self.fake.send(cancels=[{"taskId": "t", "reason": "stop it"}])
        (done,) = self.fake.wait_completed("t")
        self.assertEqual(done["error"]["type"], "Cancelled")
        self.assertEqual(done["error"]["message"], "stop it")

    def test_wait_cancelled_async(self):
        async def polite(ctx):
            if await ctx.wait_cancelled_async(10):
                return "saw " + ctx.cancel_reason
            return "timeout"

        async def short(ctx):
            return await ctx.wait_cancelled_async(0.05)

        self.start({"polite": polite, "short": short})
        self.fake.send([assignment("s", "short"), assignment("p", "polite")])
        (s,) = self.fake.wait_completed("s")
        self.assertEqual(output_of(s), b"false")
        self.fake.send(cancels=[{"taskId": "p", "reason": "please stop"}])
        (p,) = self.fake.wait_completed("p")
        # the polite handler saw the cancellation as a flag, before any asyncio cancellation reached it,
        # or was cancelled the asyncio way: either way the reason is reported
        self.assertIn(b"please stop", output_of(p) or p["error"]["message"].encode())


class SpawnTest(WorkerTestCase):
    def test_spawn_sends_child_specs_and_returns_children(self):
        def spawn(request):
            return {
                "children": [
                    {"key": c["key"], "taskId": "id-" + c["key"], "name": "parent/" + c["key"], "existing": c["key"] == "b"}
                    for c in request["children"]
                ]
            }

        self.fake.spawn = spawn

        def parent(ctx):
            children = ctx.spawn(
                [
                    {"key": "a", "handler": "work", "input": {"x": 1}, "retries": 1},
                    {"key": "b", "handler": "work", "input": "hi", "needs": ["a"]},
                ]
            )
            return [c.as_dict() for c in children]

        self.start({"parent": parent})
        self.fake.send([assignment("p", "parent", epoch="5", attempt=2)])
        (done,) = self.fake.wait_completed("p")
        self.assertEqual(
            json.loads(output_of(done)),
            [
                {"key": "a", "task_id": "id-a", "name": "parent/a", "existing": False},
                {"key": "b", "task_id": "id-b", "name": "parent/b", "existing": True},
            ],
        )
        (request,) = self.fake.requests("Spawn")
        self.assertEqual(
            {k: request[k] for k in ("workerId", "taskId", "attempt", "leaseEpoch")},
            {"workerId": "w-1", "taskId": "p", "attempt": 2, "leaseEpoch": "5"},
        )
        b = request["children"][1]["spec"]
        self.assertEqual(b["needs"], ["a"])
        self.assertEqual(b["handler"]["contentType"], "text/plain; charset=utf-8")
        self.assertEqual(base64.b64decode(b["handler"]["input"]), b"hi")

    def test_a_refused_spawn_raises_spawn_error(self):
        def parent(ctx):
            try:
                ctx.spawn([{"key": "a", "handler": "work"}])
            except SpawnError as error:
                return [error.code, str(error)]

        self.start({"parent": parent})
        self.fake.send([assignment("p", "parent")])
        (done,) = self.fake.wait_completed("p")
        code, message = json.loads(output_of(done))
        self.assertEqual(code, "unimplemented")
        self.assertIn("spawning 1 child(ren) of p failed", message)


def child_status(key, state="TASK_STATE_SUCCEEDED", settled=True, output=b"", detail="", subtree_failed=False):
    """A ChildStatus as the sidecar sends it in proto3 JSON (defaults omitted)."""
    message = {"key": key, "taskId": "id-" + key, "name": "parent/" + key, "state": state, "attempt": 1}
    if settled:
        message["settled"] = True
    if subtree_failed:
        message["subtreeFailed"] = True
    if output:
        message["output"] = base64.b64encode(output).decode("ascii")
        message["outputContentType"] = "text/plain; charset=utf-8"
    if detail:
        message["detail"] = detail
    return message


class ChildrenTest(WorkerTestCase):
    def answer(self, *rounds):
        """Children answers: round i for the i-th call (the last one from then on), filtered by keys."""
        calls = []

        def children(request):
            statuses = rounds[min(len(calls), len(rounds) - 1)]
            calls.append(request)
            keys = request.get("keys") or []
            return {"children": [c for c in statuses if not keys or c["key"] in keys]}

        self.fake.children = children
        return calls

    def test_await_children_polls_until_every_child_is_settled(self):
        running = [child_status("a", "TASK_STATE_RUNNING", settled=False), child_status("b", output=b"y")]
        # a succeeded, but something it spawned is still running: not settled yet
        unsettled = [child_status("a", output=b"x", settled=False), child_status("b", output=b"y")]
        done = [child_status("a", output=b"x"), child_status("b", output=b"y")]
        calls = self.answer(running, unsettled, done)

        def parent(ctx):
            return [[c.key, c.name, c.state, c.attempt, c.settled, c.text(), c.output_content_type]
                    for c in ctx.await_children()]

        self.start({"parent": parent})
        self.fake.send([assignment("p", "parent", epoch="5", attempt=2, name="parent")])
        (completion,) = self.fake.wait_completed("p")
        self.assertNotIn("error", completion)
        self.assertEqual(
            json.loads(output_of(completion)),
            [
                ["a", "parent/a", "TASK_STATE_SUCCEEDED", 1, True, "x", "text/plain; charset=utf-8"],
                ["b", "parent/b", "TASK_STATE_SUCCEEDED", 1, True, "y", "text/plain; charset=utf-8"],
            ],
        )
        self.assertEqual(len(calls), 3)
        self.assertEqual(calls[0], {"workerId": "w-1", "taskId": "p", "attempt": 2, "leaseEpoch": "5"})

    def test_a_failed_child_raises_child_failed_error_non_retryable(self):
        self.answer([
            child_status("a", "TASK_STATE_FAILED", detail="failed: NonRetryableError: child breaks"),
            child_status("b", output=b"fine"),
            child_status("c", subtree_failed=True),
        ])
        seen = {}

        def parent(ctx):
            try:
                ctx.await_children()
            except ChildFailedError as error:
                seen["error"] = error
                raise

        self.start({"parent": parent})
        self.fake.send([assignment("p", "parent", name="parent")])
        (completion,) = self.fake.wait_completed("p")
        error = completion["error"]
        self.assertEqual(error["type"], "ChildFailedError")
        self.assertTrue(error["nonRetryable"])
        self.assertEqual(
            error["message"],
            "2 children did not succeed: parent/a TASK_STATE_FAILED (failed: NonRetryableError: child breaks); "
            "parent/c TASK_STATE_SUCCEEDED, but a task it spawned did not",
        )
        self.assertIsInstance(seen["error"], NonRetryableError)
        self.assertEqual([c.key for c in seen["error"].failed], ["a", "c"])
        self.assertEqual([c.key for c in seen["error"].children], ["a", "b", "c"])

    def test_one_failed_child_and_fail_on_error_false(self):
        self.answer([child_status("a", "TASK_STATE_FAILED", detail="boom"), child_status("b")])

        def strict(ctx):
            ctx.await_children()

        def lenient(ctx):
            return [[c.key, c.state, c.succeeded] for c in ctx.await_children(fail_on_error=False)]

        self.start({"strict": strict, "lenient": lenient})
        self.fake.send([assignment("s", "strict"), assignment("l", "lenient")])
        strict_done, lenient_done = self.fake.wait_completed("s", "l")
        self.assertEqual(strict_done["error"]["message"], "a child did not succeed: parent/a TASK_STATE_FAILED (boom)")
        self.assertTrue(strict_done["error"]["nonRetryable"])
        self.assertEqual(
            json.loads(output_of(lenient_done)),
            [["a", "TASK_STATE_FAILED", False], ["b", "TASK_STATE_SUCCEEDED", True]],
        )

    def test_keys_limit_what_is_awaited(self):
        # a never settles and b failed: awaiting only c must neither wait for a nor fail for b
        calls = self.answer([
            child_status("a", "TASK_STATE_RUNNING", settled=False),
            child_status("b", "TASK_STATE_FAILED"),
            child_status("c", output=b"z"),
        ])

        def parent(ctx):
            awaited = ctx.await_children(keys=["c"])
            listed = ctx.children("a")
            return [[c.key for c in awaited], [(c.key, c.settled) for c in listed], len(ctx.children())]

        self.start({"parent": parent})
        self.fake.send([assignment("p", "parent")])
        (completion,) = self.fake.wait_completed("p", timeout=5)
        self.assertEqual(json.loads(output_of(completion)), [["c"], [["a", False]], 3])
        self.assertEqual([c.get("keys") for c in calls], [["c"], ["a"], None])

    def test_a_cancelled_await_raises_cancelled(self):
        self.answer([child_status("a", "TASK_STATE_RUNNING", settled=False)])
        self.start({"parent": lambda ctx: ctx.await_children()})
        self.fake.send([assignment("p", "parent")])
        self.fake.wait(lambda: len(self.fake.requests("Children")) >= 3)
        self.fake.send(cancels=[{"taskId": "p", "reason": "run cancelled"}])
        (completion,) = self.fake.wait_completed("p", timeout=5)
        self.assertEqual(completion["error"]["type"], "Cancelled")
        self.assertEqual(completion["error"]["message"], "run cancelled")

    def test_async_handlers_await_children(self):
        self.answer(
            [child_status("a", "TASK_STATE_RUNNING", settled=False)],
            [child_status("a", "TASK_STATE_FAILED", detail="no")],
        )

        async def parent(ctx):
            listed = await ctx.children_async()
            try:
                await ctx.await_children_async()
            except ChildFailedError as error:
                return [listed[0].state, str(error)]

        self.start({"parent": parent})
        self.fake.send([assignment("p", "parent")])
        (completion,) = self.fake.wait_completed("p")
        self.assertEqual(
            json.loads(output_of(completion)),
            ["TASK_STATE_RUNNING", "a child did not succeed: parent/a TASK_STATE_FAILED (no)"],
        )

    def test_child_status_from_proto_json(self):
        status = ChildStatus.from_message({"key": "k", "state": 5, "attempt": "2", "output": "eyJ4IjoxfQ=="})
        self.assertEqual(
            (status.state, status.attempt, status.json(), status.settled), ("TASK_STATE_FAILED", 2, {"x": 1}, False)
        )
        empty = ChildStatus.from_message({})
        self.assertEqual((empty.state, empty.output, empty.detail), ("TASK_STATE_UNSPECIFIED", b"", ""))


class LifecycleTest(WorkerTestCase):
    def test_stop_drains_finishes_in_flight_work_and_returns(self):
        release = threading.Event()
        worker, thread = self.start({"slow": lambda ctx: release.wait(10) and "finished"})
        self.fake.send([assignment("t", "slow")])
        self.fake.wait(lambda: self.fake.requests("Heartbeat") or True)
        time.sleep(0.1)
        threading.Thread(target=worker.stop).start()
        self.fake.wait(lambda: self.fake.draining)
        self.assertTrue(thread.is_alive())
        release.set()
        thread.join(10)
        self.assertFalse(thread.is_alive())
        self.assertIsNone(self.error)
        self.assertEqual(output_of(self.fake.completions["t"]), b"finished")
        methods = [m for m, _ in self.fake.calls]
        self.assertLess(methods.index("Drain"), methods.index("Complete"))

    def test_an_error_at_the_end_of_the_stream_is_raised(self):
        worker, thread = self.start({"x": lambda ctx: None})
        self.fake.end(("unavailable", "sidecar stopping"))
        thread.join(10)
        self.assertIsInstance(self.error, RpcError)
        self.assertEqual(self.error.code, "unavailable")

    def test_a_broken_stream_is_connection_lost(self):
        worker, thread = self.start({"x": lambda ctx: None})
        self.fake.break_stream()
        thread.join(10)
        self.assertIsInstance(self.error, ConnectionLost)

    def test_tcp_from_taskframe_runner_url(self):
        fake = FakeSidecar(tcp=True)
        self.addCleanup(fake.close)
        worker = Worker(handlers={"up": lambda ctx: ctx.text().upper()}, url=fake.url)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        fake.wait(lambda: fake.streams > 0)
        fake.send([assignment("t", "up", "tcp")])
        (done,) = fake.wait_completed("t")
        self.assertEqual(output_of(done), b"TCP")
        worker.stop()
        thread.join(10)
        self.assertFalse(thread.is_alive())

    def test_no_sidecar_is_a_clear_error(self):
        old = os.environ.pop("TASKFRAME_SOCKET", None), os.environ.pop("TASKFRAME_RUNNER_URL", None)
        try:
            with self.assertRaisesRegex(ValueError, "TASKFRAME_SOCKET"):
                Worker(handlers={"x": lambda ctx: None}).run()
        finally:
            for key, value in zip(("TASKFRAME_SOCKET", "TASKFRAME_RUNNER_URL"), old):
                if value is not None:
                    os.environ[key] = value

    def test_sigterm_drains_and_exits_zero(self):
        env = dict(os.environ, TASKFRAME_SOCKET=self.fake.path, PYTHONPATH=SDK)
        script = (
            "import time\n"
            "from taskframe import task\n"
            "@task.handler('slow')\n"
            "def slow(ctx):\n"
            "    time.sleep(0.5)\n"
            "    return 'done'\n"
            "task.run()\n"
        )
        child = subprocess.Popen([sys.executable, "-c", script], env=env)
        self.addCleanup(lambda: child.poll() is None and child.kill())
        self.fake.wait(lambda: self.fake.streams > 0)
        self.fake.send([assignment("t", "slow")])
        time.sleep(0.2)
        child.send_signal(signal.SIGTERM)
        self.assertEqual(child.wait(10), 0)
        self.assertEqual(output_of(self.fake.completions["t"]), b"done")
        self.assertTrue(self.fake.draining)


class RegistryTest(unittest.TestCase):
    def test_decorator_registers_by_name_or_function_name(self):
        registry = Registry()

        @registry.handler("resize")
        def resize(ctx):
            return 1

        @registry.handler
        def thumbnail(ctx):
            return 2

        self.assertEqual(registry.handlers, {"resize": resize, "thumbnail": thumbnail})
        with self.assertRaisesRegex(ValueError, "already registered"):
            registry.handler("resize")(lambda ctx: None)

    def test_the_default_registry_is_shared(self):
        self.assertIsInstance(task, Registry)

    def test_a_worker_needs_handlers(self):
        with self.assertRaises(ValueError):
            Worker(handlers={}, socket="/nonexistent")


if __name__ == "__main__":
    unittest.main()
