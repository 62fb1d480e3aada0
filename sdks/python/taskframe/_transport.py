"""Connect over HTTP/1.1 with the standard library: unary JSON calls and the Assignments stream."""

import http.client
import json
import os
import socket
import threading
import time
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import urlsplit

from ._codec import FLAG_COMPRESSED, FLAG_END_STREAM, HEADER_SIZE, decode_header, dumps, encode_envelope
from .errors import ConnectionLost, RpcError

SERVICE = "/taskframe.v1.RunnerService/"

# HTTP status -> Connect code, for failures that carry no Connect error body
_STATUS_CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "unimplemented",
    408: "deadline_exceeded",
    409: "aborted",
    412: "failed_precondition",
    413: "resource_exhausted",
    415: "internal",
    429: "unavailable",
    431: "resource_exhausted",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}

# A keep-alive connection idle for longer than this may have been closed by the server: open a new one.
_MAX_IDLE_S = 2.0


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection over a unix socket."""

    def __init__(self, path: str, timeout: Optional[float] = None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if self.timeout is not None:
                sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class TCPHTTPConnection(http.client.HTTPConnection):
    """HTTPConnection with Nagle off: small requests and responses go out at once."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Endpoint:
    """Where the sidecar is: a unix socket path, or an http:// URL."""

    def __init__(self, socket_path: Optional[str] = None, url: Optional[str] = None) -> None:
        if not socket_path and not url:
            socket_path = os.environ.get("TASKFRAME_SOCKET") or None
            if not socket_path:
                url = os.environ.get("TASKFRAME_RUNNER_URL") or None
        if not socket_path and not url:
            raise ValueError(
                "no sidecar to connect to: set TASKFRAME_SOCKET (or TASKFRAME_RUNNER_URL), or pass socket= (or url=)"
            )
        self.socket_path = socket_path
        self.prefix = ""
        if socket_path:
            self.host, self.port = "localhost", 0
        else:
            parts = urlsplit(str(url))
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError("TASKFRAME_RUNNER_URL must be http://HOST:PORT, got %r" % (url,))
            self.host = parts.hostname
            self.port = parts.port or 80
            self.prefix = parts.path.rstrip("/")

    def connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        if self.socket_path:
            return UnixHTTPConnection(self.socket_path, timeout=timeout)
        return TCPHTTPConnection(self.host, self.port, timeout=timeout)

    def __repr__(self) -> str:
        return self.socket_path or "http://%s:%d%s" % (self.host, self.port, self.prefix)


def _error_from(status: int, body: bytes, method: str) -> RpcError:
    try:
        parsed = json.loads(body.decode("utf-8")) if body else {}
    except ValueError:
        parsed = {}
    if isinstance(parsed, dict) and parsed.get("code"):
        return RpcError(str(parsed["code"]), str(parsed.get("message", "")), method, status)
    text = body.decode("utf-8", "replace").strip()[:500]
    return RpcError(_STATUS_CODES.get(status, "unknown"), "HTTP %d %s" % (status, text), method, status)


class Client:
    """Unary Runner calls over a small lock-protected set of keep-alive connections.

    Calls are serialized per connection; a call made while every connection
    is busy opens another (so a slow Spawn does not hold up Complete).
    """

    def __init__(self, endpoint: Endpoint, timeout: float = 60.0, max_idle_connections: int = 4) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._lock = threading.Lock()
        self._idle: List[Any] = []  # [(connection, last used monotonic)]
        self._max_idle = max_idle_connections
        self._closed = False

    def call(self, method: str, request: Dict[str, Any]) -> Dict[str, Any]:
        """POST one unary call with JSON; the response message, or RpcError."""
        body = dumps(request)
        headers = {
            "Content-Type": "application/json",
            "Connect-Protocol-Version": "1",
            "Content-Length": str(len(body)),
        }
        path = self.endpoint.prefix + SERVICE + method
        for attempt in (1, 2):
            conn, reused = self._take()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
                conn.close()
                # a kept-alive connection the server had just closed: the request never reached it
                if reused and attempt == 1:
                    continue
                raise RpcError("unavailable", "%s (%s)" % (error, self.endpoint), method) from error
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                raise RpcError("unavailable", "%s (%s)" % (error, self.endpoint), method) from error
            if response.will_close:
                conn.close()
            else:
                self._give_back(conn)
            if response.status != 200:
                raise _error_from(response.status, data, method)
            try:
                return json.loads(data.decode("utf-8")) if data else {}
            except ValueError as error:
                raise RpcError("internal", "the response is not JSON: %s" % error, method) from error
        raise AssertionError("unreachable")

    def _take(self):
        now = time.monotonic()
        with self._lock:
            while self._idle:
                conn, used = self._idle.pop()
                if now - used < _MAX_IDLE_S:
                    return conn, True
                conn.close()
        return self.endpoint.connection(self.timeout), False

    def _give_back(self, conn) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()


class Stream:
    """A server-streaming call on a connection of its own; iterate for messages as they arrive."""

    def __init__(self, endpoint: Endpoint, method: str, request: Dict[str, Any]) -> None:
        self.method = method
        self._conn = endpoint.connection(None)
        body = encode_envelope(request)
        try:
            self._conn.request(
                "POST",
                endpoint.prefix + SERVICE + method,
                body=body,
                headers={
                    "Content-Type": "application/connect+json",
                    "Connect-Protocol-Version": "1",
                    "Content-Length": str(len(body)),
                },
            )
            self._response = self._conn.getresponse()
        except (OSError, http.client.HTTPException) as error:
            self._conn.close()
            raise RpcError("unavailable", "%s (%s)" % (error, endpoint), method) from error
        if self._response.status != 200:
            data = self._response.read()
            self._conn.close()
            raise _error_from(self._response.status, data, method)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        """Messages until a clean end of stream; RpcError for an error end, ConnectionLost for a broken one."""
        response = self._response
        try:
            while True:
                header = _read_exactly(response, HEADER_SIZE)
                if header is None:
                    raise ConnectionLost("%s: the stream broke off without an end-of-stream message" % self.method)
                flags, length = decode_header(header)
                data = _read_exactly(response, length) if length else b""
                if data is None:
                    raise ConnectionLost("%s: the stream broke off inside a message" % self.method)
                if flags & FLAG_COMPRESSED:
                    raise RpcError("internal", "a compressed message arrived, none was asked for", self.method)
                message = json.loads(data.decode("utf-8")) if data else {}
                if flags & FLAG_END_STREAM:
                    error = message.get("error") if isinstance(message, dict) else None
                    if error:
                        raise RpcError(str(error.get("code", "unknown")), str(error.get("message", "")), self.method)
                    return
                yield message
        except (OSError, http.client.HTTPException) as error:
            if self._closed_by_us:
                return
            raise ConnectionLost("%s: %s" % (self.method, error)) from error
        finally:
            self.close()

    _closed_by_us = False

    def close(self) -> None:
        self._closed_by_us = True
        try:
            if self._conn.sock is not None:
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._conn.close()


def _read_exactly(response: http.client.HTTPResponse, size: int) -> Optional[bytes]:
    """`size` bytes of the body, as they arrive; None if it ends first."""
    data = response.read(size)
    if len(data) == size:
        return data
    if not data:
        return None
    parts = [data]
    got = len(data)
    while got < size:
        more = response.read(size - got)
        if not more:
            return None
        parts.append(more)
        got += len(more)
    return b"".join(parts)
