"""Long CLI work shows a bar on a terminal and plain log lines elsewhere."""

from __future__ import annotations

import io
import logging

import pytest

from service import progress
from service.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_it_draws_a_bar_with_rate_and_time_left() -> None:
    screen = Terminal()
    with Progress(total=4, what="outputs", stream=screen) as bar:
        for _ in range(4):
            bar.update(1)
    drawn = screen.getvalue()
    assert "4/4" in drawn and "outputs" in drawn and "100%" in drawn


def test_in_a_pipe_it_logs_lines_with_rate_and_time_left(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)  # a line on every update
    pipe = io.StringIO()
    with (
        caplog.at_level(logging.INFO, logger="review_router"),
        Progress(total=4, what="outputs", stream=pipe) as p,
    ):
        p.update(1)
        p.update(3)
    assert pipe.getvalue() == ""  # nothing drawn where nobody watches
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("1 of 4 outputs, ") and "s left" in lines[0]
    assert lines[-1].startswith("4 of 4 outputs, ") and " in " in lines[-1]
