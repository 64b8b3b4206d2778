"""An unexpected error answers 500 in the envelope and leaves the connection usable (a real uvicorn
server, one keep-alive socket)."""

from __future__ import annotations

import json
import socket
import threading
import time

import uvicorn

from service.app import create_app
from tests.conftest import Database


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        body += chunk
    return int(lines[0].split()[1]), headers, body[:length]


def test_a_500_keeps_the_connection_alive(fresh_db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings_for(fresh_db))

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/boom", boom)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for path, expected in [
                ("/v1/boom", 500),
                ("/healthz", 200),
                ("/v1/boom", 500),
                ("/healthz", 200),
            ]:
                sock.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: test\r\nAccept: application/json\r\n\r\n".encode()
                )
                status, headers, body = _read_response(sock)
                assert status == expected, path
                if status == 500:
                    assert json.loads(body) == {
                        "error": {"code": "internal", "message": "internal server error", "details": None}
                    }
                    assert "a bug" not in body.decode() and "content-security-policy" in headers
    finally:
        server.should_exit = True
        thread.join(10)
