"""A lean threaded HTTP/1.1 server on 127.0.0.1 for the fake providers.

The fakes stand at the network edge, where Twilio's and Viber's APIs keep
connections alive; a client that reuses its connection (the twilio client's
transport, ``requests.Session``) must be able to do so against the fakes too.
Werkzeug's development server closed every connection, so each request cost a
TCP handshake and a new server thread; ``http.server`` then WSGI then werkzeug's
request parsing cost the fake ~0.5 ms of CPU a request, as much as the worker
it was measuring spent on a send (the campaign benchmark runs both on the same
two cores). So the fakes are served here without those layers:

- one thread per connection (``socketserver.ThreadingTCPServer``), each
  request on it answered with a ``Content-Length`` (or closed after
  ``Connection: close``);
- the request line and headers parsed by hand (no ``email`` parser), the body
  read by ``Content-Length`` or chunked, the form decoded in C where it can be
  (:func:`parse_form`);
- the fake's handler gets a :class:`FakeRequest` (``method``, ``path``,
  ``headers``, ``form``, ``get_data()``) and returns a :class:`FakeResponse`
  (``status_code``, ``get_data()``), the few parts of werkzeug's objects the
  fakes and the benchmarks' subclasses of them use.

Malformed requests get a 400 and the connection is closed.
"""

from __future__ import annotations

import codecs
import json
import socket
import socketserver
import threading
import traceback
from http import HTTPStatus
from urllib.parse import unquote

#: a request line or a header line longer than this is refused (as http.server does)
MAX_LINE = 65536
MAX_HEADERS = 100


def _decode(raw: bytes) -> str:
    """One ``application/x-www-form-urlencoded`` name or value.

    ``%XX`` escapes are turned into ``\\xXX`` and decoded by the C escape
    codec (a Burmese body is ~450 escapes; ``urllib.parse.unquote`` loops over
    them in Python). A raw backslash is first escaped the same way, so it comes
    out as itself. Anything the fast path cannot take (a broken escape, bytes
    that are not UTF-8) goes through ``unquote``, which is what ``parse_qsl``
    would have answered."""
    raw = raw.replace(b"+", b" ")
    if b"%" not in raw:
        return raw.decode("utf-8", "replace")
    try:
        return codecs.escape_decode(raw.replace(b"\\", b"%5C").replace(b"%", b"\\x"))[0].decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return unquote(raw.decode("latin-1"))


class Form(dict):
    """Form fields, first value per name (as werkzeug's ``form.get``), with
    ``getlist`` for repeated ones (Twilio's ``MediaUrl``)."""

    def __init__(self) -> None:
        super().__init__()
        self.lists: dict[str, list[str]] = {}

    def add(self, key: str, value: str) -> None:
        self.setdefault(key, value)
        self.lists.setdefault(key, []).append(value)

    def getlist(self, key: str) -> list[str]:
        return list(self.lists.get(key, ()))

    def to_dict(self) -> dict[str, str]:
        return dict(self)


def parse_form(body: bytes) -> Form:
    """``a=1&b=x+y&c=%E1%80%80`` → ``{"a": "1", "b": "x y", "c": "က"}`` (blank fields kept,
    as ``parse_qsl(keep_blank_values=True)``)."""
    form = Form()
    for pair in body.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        form.add(_decode(name), _decode(value))
    return form


class Headers(dict):
    """Request headers by lower-case name; ``get`` takes any case."""

    def get(self, key: str, default=None):  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class FakeRequest:
    def __init__(self, method: str, target: str, headers: Headers, body: bytes):
        self.method = method
        self.path, _, self.query_string = target.partition("?")
        self.path = unquote(self.path)
        self.headers = headers
        self.body = body
        self._form: Form | None = None

    @property
    def form(self) -> Form:
        if self._form is None:
            kind = self.headers.get("content-type", "").split(";")[0].strip().lower()
            self._form = parse_form(self.body) if kind == "application/x-www-form-urlencoded" else Form()
        return self._form

    @property
    def args(self) -> Form:
        return parse_form(self.query_string.encode("latin-1"))

    def get_data(self) -> bytes:
        return self.body


class FakeResponse:
    def __init__(self, body: bytes | str = b"", status: int = 200, content_type: str = "text/plain"):
        self.data = body.encode() if isinstance(body, str) else body
        self.status_code = status
        self.content_type = content_type

    @classmethod
    def json(cls, payload, status: int = 200) -> FakeResponse:
        return cls(json.dumps(payload).encode(), status, "application/json")

    def get_data(self) -> bytes:
        return self.data


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


class _BadRequest(Exception):
    pass


class _Handler(socketserver.StreamRequestHandler):
    # the answer goes out at once, not held back by Nagle waiting for the client's ACK
    disable_nagle_algorithm = True

    def handle(self) -> None:
        while True:
            try:
                request, keep_alive = self._read()
            except _BadRequest:
                self._write(FakeResponse(b"bad request", 400), keep_alive=False, head=False)
                return
            except OSError:
                return
            if request is None:
                return
            try:
                response = self.server.app(request)
            except Exception:  # noqa: BLE001 - a bug in a fake answers 500, as a WSGI server would
                traceback.print_exc()
                response, keep_alive = FakeResponse(b"internal error", 500), False
            try:
                self._write(response, keep_alive, head=request.method == "HEAD")
            except OSError:
                return
            if not keep_alive:
                return

    def _line(self) -> bytes:
        line = self.rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise _BadRequest
        return line

    def _read(self) -> tuple[FakeRequest | None, bool]:
        line = self._line()
        while line in (b"\r\n", b"\n"):  # stray blank lines between requests are allowed
            line = self._line()
        if not line:
            return None, False  # the client closed the connection
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest
        method, target, version = parts
        headers = Headers()
        for _ in range(MAX_HEADERS + 1):
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                break
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name.strip():
                raise _BadRequest
            headers[name.strip().lower()] = value.strip()
        else:
            raise _BadRequest
        connection = headers.get("connection", "").lower()
        keep_alive = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked()
        else:
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                raise _BadRequest from None
            if length < 0:
                raise _BadRequest
            body = self.rfile.read(length) if length else b""
            if len(body) != length:
                return None, False  # cut off mid-body
        return FakeRequest(method.upper(), target, headers, body), keep_alive

    def _chunked(self) -> bytes:
        chunks = []
        while True:
            try:
                size = int(self._line().split(b";")[0].strip() or b"x", 16)
            except ValueError:
                raise _BadRequest from None
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self._line()

    def _write(self, response: FakeResponse, keep_alive: bool, head: bool) -> None:
        body = response.get_data()
        head_lines = (
            f"HTTP/1.1 {response.status_code} {_reason(response.status_code)}\r\n"
            f"Server: FakeProvider/1.0\r\nContent-Type: {response.content_type}\r\n"
            f"Content-Length: {len(body)}\r\n" + ("" if keep_alive else "Connection: close\r\n") + "\r\n"
        )
        # status, headers and body in one write
        self.wfile.write(head_lines.encode("latin-1") + (b"" if head else body))


class KeepAliveServer(socketserver.ThreadingTCPServer):
    """``serve_forever`` / ``shutdown`` / ``server_close`` like werkzeug's server.

    ``server_close`` also closes the connections still open, so a stopped fake
    answers nothing more, as a provider that went away."""

    daemon_threads = True
    allow_reuse_address = True

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
    a keep-alive server for ``app`` (a :class:`FakeRequest` → :class:`FakeResponse`
    callable) on a free port."""
    from tests.support import free_port

    live.port = free_port()
    live.server = KeepAliveServer("127.0.0.1", live.port, app)
    live.thread = threading.Thread(target=live.server.serve_forever, daemon=True)
