"""``dlnd serve`` as a real process on a local port: what only a real socket shows.

Slow or silent clients, clients that leave mid-upload, response headers, the Host check,
a port already in use. Short timeouts (1 s) keep the tests quick.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import run_dlnd
from serve_fixtures import tiny_exports

TIMEOUT_S = 1.0
PREDICT = "/v1/models/tiny-digits/predict"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"dlnd serve did not start:\n{log.read_text()}")
        time.sleep(0.2)


class Served:
    """A running ``dlnd serve``: its port, URL, process and log file."""

    def __init__(self, port: int, process: subprocess.Popen, log: Path) -> None:
        self.port, self.process, self.log = port, process, log
        self.url = f"http://127.0.0.1:{port}"

    def connect(self) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return connection

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=60)


def start_server(folder: Path, log: Path, *flags: str) -> Served:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dlnd", "serve", str(folder), "--port", str(port), *flags],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = Served(port, process, log)
    wait_until_up(served.url, process, log)
    return served


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Served]:
    folder = tiny_exports(tmp_path_factory)["digits"]
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    served = start_server(
        folder, log, "--header-timeout", str(TIMEOUT_S), "--body-timeout", str(TIMEOUT_S)
    )
    yield served
    served.stop()


def read_all(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_request_headers_are_cut_off(server):
    """Probe: a client sending its headers a byte at a time held its connection for ever."""
    with server.connect() as connection:
        started = time.monotonic()
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        answer = read_all(connection)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert TIMEOUT_S * 0.8 < time.monotonic() - started < TIMEOUT_S + 5


def test_a_silent_connection_is_closed(server):
    with server.connect() as connection:
        started = time.monotonic()
        assert read_all(connection).startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < TIMEOUT_S + 5


def test_a_slow_body_gets_408(server):
    """Probe: a body trickling in was waited for without limit."""
    with server.connect() as connection:
        connection.sendall(
            b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + b'{"pixels": ['
        )
        answer = read_all(connection)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive within 1 s" in answer


def test_the_server_still_answers_after_slow_clients(server):
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_clients_leaving_mid_upload_leave_no_traceback(server):
    """Probe: a client that disconnected mid-upload left a traceback in the log."""
    heads = {
        "application/json": b'{"pixels": [[0.1, 0.2',
        "multipart/form-data; boundary=xx": b'--xx\r\nContent-Disposition: form-data; name="file"; '
        b'filename="a.png"\r\n\r\n\x89PNG',
    }
    for content_type, partial_body in heads.items():
        with server.connect() as connection:
            connection.sendall(
                f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                "Content-Length: 100000\r\n\r\n".encode()
                + partial_body
            )
            time.sleep(0.3)  # the server is reading the body now
    time.sleep(0.5)
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert "Traceback" not in server.log.read_text()


def test_answers_carry_security_headers_and_no_server_banner(server):
    """Probe: 'server: uvicorn', and no X-Content-Type-Options, CSP or frame headers."""
    for path in ("/", "/healthz", "/static/app.js", "/v1/models/nope"):
        headers = httpx.get(f"{server.url}{path}").headers
        assert "server" not in headers, path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example"])
def test_other_host_names_are_refused(server, host):
    """Probe: no Host check, so a page on another site could reach the server through DNS
    rebinding."""
    response = httpx.get(f"{server.url}/v1/models", headers={"host": host})
    assert response.status_code == 400
    assert "does not answer to the host name" in response.json()["detail"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST:{port}", "[::1]:{port}"])
def test_loopback_host_names_are_answered(server, host):
    response = httpx.get(f"{server.url}/healthz", headers={"host": host.format(port=server.port)})
    assert response.status_code == 200


def test_the_api_description_needs_no_cdn(server):
    """Probe: /docs loaded Swagger UI from a CDN."""
    page = httpx.get(f"{server.url}/docs").text
    assert "http" not in page.replace('lang="en"', "")
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert httpx.get(f"{server.url}{asset}").status_code == 200


def test_a_port_in_use_is_one_sentence(server):
    """Probe: a port already in use exited 3 with uvicorn's raw error."""
    result = run_dlnd("serve", "--port", str(server.port), timeout=120)
    assert result.returncode == 2
    assert f"Port {server.port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_each_request_writes_one_json_access_line(server):
    marker = f"/healthz?{time.monotonic_ns()}"
    httpx.get(f"{server.url}{marker}")
    time.sleep(0.3)  # the log is written by a thread of its own
    lines = [
        json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")
    ]
    healthz = [line for line in lines if line["route"] == "/healthz"]
    assert healthz and healthz[-1]["status"] == 200 and healthz[-1]["method"] == "GET"


def test_sigterm_answers_requests_in_flight_refuses_new_ones_and_exits_0(tmp_path_factory):
    folder = tiny_exports(tmp_path_factory)["digits"]
    log = tmp_path_factory.mktemp("drain") / "serve.log"
    served = start_server(folder, log)
    body = json.dumps({"pixels": [[0.0] * 28] * 28}).encode()
    half = len(body) // 2
    with served.connect() as in_flight:
        in_flight.sendall(
            f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:half]
        )
        time.sleep(0.3)  # the request is in flight: its body is half sent
        served.process.send_signal(signal.SIGTERM)
        refused_after = time.monotonic() + 10
        while time.monotonic() < refused_after:
            try:
                socket.create_connection(("127.0.0.1", served.port), timeout=1).close()
                time.sleep(0.1)
            except ConnectionRefusedError:
                break
        else:
            raise AssertionError("new connections were still accepted 10 s after SIGTERM")
        in_flight.sendall(body[half:])
        answer = read_all(in_flight)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b'"predictions"' in answer
    assert served.process.wait(timeout=60) == 0
    assert "Stopped by SIGTERM; every request in flight was answered." in log.read_text()
