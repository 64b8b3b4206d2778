"""Recent traffic and reviewed outputs as nearest-neighbour indexes that follow the database.

The database stays the source of truth: the indexes are a cache that ``sync`` brings up to date
from watermarks (pages of rows scored or reviewed since), that ``save`` writes to disk so a
restarted worker only catches up, and that ``open`` rebuilds from the database whenever the files
are missing or unusable.

Each sync re-reads the last ``overlap`` before its watermarks, because a row's timestamp is taken
before its transaction commits: a row that commits up to ``overlap`` late is still picked up.
Re-reading is cheap because re-adding an unchanged vector is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from service.storage import vectors as repo
from service.storage.db import transaction
from workers.index import IndexFormatError, NeighbourIndex, Watermark

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 20_000
DEFAULT_PAGE = 1_000
DEFAULT_OVERLAP = timedelta(seconds=10)
FILES = {"recent": "recent.nbr", "reviewed": "reviewed.nbr", "failed": "failed.nbr"}


@dataclass(frozen=True)
class Synced:
    """Rows read by one sync (re-read overlap included)."""

    recent: int
    reviewed: int


class Neighbours:
    """``recent``: the last ``window`` scored outputs; ``reviewed``: every reviewed output;
    ``failed``: the reviewed outputs whose latest verdict is fail. Not thread-safe.
    """

    def __init__(
        self,
        dim: int,
        *,
        window: int = DEFAULT_WINDOW,
        page_size: int = DEFAULT_PAGE,
        overlap: timedelta = DEFAULT_OVERLAP,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be positive")
        self.dim = dim
        self.page_size = page_size
        self.overlap = overlap
        self.recent = NeighbourIndex(dim, capacity=window)
        self.reviewed = NeighbourIndex(dim)
        self.failed = NeighbourIndex(dim)

    @property
    def failed_ids(self) -> set[str]:
        """Reviewed outputs whose latest verdict is fail."""
        return set(self.failed.ids)

    @classmethod
    def open(
        cls,
        directory: str | Path,
        dim: int,
        window: int,
        engine: Engine,
        *,
        page_size: int = DEFAULT_PAGE,
        overlap: timedelta = DEFAULT_OVERLAP,
    ) -> Neighbours:
        """Load the indexes saved in ``directory`` where usable, then catch up with the database."""
        neighbours = cls(dim, window=window, page_size=page_size, overlap=overlap)
        folder = Path(directory)
        recent = _load(folder / FILES["recent"], dim)
        if recent is not None and recent.capacity is not None and recent.capacity >= window:
            recent.capacity = window  # a smaller window just drops the oldest; a larger one rebuilds
            neighbours.recent = recent
        reviewed, failed = _load(folder / FILES["reviewed"], dim), _load(folder / FILES["failed"], dim)
        if reviewed is not None and failed is not None:  # one without the other: rebuild both
            neighbours.reviewed, neighbours.failed = reviewed, failed
        neighbours._sync_recent(engine, skip_to_window=True)
        neighbours._sync_reviewed(engine)
        return neighbours

    def save(self, directory: str | Path) -> None:
        """Write the three indexes (each atomically) into ``directory``."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        for name, index in (("recent", self.recent), ("reviewed", self.reviewed), ("failed", self.failed)):
            index.save(folder / FILES[name])

    def sync(self, engine: Engine) -> Synced:
        """Add what was scored or reviewed since the last sync."""
        return Synced(recent=self._sync_recent(engine), reviewed=self._sync_reviewed(engine))

    # --- queries used by scoring ------------------------------------------------------------------

    def recent_distance(
        self, vectors: np.ndarray, k: int, exclude_ids: Sequence[str | None] | None = None
    ) -> list[float | None]:
        """Mean cosine distance to the ``k`` nearest recent outputs (an output is not its own neighbour)."""
        return _mean_distance(self.recent.search(vectors, k, exclude_ids))

    def reviewed_distance(self, vectors: np.ndarray, k: int) -> list[float | None]:
        """Mean cosine distance to the ``k`` nearest reviewed outputs."""
        return _mean_distance(self.reviewed.search(vectors, k))

    def reviewed_neighbours(self, vectors: np.ndarray, k: int) -> list[list[dict[str, Any]]]:
        """The ``k`` nearest reviewed outputs of each vector, as ``{"id", "similarity"}``, best first."""
        return [
            [{"id": key, "similarity": round(float(sim), 4)} for key, sim in hits]
            for hits in self.reviewed.search(vectors, k)
        ]

    def failure_similarity(self, vectors: np.ndarray, k: int = 10) -> list[float | None]:
        """Highest cosine similarity to a reviewed output that failed (None if none failed).

        ``k`` failed neighbours are searched for and the best is kept; a wider search is more exact.
        """
        return [hits[0][1] if hits else None for hits in self.failed.search(vectors, k)]

    # --- sync -------------------------------------------------------------------------------------

    def _start(self, *marks: Watermark | None) -> Watermark | None:
        if any(m is None for m in marks):
            return None
        earliest = min(m for m in marks if m is not None)
        return earliest[0] - self.overlap, ""

    def _sync_recent(self, engine: Engine, *, skip_to_window: bool = False) -> int:
        index = self.recent
        cursor = self._start(index.watermark)
        if skip_to_window and index.capacity is not None:
            # After a long stop (or with no files) only the newest `window` rows can stay: read those.
            with transaction(engine) as session:
                window_start = repo.scored_window_start(session, size=index.capacity)
            if window_start is not None and (cursor is None or window_start > cursor):
                cursor = window_start
        read = 0
        for rows in self._pages(engine, repo.scored_since, cursor):
            ids, matrix, _ = self._decode([(i, e) for i, _, e in rows])
            index.add(ids, matrix)
            read += len(rows)
            cursor = (rows[-1][1], rows[-1][0])
        _advance([index], cursor)
        return read

    def _sync_reviewed(self, engine: Engine) -> int:
        cursor = self._start(self.reviewed.watermark, self.failed.watermark)
        read = 0
        for rows in self._pages(engine, repo.reviewed_since, cursor):
            ids, matrix, kept = self._decode([(i, e) for i, _, e, _ in rows])
            failed = np.array([rows[r][3] for r in kept], dtype=bool)
            self.reviewed.add(ids, matrix)
            self.failed.add([i for i, f in zip(ids, failed, strict=True) if f], matrix[failed])
            self.failed.remove(i for i, f in zip(ids, failed, strict=True) if not f)
            read += len(rows)
            cursor = (rows[-1][1], rows[-1][0])
        _advance([self.reviewed, self.failed], cursor)
        return read

    def _pages(
        self, engine: Engine, fetch: Callable[..., Sequence[Any]], cursor: Watermark | None
    ) -> Iterator[Sequence[Any]]:
        """Rows after the cursor, a page per transaction; each row starts with (id, timestamp)."""
        while True:
            with transaction(engine) as session:
                rows = fetch(
                    session,
                    after=cursor[0] if cursor else None,
                    after_id=cursor[1] if cursor else None,
                    limit=self.page_size,
                )
            if not rows:
                return
            yield rows
            cursor = (rows[-1][1], rows[-1][0])
            if len(rows) < self.page_size:
                return

    def _decode(self, rows: Sequence[tuple[str, bytes]]) -> tuple[list[str], np.ndarray, list[int]]:
        """Ids, vectors and row numbers of the embeddings of this dimension (an earlier encoder's are
        skipped)."""
        size = self.dim * 4
        kept = [r for r, (_, e) in enumerate(rows) if len(e) == size]
        if len(kept) < len(rows):
            log.warning("skipped %d embeddings not of dimension %d", len(rows) - len(kept), self.dim)
        matrix = np.frombuffer(b"".join(rows[r][1] for r in kept), dtype=np.float32).reshape(-1, self.dim)
        return [rows[r][0] for r in kept], matrix, kept


def _load(path: Path, dim: int) -> NeighbourIndex | None:
    if not path.exists():
        return None
    try:
        return NeighbourIndex.load(path, dim)
    except (OSError, IndexFormatError) as exc:
        log.warning("rebuilding the neighbour index instead of loading %s: %s", path, exc)
        return None


def _mean_distance(results: list[list[tuple[str, float]]]) -> list[float | None]:
    return [max(0.0, 1.0 - sum(s for _, s in hits) / len(hits)) if hits else None for hits in results]


def _advance(indexes: Sequence[NeighbourIndex], cursor: Watermark | None) -> None:
    """Move each index's watermark forward to the cursor (never back)."""
    for index in indexes:
        if cursor is not None and (index.watermark is None or cursor > index.watermark):
            index.watermark = cursor
