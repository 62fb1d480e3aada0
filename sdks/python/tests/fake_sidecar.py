"""A fake sidecar for tests: the Runner protocol (Connect JSON over HTTP/1.1) on a unix socket."""

import base64
import json
import os
import queue
import socketserver
import struct
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler

SERVICE = "/taskframe.v1.RunnerService/"
_END = object()


def envelope(message, flags=0):
    data = json.dumps(message).encode("utf-8")
    return struct.pack(">BI", flags, len(data)) + data


def assignment(task_id, handler, data=b"", content_type="", attempt=1, epoch="1", deadline_ms=0, name=None):
    """An Assignment as the sidecar sends it (64-bit integers as strings, defaults omitted)."""
    message = {
        "taskId": task_id,
        "runId": "run-1",
        "taskName": name or task_id,
        "attempt": attempt,
        "leaseEpoch": epoch,
        "handler": handler,
    }
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif not isinstance(data, bytes):
        data = json.dumps(data).encode("utf-8")
        content_type = content_type or "application/json"
    if data:
        message["input"] = base64.b64encode(data).decode("ascii")
    if content_type:
        message["contentType"] = content_type
    if deadline_ms:
        message["deadlineUnixMs"] = str(deadline_ms)
    return message


class FakeSidecar:
    """Records every call; tests push stream messages and wait for completions.

    `lost`: task ids the next heartbeats answer as lost. `spawn`, `children`:
    functions (request) -> response dict for Spawn and Children.
    """

    def __init__(self, heartbeat_ms=5000, tcp=False):
        self.dir = tempfile.mkdtemp(prefix="tf-fake-")
        self.path = os.path.join(self.dir, "runner.sock")
        self.heartbeat_ms = heartbeat_ms
        self.calls = []  # (method, request), in the order they arrived
        self.cond = threading.Condition()
        self.outbox = queue.Queue()
        self.outstanding = set()
        self.completions = {}  # task id -> Completion
        self.registered = None
        self.draining = False
        self.lost = set()
        self.spawn = None
        self.children = None
        self.streams = 0
        self.stream_closed = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                method = self.path[len(SERVICE):] if self.path.startswith(SERVICE) else self.path
                if method == "Assignments":
                    if self.headers.get("Content-Type") != "application/connect+json":
                        return self._json(415, {"code": "internal", "message": "bad content type"})
                    request = json.loads(body[5:].decode("utf-8"))
                    fake._record(method, request)
                    return self._stream(request)
                if self.headers.get("Content-Type") != "application/json":
                    return self._json(415, {"code": "internal", "message": "bad content type"})
                request = json.loads(body.decode("utf-8") or "{}")
                fake._record(method, request)
                try:
                    response = fake._unary(method, request)
                except LookupError as error:
                    return self._json(404, {"code": "not_found", "message": str(error)})
                except NotImplementedError as error:
                    return self._json(501, {"code": "unimplemented", "message": str(error)})
                self._json(200, response)

            def _json(self, status, message):
                data = json.dumps(message).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, request):
                fake.streams += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/connect+json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    while True:
                        item = fake.outbox.get()
                        if item is _END or isinstance(item, tuple):
                            end = {} if item is _END else {"error": {"code": item[0], "message": item[1]}}
                            self._chunk(envelope(end, flags=0x02))
                            self.wfile.write(b"0\r\n\r\n")
                            break
                        if item == "break":
                            self.close_connection = True
                            self.connection.shutdown(2)
                            break
                        data = envelope(item)
                        # split a message over two chunks: readers must not assume chunk = envelope
                        self._chunk(data[:3])
                        self._chunk(data[3:])
                except OSError:
                    pass  # the worker hung up (it may stop reading at the end-of-stream message)
                finally:
                    self.close_connection = True
                    fake.stream_closed.set()

            def _chunk(self, data):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        base = socketserver.TCPServer if tcp else socketserver.UnixStreamServer

        class Server(socketserver.ThreadingMixIn, base):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], OSError):  # hang-ups are the worker's right
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0) if tcp else self.path, Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1] if tcp else None
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    # -- what tests do -------------------------------------------------------

    def send(self, assignments=(), cancels=()):
        message = {}
        for a in assignments:
            with self.cond:
                self.outstanding.add(a["taskId"])
        if assignments:
            message["assignments"] = list(assignments)
        if cancels:
            message["cancels"] = list(cancels)
        self.outbox.put(message)

    def end(self, error=None):
        self.outbox.put(_END if error is None else error)

    def break_stream(self):
        self.outbox.put("break")

    def wait(self, predicate, timeout=10.0):
        end = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting; calls so far: %s" % [m for m, _ in self.calls])
                self.cond.wait(left)

    def wait_completed(self, *task_ids, timeout=10.0):
        self.wait(lambda: all(t in self.completions for t in task_ids), timeout)
        return [self.completions[t] for t in task_ids]

    def requests(self, method):
        with self.cond:
            return [request for m, request in self.calls if m == method]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        for remove, path in ((os.unlink, self.path), (os.rmdir, self.dir)):
            try:
                remove(path)
            except OSError:
                pass

    # -- the protocol ----------------------------------------------------------

    def _record(self, method, request):
        with self.cond:
            self.calls.append((method, request))
            self.cond.notify_all()

    def _unary(self, method, request):
        if method == "Register":
            self.registered = request
            return {"workerId": "w-1", "heartbeatIntervalMs": str(self.heartbeat_ms)}
        if request.get("workerId") != "w-1":
            raise LookupError("unknown worker %r: register first" % request.get("workerId"))
        if method == "Complete":
            receipts = []
            with self.cond:
                for completion in request.get("completions", []):
                    task_id = completion["taskId"]
                    accepted = task_id in self.outstanding
                    self.outstanding.discard(task_id)
                    self.completions[task_id] = completion
                    receipts.append({"taskId": task_id, "accepted": accepted} if accepted else
                                    {"taskId": task_id, "reason": "not assigned"})
                done = self.draining and not self.outstanding
                self.cond.notify_all()
            if done:
                self.end()
            return {"receipts": receipts}
        if method == "Heartbeat":
            lost = [t["taskId"] for t in request.get("tasks", []) if t["taskId"] in self.lost]
            return {"lostTaskIds": lost} if lost else {}
        if method == "Log":
            return {}
        if method == "Drain":
            with self.cond:
                self.draining = True
                done = not self.outstanding
            if done:
                self.end()
            return {}
        if method == "Spawn":
            if self.spawn is None:
                raise NotImplementedError("spawning is not implemented here")
            return self.spawn(request)
        if method == "Children":
            if self.children is None:
                raise NotImplementedError("awaiting children is not implemented here")
            return self.children(request)
        raise NotImplementedError("no method %s" % method)
