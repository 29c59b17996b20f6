"""A threaded WSGI server on 127.0.0.1 that keeps HTTP/1.1 connections alive.

Werkzeug's development server sends ``Connection: close`` on every answer, so
each request to a fake provider cost a TCP handshake and a new server thread.
Twilio's and Viber's APIs keep connections alive, and a client that reuses its
connection (``requests.Session``, the twilio client's ``TwilioHttpClient``)
must be able to do so against the fakes too, or the fake, not the code under
test, sets the throughput a benchmark measures.

One thread per connection (``ThreadingHTTPServer``); each request on it is
parsed by :mod:`http.server`, handed to the WSGI app, and answered with a
``Content-Length``, so the client can send the next request on the same
connection. ``Connection: close`` from the client closes it, as usual.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeProvider/1.0"
    sys_version = ""
    # the answer goes out at once, not held back by Nagle waiting for the client's ACK
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # quiet, like the werkzeug logger the fakes silence

    def _environ(self, body: bytes) -> dict:
        path, _, query = self.path.partition("?")
        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for key, value in self.headers.items():
            name = key.upper().replace("-", "_")
            if name == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif name != "CONTENT_LENGTH":
                environ["HTTP_" + name] = value
        return environ

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        started: list = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]
            return lambda data: chunks.append(data)

        chunks: list[bytes] = []
        result = self.server.app(self._environ(body), start_response)
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, headers = started
        code, _, reason = status.partition(" ")
        payload = b"".join(chunks)
        self.send_response(int(code), reason)
        for key, value in headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(payload)
        self.flush_headers()  # status, headers and body in one write

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve


class KeepAliveServer(ThreadingHTTPServer):
    """``serve_forever`` / ``shutdown`` / ``server_close`` like werkzeug's server.

    ``server_close`` also closes the connections still open, so a stopped fake
    answers nothing more, as a provider that went away."""

    daemon_threads = True

    def __init__(self, host: str, port: int, app):
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def process_request(self, request, client_address):
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(live, app) -> None:
    """Give a :class:`tests.support.LiveServer` (``port``, ``server``, ``thread``)
    a keep-alive server for ``app`` on a free port."""
    from tests.support import free_port

    live.port = free_port()
    live.server = KeepAliveServer("127.0.0.1", live.port, app)
    live.thread = threading.Thread(target=live.server.serve_forever, daemon=True)
