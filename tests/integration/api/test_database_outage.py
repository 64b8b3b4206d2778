"""The database going away under ingest (a real PostgreSQL behind a TCP proxy the test cuts and
restores): requests during the outage get a 503 envelope with Retry-After, never a traceback, and
the service recovers by itself when the database is back."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import Database, create_database, credentials


class Proxy:
    """Forwards a local port to PostgreSQL; ``cut`` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up = False
        for s in self.open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()
        self.open = []

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Database]:
    database = create_database("postgres", tmp_path)
    yield database
    database.close()


def test_a_database_outage_is_a_503_with_retry_after_and_the_service_recovers(
    pg: Database, settings_for
) -> None:  # type: ignore[no-untyped-def]
    parts = urlsplit(pg.url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    netloc = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
    through_proxy = urlunsplit(parts._replace(netloc=f"{netloc}:{proxy.port}"))
    try:
        settings = settings_for(pg)
        settings = settings.model_copy(update={"database_url": through_proxy})
        app = create_app(settings)
        key = credentials(app, "app")
        with TestClient(app, raise_server_exceptions=False) as client:
            post = {"prompt": "Where is the Eiffel Tower?", "response": "In Paris."}
            assert client.post("/v1/outputs", json=post, headers=key).status_code == 202
            proxy.cut()
            started = time.monotonic()
            for _ in range(3):
                down = client.post("/v1/outputs", json=post, headers=key)
                assert down.status_code == 503, down.text
                assert down.json()["error"]["code"] == "unavailable"
                assert down.headers["Retry-After"] == "5"
                assert "Traceback" not in down.text and "psycopg" not in down.text
            proxy.restore()
            deadline = time.monotonic() + 30
            while (back := client.post("/v1/outputs", json=post, headers=key)).status_code != 202:
                assert back.status_code == 503 and time.monotonic() < deadline, back.text
                time.sleep(0.2)
            print(
                f"\ndatabase outage drill: back {time.monotonic() - started:.1f} s after the cut, no restart"
            )
            assert client.get("/v1/stats", headers=key).json()["total"] == 2
    finally:
        proxy.close()
