"""The Twilio transport (``KeepAliveHttpClient``) and the fakes' lean HTTP server.

Both sides of the campaign benchmark's hot path: what the worker spends on a
send and what the fake spends answering it. Each test checks a value a broken
implementation would get wrong: the exact bytes of a form, which TCP
connection carried a request, what a server that dropped an idle connection
does to the next send.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from urllib.parse import parse_qsl, urlencode

import pytest

from lanpya.channels.twilio_sender import KeepAliveHttpClient, TwilioSender, form_body
from tests.fakes import TWILIO_SID, TWILIO_TOKEN, VIBER_TOKEN
from tests.fakes.keepalive import parse_form

PHONE = "+959420123456"
BURMESE = "ပြည်ပ အလုပ်ခေါ်စာ မယုံခင် အေဂျင်စီ လိုင်စင်ကို စစ်ပါ။"


@pytest.mark.parametrize(
    "data",
    [
        {"To": PHONE, "From": "+15005550006", "Body": BURMESE, "StatusCallback": "http://x/s?o=1&y=2"},
        {"Body": "a+b & c=d % 100\\", "MediaUrl": ["http://x/1.jpg", "http://x/2.jpg"]},
        {"Body": "", "Empty": "", "Émoji": "🙂"},
    ],
)
def test_form_body_is_what_urlencode_would_send(data):
    assert form_body(data) == urlencode(data, doseq=True).encode("ascii")
    assert form_body(data) == form_body(data)  # the cached quoting gives the same bytes twice


@pytest.mark.parametrize(
    "raw",
    [
        urlencode({"To": PHONE, "Body": BURMESE, "StatusCallback": "http://x/s?o=1&y=2"}),
        "a=%zz&b=x%5Cy&c=%E1%80&d=plain+text&e=back\\slash&f=&=g&h",
        "Body=%FF%FE&x=%25%2B%26",
        "",
    ],
)
def test_the_fakes_form_parser_agrees_with_parse_qsl(raw):
    expected: dict = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        expected.setdefault(key, value)
    assert parse_form(raw.encode("latin-1")) == expected


def _connections(server) -> int:
    return len(server.server._open)


def test_sends_reuse_one_kept_alive_connection(provider_config, fake_twilio):
    sender = TwilioSender(provider_config)
    for i in range(5):
        outcome = sender.send(PHONE, f"{BURMESE} {i}", ref=i)
        assert outcome.provider_id is not None
    assert [m.body for m in fake_twilio.messages] == [f"{BURMESE} {i}" for i in range(5)]
    assert fake_twilio.messages[2].status_callback == provider_config.public_url + "/sms/twilio/status?o=2"
    assert _connections(fake_twilio) == 1  # one TCP connection carried all five


def test_a_connection_the_server_dropped_while_idle_is_not_reused(provider_config, fake_twilio):
    """Twilio closes idle connections; the next send must open a new one, not
    fail (nor be retried: a POST is never repeated by the transport)."""
    sender = TwilioSender(provider_config)
    assert sender.send(PHONE, "one").ok
    with fake_twilio.server._open_lock:
        conns = list(fake_twilio.server._open)
    for conn in conns:  # the server side hangs up
        conn.shutdown(socket.SHUT_RDWR)
    outcome = sender.send(PHONE, "two")
    assert outcome.ok, outcome.error
    assert [m.body for m in fake_twilio.messages] == ["one", "two"]
    assert len([r for r in fake_twilio.requests if r[0] == "POST"]) == 2


def test_an_error_answer_keeps_the_connection_usable(provider_config, fake_twilio):
    fake_twilio.fail_next(1, status=400, code=21211)
    sender = TwilioSender(provider_config)
    first = sender.send(PHONE, "x")
    assert first.error is not None and first.error.code == "twilio:21211"
    assert sender.send(PHONE, "y").ok
    assert _connections(fake_twilio) == 1


def test_parallel_requests_each_get_their_own_answer(fake_twilio):
    """The hook's responses are returned, never left on the instance: 8 threads
    share one client and each reads the sid of its own message."""
    client = KeepAliveHttpClient(fake_twilio.url)
    url = f"{fake_twilio.url}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    got: dict[str, str] = {}
    lock = threading.Lock()

    def send(k: int) -> None:
        for j in range(10):
            to = f"+9594201{k:02d}{j:03d}"
            answer = client.request(
                "POST", url, data={"To": to, "From": "+15005550006", "Body": "b"}, auth=(TWILIO_SID, TWILIO_TOKEN)
            )
            assert answer.status_code == 201
            with lock:
                got[to] = json.loads(answer.text)["sid"]

    threads = [threading.Thread(target=send, args=(k,)) for k in range(8)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert len(got) == 80
    assert all(fake_twilio.sent_to(to)[0].sid == sid for to, sid in got.items())
    assert _connections(fake_twilio) <= 8
    client.close()


def test_wrong_credentials_are_refused_by_the_fake(provider_config, fake_twilio):
    from dataclasses import replace

    outcome = TwilioSender(replace(provider_config, twilio_auth_token="wrong")).send(PHONE, "x")
    assert outcome.error is not None and outcome.error.code == "twilio:20003" and outcome.error.transient
    assert fake_twilio.messages == []


def test_https_proxies_are_refused_at_start(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ValueError, match="http:// proxy"):
        KeepAliveHttpClient("https://api.twilio.com")


@pytest.mark.parametrize("proxy_url", ["http://user:p%40ss@127.0.0.1:{port}", "127.0.0.1:{port}"])
def test_a_plain_http_proxy_gets_absolute_form_requests(monkeypatch, proxy_url):
    """Through an http:// proxy, a plain-HTTP API base is asked for with the
    full URL and the proxy's credentials (what requests did)."""
    seen: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def proxy() -> None:
        conn, _ = listener.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        seen.append(data)
        body = b'{"ok": true}'
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        conn.close()

    thread = threading.Thread(target=proxy, daemon=True)
    thread.start()
    monkeypatch.setenv("HTTP_PROXY", proxy_url.format(port=port))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = KeepAliveHttpClient("http://api.example.test")
    answer = client.request("GET", "http://api.example.test/2010-04-01/x.json", params={"a": "1"})
    thread.join(5)
    listener.close()
    assert answer.status_code == 200
    head = seen[0].decode()
    assert head.startswith("GET http://api.example.test/2010-04-01/x.json?a=1 HTTP/1.1\r\n")
    if "user" in proxy_url:
        assert "Proxy-Authorization: Basic dXNlcjpwQHNz\r\n" in head  # user:p@ss
    else:
        assert "Proxy-Authorization" not in head


# --- the fakes' server ------------------------------------------------------------------
def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_the_fake_reads_a_chunked_body(fake_twilio):
    body = urlencode({"To": PHONE, "From": "+15005550006", "Body": BURMESE}).encode()
    import base64

    auth = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 100]), body[i : i + 100]) for i in range(0, len(body), 100))
    answer = _raw(
        fake_twilio.port,
        (
            f"POST /2010-04-01/Accounts/{TWILIO_SID}/Messages.json HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Basic {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
        + chunked
        + b"0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 201 Created\r\n") and b"Connection: close\r\n" in answer
    assert fake_twilio.messages[0].body == BURMESE


def test_the_fake_answers_a_malformed_request_400_and_closes(fake_twilio):
    answer = _raw(fake_twilio.port, b"NONSENSE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert fake_twilio.requests == []


def test_the_fake_viber_keeps_connections_alive(fake_viber):
    conn = http.client.HTTPConnection("127.0.0.1", fake_viber.port, timeout=5)
    local = set()
    for i in range(3):
        payload = {"receiver": f"r{i}=", "sender": {"name": "Lanpya"}, "type": "text", "text": BURMESE}
        conn.request(
            "POST",
            "/pa/send_message",
            body=json.dumps(payload).encode(),
            headers={"X-Viber-Auth-Token": VIBER_TOKEN, "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["status"] == 0
        local.add(conn.sock.getsockname())
    conn.close()
    assert len(local) == 1
    assert [m.receiver for m in fake_viber.messages] == ["r0=", "r1=", "r2="]


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 (the only name in it) and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake twilio")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_pem, key_pem


@pytest.fixture
def tls_twilio(tmp_path):
    """The fake Twilio behind TLS, as the real API is (https only)."""
    import ssl

    from tests.fakes import FakeTwilio

    cert_pem, key_pem = _self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_pem, key_pem)
    fake = FakeTwilio(TWILIO_SID, TWILIO_TOKEN)
    fake.server.socket = ctx.wrap_socket(fake.server.socket, server_side=True)
    with fake:
        yield fake, f"https://127.0.0.1:{fake.port}", cert_pem


def test_https_to_the_api_verifies_the_certificate_and_keeps_the_connection(provider_config, tls_twilio, monkeypatch):
    from dataclasses import replace

    fake, url, cert_pem = tls_twilio
    for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_pem))  # trusted the way requests would trust it
    sender = TwilioSender(replace(provider_config, twilio_api_url=url))
    for i in range(3):
        outcome = sender.send(PHONE, f"{BURMESE} {i}")
        assert outcome.ok, outcome.error
    assert [m.body for m in fake.messages] == [f"{BURMESE} {i}" for i in range(3)]
    assert _connections(fake) == 1  # TLS 1.3 tickets do not make an idle connection look dropped

    monkeypatch.delenv("REQUESTS_CA_BUNDLE")  # certifi's roots do not know this certificate
    refused = TwilioSender(replace(provider_config, twilio_api_url=url)).send(PHONE, "x")
    assert refused.error is not None and refused.error.transient and refused.error.code == "connection"
    assert len(fake.messages) == 3


def test_https_through_an_http_proxy_tunnels_with_connect(provider_config, tls_twilio, monkeypatch):
    """HTTPS_PROXY=http://...: a CONNECT to the API host, then TLS to the API
    itself through the tunnel (the proxy sees no body, no number)."""
    from dataclasses import replace

    fake, url, cert_pem = tls_twilio
    heads: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def proxy() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(4096)
            heads.append(head)
            host, port = head.split(b" ")[1].decode().rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

    threading.Thread(target=proxy, daemon=True).start()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{listener.getsockname()[1]}")
    for key in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_pem))
    sender = TwilioSender(replace(provider_config, twilio_api_url=url))
    try:
        assert sender.send(PHONE, BURMESE).ok
        assert sender.send(PHONE, "again").ok
    finally:
        listener.close()
    assert [m.body for m in fake.messages] == [BURMESE, "again"]
    assert len(heads) == 1 and heads[0].startswith(f"CONNECT 127.0.0.1:{fake.port} HTTP/1.".encode())
