"""A small real HTTP server that speaks the worker's side of Rasa: the
custom ``lanpya`` channel (docs/interfaces.md "Worker → Rasa") and the
tracker events API used for session restarts.

It answers "re: <message>" with intent "echo", records every request in
order, and can be stopped and started again on the same port (Rasa down and
back), or told to answer slowly or with an error.
"""

from __future__ import annotations

import json
import threading
import time

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.support import free_port


class FakeRasa:
    def __init__(self, port: int | None = None, delay: float = 0.0):
        self.port = port or free_port()
        self.delay = delay
        self.status = 200
        #: (sender, message, metadata) of every message answered, in arrival order
        self.received: list[tuple[str, str, dict]] = []
        #: senders whose conversation was restarted
        self.restarts: list[str] = []
        #: per-message override: message text -> extra reply fields
        self.scripted: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._server = None
        self._thread = None
        #: a request for the same sender while one is in flight (must never happen)
        self.overlaps = 0
        self._busy: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeRasa:
        self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def __enter__(self) -> FakeRasa:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def messages_from(self, sender: str) -> list[str]:
        with self._lock:
            return [m for s, m, _ in self.received if s == sender]

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        if self.status != 200:
            return Response("unavailable", status=self.status)(environ, start_response)
        if request.method == "POST" and request.path == "/webhooks/lanpya/webhook":
            data = request.get_json(force=True)
            sender = data["sender"]
            with self._lock:
                if sender in self._busy:
                    self.overlaps += 1
                self._busy.add(sender)
            try:
                if self.delay:
                    time.sleep(self.delay)
                message = data["message"]
                reply = {
                    "messages": [{"text": f"re: {message}"}],
                    "intent": "echo",
                    "confidence": 0.9,
                    "language": data["metadata"].get("language"),
                    "case_id": None,
                }
                reply.update(self.scripted.get(message, {}))
                with self._lock:
                    self.received.append((sender, message, data.get("metadata") or {}))
            finally:
                with self._lock:
                    self._busy.discard(sender)
            body = json.dumps(reply)
            return Response(body, mimetype="application/json")(environ, start_response)
        if request.method == "POST" and request.path.startswith("/conversations/"):
            sender = request.path.split("/")[2]
            with self._lock:
                self.restarts.append(sender)
            return Response("{}", mimetype="application/json")(environ, start_response)
        return Response("not found", status=404)(environ, start_response)
