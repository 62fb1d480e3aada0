"""The HTTP/1.1 client: unary calls, error mapping, and a kept-alive connection the server dropped."""

import json
import os
import socket
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from taskframe import RpcError  # noqa: E402
from taskframe._transport import Client, Endpoint  # noqa: E402


class RawServer:
    """Answers each request with the next canned response, then (optionally) hangs up without saying so."""

    def __init__(self, responses, hang_up=True):
        self.dir = tempfile.mkdtemp(prefix="tf-raw-")
        self.path = os.path.join(self.dir, "s.sock")
        self.responses = list(responses)
        self.requests = []
        self.hang_up = hang_up
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.responses:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                while self.responses:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if not data:
                        break
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = int([h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0])
                    while len(body) < length:
                        body += conn.recv(65536)
                    self.requests.append((head.split(b"\r\n")[0].decode(), head.decode(), json.loads(body)))
                    status, payload = self.responses.pop(0)
                    data = json.dumps(payload).encode()
                    conn.sendall(
                        b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                        % (status, len(data), data)
                    )
                    if self.hang_up:
                        break  # keep-alive as far as the client knows, but gone

    def close(self):
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


class ClientTest(unittest.TestCase):
    def test_unary_call_headers_and_body(self):
        server = RawServer([(200, {"workerId": "w"})], hang_up=False)
        self.addCleanup(server.close)
        client = Client(Endpoint(socket_path=server.path))
        self.addCleanup(client.close)
        self.assertEqual(client.call("Register", {"language": "python"}), {"workerId": "w"})
        line, head, body = server.requests[0]
        self.assertEqual(line, "POST /taskframe.v1.RunnerService/Register HTTP/1.1")
        self.assertIn("Content-Type: application/json", head)
        self.assertIn("Connect-Protocol-Version: 1", head)
        self.assertEqual(body, {"language": "python"})

    def test_a_dropped_keep_alive_connection_is_retried_on_a_new_one(self):
        server = RawServer([(200, {"a": 1}), (200, {"b": 2})])
        self.addCleanup(server.close)
        client = Client(Endpoint(socket_path=server.path))
        self.addCleanup(client.close)
        self.assertEqual(client.call("Log", {}), {"a": 1})
        self.assertEqual(client.call("Log", {}), {"b": 2})

    def test_connect_errors_are_raised_with_code_and_message(self):
        server = RawServer([(404, {"code": "not_found", "message": "unknown worker 'x'"})], hang_up=False)
        self.addCleanup(server.close)
        client = Client(Endpoint(socket_path=server.path))
        self.addCleanup(client.close)
        with self.assertRaises(RpcError) as raised:
            client.call("Complete", {"workerId": "x"})
        self.assertEqual((raised.exception.code, raised.exception.message), ("not_found", "unknown worker 'x'"))
        self.assertIn("Complete: not_found", str(raised.exception))

    def test_no_server_is_unavailable(self):
        client = Client(Endpoint(socket_path="/nonexistent/runner.sock"))
        with self.assertRaises(RpcError) as raised:
            client.call("Register", {})
        self.assertEqual(raised.exception.code, "unavailable")


class EndpointTest(unittest.TestCase):
    def test_url(self):
        endpoint = Endpoint(url="http://127.0.0.1:7071")
        self.assertEqual((endpoint.host, endpoint.port, endpoint.socket_path), ("127.0.0.1", 7071, None))
        with self.assertRaises(ValueError):
            Endpoint(url="https://x")


if __name__ == "__main__":
    unittest.main()
