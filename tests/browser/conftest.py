"""Browser tests: Playwright drives Debian's Chromium (never a downloaded browser) against a live
server on a seeded SQLite database, as reviewers, a viewer and an admin would use the workbench.

The queue is filled with outputs that are already scored and picked, so no worker runs. Every page
a test opens fails the test if it shows a JavaScript dialog or throws a script error. Screenshots
of the main pages land in ``test-output/screenshots/`` at the repository root.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.scoring import SIGNALS
from service.app import create_app
from service.demo import halueval_outputs
from service.deps import SESSION_COOKIE
from service.domain import OutputIn
from service.settings import QueueConfig, Settings
from service.storage import accounts, queues
from service.storage import repository as repo
from service.storage.db import make_engine
from service.storage.tables import Pick, User, utcnow
from tests.conftest import PASSWORD, Database, add_account, create_database, credentials_in, review

CHROMIUM = os.environ.get("RR_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "halueval" / "general_data.jsonl.gz"
SCREENSHOTS = ROOT / "test-output" / "screenshots"
XSS = '<script>alert("x")</script><img src=x onerror="alert(1)">'
#: Scores of the seeded queue, highest first: the order a reviewer walks it in.
SCORES = (0.93, 0.86, 0.79, 0.72, 0.65, 0.58)
XSS_SCORE = 0.51
REVIEWERS = ("ana", "ben")
VIEWER, ADMIN = "vic", "ada"

_ITEM_URL = re.compile(r"/ui/outputs/[0-9a-f]+")

expect.set_options(timeout=5_000)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield chromium
        chromium.close()


@dataclass
class Workbench:
    """A running server with a seeded queue, and ways to look behind the pages."""

    url: str
    settings: Settings
    sessions: sessionmaker[Session]
    items: list[str]  # the queued outputs' ids in queue order (highest p_fail first)
    xss: str  # a queued output whose prompt, response and sample are hostile HTML
    past: str  # a reviewed output that the first item is similar to
    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    _admin: dict[str, str] | None = None

    def open(self) -> Page:
        """A fresh browser context (its own cookies), as a separate person's browser."""
        context = self.browser.new_context(base_url=self.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(5_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        return page

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def sign_in(self, username: str) -> Page:
        """A new browser in which this person signs in through the login form."""
        page = self.open()
        page.goto("/ui/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("who")).to_contain_text(username)
        return page

    def signed_in(self, username: str, path: str = "/ui/") -> Page:
        """A new browser already signed in as this person (a session opened behind the login form,
        which ``sign_in`` covers), showing ``path``."""
        with self.sessions() as session, session.begin():
            user = session.scalars(select(User).where(User.username == username)).one()
            token, _ = accounts.open_session(session, user=user, now=utcnow(), lifetime=timedelta(hours=1))
        page = self.open()
        page.context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": self.url}])
        page.goto(path)
        expect(page.get_by_test_id("who")).to_contain_text(username)
        return page

    def api(self, path: str) -> Any:
        """GET a REST resource as an admin (bearer token): what is stored, not what a page shows."""
        if self._admin is None:
            self._admin = credentials_in(self.sessions, "admin", "api-admin")
        response = httpx.get(self.url + path, headers=self._admin, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def output(self, output_id: str) -> dict[str, Any]:
        return dict(self.api(f"/v1/outputs/{output_id}"))

    def expire_claim(self, output_id: str) -> None:
        """Move the clock past the item's lease: exactly what an expired claim looks like."""
        with self.sessions() as session, session.begin():
            session.execute(
                update(Pick)
                .where(Pick.output_id == output_id)
                .values(claimed_until=utcnow() - timedelta(seconds=1))
            )


def item_of(page: Page) -> str:
    """The id of the item this page shows (after waiting for an item page)."""
    expect(page).to_have_url(_ITEM_URL)
    output_id = page.url.split("/ui/outputs/", 1)[1].split("?", 1)[0]
    expect(page.locator("h1 code")).to_have_text(output_id[:8])
    return output_id


def on_item(page: Page, output_id: str) -> None:
    """Wait until the page shows this item."""
    expect(page).to_have_url(re.compile(rf"/ui/outputs/{output_id}(\?|$)"))
    expect(page.locator("h1 code")).to_have_text(output_id[:8])


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save what the page shows as test-output/screenshots/NAME.png, for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def _signals(**values: float) -> dict[str, float | None]:
    return {name: values.get(name) for name in SIGNALS}


def _seed(session: Session) -> tuple[list[str], str, str]:
    """A reviewed past output, six queued HaluEval outputs and one hostile one, all scored."""
    rows = list(halueval_outputs(DATA, len(SCORES) + 1))
    past = _scored(session, rows.pop(), score=0.9, signals=_signals(novelty=0.2))
    review(
        session, past, "fail", categories=["factual_error"], reviewer="rosa", now=utcnow() - timedelta(days=1)
    )

    first = {
        **rows[0],
        "samples": [
            rows[0]["response"],
            "I am not sure; it may have been someone else entirely, around a different year.",
        ],
    }
    rows[0] = first
    drivers = [
        {"signal": "sample_dispersion", "value": 0.62, "percentile": 0.94},
        {"signal": "novelty", "value": 0.31, "percentile": 0.81},
    ]
    items = []
    for n, (row, score) in enumerate(zip(rows, SCORES, strict=True)):
        output_id = _scored(
            session,
            row,
            score=score,
            signals=_signals(sample_dispersion=0.62 - n / 20, novelty=0.31),
            drivers=drivers,
            similar=[{"id": past, "similarity": 0.87}] if n == 0 else None,
        )
        items.append(output_id)
    # The first item's cluster in its selection: one other pick, and one output that was not picked
    # (it scored lower) but is still listed, as the reason counts it.
    unpicked = _scored(
        session,
        {"prompt": "Who wrote Hamlet?", "response": "Christopher Marlowe wrote Hamlet in 1601."},
        score=0.41,
        signals=_signals(novelty=0.3),
    )
    selection = queues.add_selection(session, queue="default", window_size=9, junk=0, clusters=1, noise=0)
    for n, (output_id, score) in enumerate(zip(items, SCORES, strict=True)):
        if n == 0:
            _pick(session, output_id, score, selection.id, [items[2], unpicked])
        else:
            _pick(session, output_id, score, selection.id if n == 2 else None)
    hostile = {
        "prompt": XSS,
        "response": XSS,
        "samples": [XSS, "<b>bold</b> & <i>friends</i>"],
        "app": "hostile",
    }
    xss = _scored(session, hostile, score=XSS_SCORE, signals=_signals(novelty=0.9))
    _pick(session, xss, XSS_SCORE)
    return [*items, xss], xss, past


def _scored(
    session: Session,
    payload: dict[str, Any],
    *,
    score: float,
    signals: dict[str, float | None],
    drivers: list[dict[str, Any]] | None = None,
    similar: list[dict[str, Any]] | None = None,
) -> str:
    output, _ = repo.ingest_output(session, output_in=OutputIn.model_validate(payload))
    output.status, output.score, output.signals = "scored", score, signals
    output.drivers, output.similar, output.queue = drivers or [], similar, "default"
    output.scorer_version, output.scored_at = "coldstart", utcnow()
    session.flush()
    return output.id


def _pick(
    session: Session,
    output_id: str,
    score: float,
    selection_id: str | None = None,
    members: list[str] | None = None,
) -> None:
    reason = f"uncertain: p_fail {score:.2f}, samples disagree with the response"
    assert queues.add_pick(
        session,
        queue="default",
        output_id=output_id,
        stratum="uncertain",
        reason=reason,
        score=score,
        selection_id=selection_id,
        cluster=0 if selection_id else None,
        members=members or (),
    )


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test starts from a copy (quicker than migrating again)."""
    database = create_database("sqlite", tmp_path_factory.mktemp("browser-db"))
    database.close()
    return Path(database.url.removeprefix("sqlite:///"))


@pytest.fixture
def start_workbench(
    browser: Browser, migrated_sqlite: Path, tmp_path: Path, settings_for: Callable[..., Settings]
) -> Iterator[Callable[..., Workbench]]:
    """Start a server on a fresh, seeded SQLite database (settings overridable), once per test."""
    started: list[tuple[Workbench, uvicorn.Server, threading.Thread, Database]] = []

    def start(**overrides: Any) -> Workbench:
        path = tmp_path / f"workbench-{len(started)}.db"
        shutil.copyfile(migrated_sqlite, path)
        database = Database("sqlite", f"sqlite:///{path}", make_engine(f"sqlite:///{path}"))
        values: dict[str, Any] = {
            "queues": [QueueConfig(name="default", budget_per_day=50)],
            "qc_share": 0.0,
            "claim_lease_seconds": 120,
        }
        settings = settings_for(database, **(values | overrides))
        app = create_app(settings)
        sessions = app.state.sessions
        with sessions() as session, session.begin():
            items, xss, past = _seed(session)
            for name in REVIEWERS:
                add_account(session, name, "reviewer")
            add_account(session, VIEWER, "viewer")
            add_account(session, ADMIN, "admin")
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "the server did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        bench = Workbench(
            url=f"http://127.0.0.1:{port}",
            settings=settings,
            sessions=sessions,
            items=items,
            xss=xss,
            past=past,
            browser=browser,
        )
        started.append((bench, server, thread, database))
        return bench

    yield start
    for bench, server, thread, database in started:
        for context in bench.contexts:
            context.close()
        server.should_exit = True
        thread.join(10)
        database.close()
    for bench, *_ in started:
        assert not bench.dialogs, f"a page opened a JavaScript dialog: {bench.dialogs}"
        assert not bench.page_errors, f"a page threw a script error: {bench.page_errors}"


@pytest.fixture
def workbench(start_workbench: Callable[..., Workbench]) -> Workbench:
    """The usual workbench: no second reviews, two-minute leases."""
    return start_workbench()
