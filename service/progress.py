"""Progress for long CLI work: a bar with its rate and time left on a terminal, plain log lines
(every few seconds, and at the end) when the output goes to a file or a pipe."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

log = logging.getLogger("review_router")

#: Seconds between the log lines written when not on a terminal.
LOG_EVERY = 5.0


class Progress:
    """``with Progress(total=n, what="outputs") as p: ... p.update(k)``."""

    def __init__(self, *, total: int, what: str, stream: TextIO | None = None) -> None:
        self.total = total
        self.what = what
        self.stream = stream or sys.stderr
        self.done = 0
        self._bar: Any = None
        self._started = time.monotonic()
        self._logged = self._started

    def __enter__(self) -> Progress:
        if self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit=f" {self.what}", file=self.stream, dynamic_ncols=True)
        return self

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif time.monotonic() - self._logged >= LOG_EVERY:
            self._logged = time.monotonic()
            log.info("%s", self.line())

    def line(self) -> str:
        """'1,200 of 4,507 outputs, 310/s, about 11 s left'."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta = f", about {left:.0f} s left" if self.done < self.total and rate > 0 else ""
        return f"{self.done:,} of {self.total:,} {self.what}, {rate:,.0f}/s{eta}"

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
        else:
            log.info("%s in %.1f s", self.line(), time.monotonic() - self._started)
