"""An approximate nearest-neighbour index over output embeddings, keyed by output id.

Why usearch: one pip wheel with no native build step, an HNSW graph that is fast on CPU, real
``add``/``remove`` (so a recent-traffic window can slide and a re-scored output can be replaced),
and an index that serialises to one buffer, so the index, its id map and its sync watermark go to
disk as a single file that is replaced atomically. hnswlib is published as a source package that
needs a C++ compiler, and only marks deletions; faiss-cpu is a much larger dependency whose HNSW
index cannot remove vectors; pgvector would tie novelty to PostgreSQL, and SQLite is the default.

File layout: an 8-byte magic, the header's length (8 bytes, little-endian), a JSON header (format,
dimension, capacity, watermark, the ids and their keys oldest first, a CRC-32 of the rest), then
usearch's own bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from usearch.index import BatchMatches, Index

#: Where a sync got to: the last row's timestamp and id (the id breaks ties between equal times).
Watermark = tuple[datetime, str]

MAGIC = b"RRNIDX1\n"
FORMAT = 1
_HEX15 = re.compile(r"[0-9a-f]{15}")
_KEY_SPACE = 1 << 63


#: Indexes this small are searched exactly (HNSW answers are approximate and vary run to run).
EXACT_BELOW = 5000


class IndexFormatError(ValueError):
    """A saved index that cannot be used: not ours, another format or dimension, or damaged."""


def id_key(output_id: str) -> int:
    """The integer key usearch stores for an output id: its first 15 hex digits (60 bits).

    Ids that are not lowercase hex (not made by ``new_id``) are hashed instead.
    """
    if _HEX15.fullmatch(output_id[:15]):
        return int(output_id[:15], 16)
    return int.from_bytes(hashlib.blake2b(output_id.encode(), digest_size=8).digest(), "big") >> 4


class NeighbourIndex:
    """Unit vectors keyed by output id, searchable by cosine similarity.

    ``add`` upserts: re-adding an id with a different vector replaces it and makes it the newest;
    re-adding the vector it already has changes nothing (so overlapping syncs are cheap). With a
    ``capacity``, the oldest added are dropped once more than that many are held. ``watermark`` is
    the caller's sync position, saved and loaded with the index. Not thread-safe.
    """

    def __init__(self, dim: int, *, capacity: int | None = None, watermark: Watermark | None = None) -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        self.dim = dim
        self._capacity = _check_capacity(capacity)
        self.watermark = watermark
        self._index = Index(ndim=dim, metric="cos", dtype="f32")
        self._keys: OrderedDict[str, int] = OrderedDict()  # id -> key, oldest first
        self._ids: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, output_id: object) -> bool:
        return output_id in self._keys

    def __repr__(self) -> str:
        return f"NeighbourIndex(dim={self.dim}, size={len(self)}, capacity={self._capacity})"

    @property
    def ids(self) -> list[str]:
        """The ids held, oldest first."""
        return list(self._keys)

    @property
    def capacity(self) -> int | None:
        return self._capacity

    @capacity.setter
    def capacity(self, value: int | None) -> None:
        """Change the capacity; shrinking it drops the oldest vectors at once."""
        self._capacity = _check_capacity(value)
        self._evict(0)

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Insert or replace these outputs' vectors (one row per id; the last of a repeated id wins)."""
        matrix = self._matrix(vectors)
        if len(ids) != len(matrix):
            raise ValueError(f"{len(ids)} ids for {len(matrix)} vectors")
        rows: OrderedDict[str, int] = OrderedDict()
        for row, output_id in enumerate(ids):
            rows.pop(output_id, None)
            rows[output_id] = row
        if self._capacity is not None and len(rows) > self._capacity:
            # Only the newest `capacity` of this batch could survive; don't build the rest.
            rows = OrderedDict(list(rows.items())[-self._capacity :])
        self._drop_unchanged(rows, matrix)
        if not rows:
            return
        self.remove([i for i in rows if i in self._keys])
        self._evict(len(rows))
        keys = [self._claim_key(output_id) for output_id in rows]
        self._index.add(np.array(keys, dtype=np.uint64), matrix[list(rows.values())])

    def remove(self, ids: Iterable[str]) -> int:
        """Drop these outputs (unknown ids are ignored); returns how many were held."""
        keys = [self._keys.pop(i) for i in dict.fromkeys(ids) if i in self._keys]
        for key in keys:
            del self._ids[key]
        if keys:
            self._index.remove(np.array(keys, dtype=np.uint64))
        return len(keys)

    def search(
        self, vectors: np.ndarray, k: int, exclude: Sequence[str | None] | None = None
    ) -> list[list[tuple[str, float]]]:
        """Per query, up to ``k`` (output id, cosine similarity) pairs, most similar first.

        ``exclude`` names one id per query that must not be returned for it (the query's own output).
        """
        matrix = self._matrix(vectors)
        if exclude is not None and len(exclude) != len(matrix):
            raise ValueError(f"{len(exclude)} excluded ids for {len(matrix)} queries")
        if k <= 0 or not self._keys or len(matrix) == 0:
            return [[] for _ in range(len(matrix))]
        count = min(k + (1 if exclude is not None else 0), len(self._keys))
        # Below EXACT_BELOW vectors a brute-force scan is cheap, exact and reproducible; HNSW above.
        exact = len(self._keys) <= EXACT_BELOW
        keys, distances, counts = _batch(self._index.search(matrix, count, exact=exact))
        found: list[list[tuple[str, float]]] = []
        for q in range(len(matrix)):
            skip = exclude[q] if exclude is not None else None
            hits = []
            for key, distance in zip(keys[q, : counts[q]], distances[q, : counts[q]], strict=True):
                output_id = self._ids.get(int(key))
                if output_id is not None and output_id != skip:
                    hits.append((output_id, 1.0 - float(distance)))
            found.append(hits[:k])
        return found

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index, its ids and watermark to one file, atomically (temp file + rename)."""
        target = Path(path)
        header = {
            "format": FORMAT,
            "dim": self.dim,
            "capacity": self._capacity,
            "watermark": None
            if self.watermark is None
            else [self.watermark[0].isoformat(), self.watermark[1]],
            "entries": [[output_id, key] for output_id, key in self._keys.items()],
        }
        body = self._index.save()
        if body is None:  # pragma: no cover - usearch returns the buffer when given no path
            raise RuntimeError("usearch did not serialise the index")
        header["crc32"] = zlib.crc32(body)
        head = json.dumps(header, separators=(",", ":")).encode()
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + len(head).to_bytes(8, "little") + head)
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> NeighbourIndex:
        """Read a file written by ``save``; IndexFormatError if it is not a usable index of ``dim``."""
        data = Path(path).read_bytes()
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 8:
            raise IndexFormatError(f"{path} is not a neighbour index")
        start = len(MAGIC) + 8
        end = start + int.from_bytes(data[len(MAGIC) : start], "little")
        try:
            header = json.loads(data[start:end])
            if header.get("format") != FORMAT or header.get("dim") != dim:
                raise IndexFormatError(
                    f"{path} holds format {header.get('format')} dim {header.get('dim')}; "
                    f"wanted format {FORMAT} dim {dim}"
                )
            loaded = cls(dim, capacity=header["capacity"], watermark=_watermark(header["watermark"]))
            body = memoryview(data)[end:]
            if zlib.crc32(body) != header["crc32"]:
                raise IndexFormatError(f"{path} is damaged: checksum mismatch")
            index = Index.restore(body)
            entries = [(str(i), int(k)) for i, k in header["entries"]]
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            if isinstance(exc, IndexFormatError):
                raise
            raise IndexFormatError(f"{path} is damaged: {exc}") from exc
        if index is None or index.ndim != dim or len(index) != len(entries):
            raise IndexFormatError(f"{path}: the stored vectors do not match its id map")
        if entries and not np.all(index.contains(np.array([k for _, k in entries], dtype=np.uint64))):
            raise IndexFormatError(f"{path}: ids without vectors")
        loaded._index = index
        loaded._keys = OrderedDict(entries)
        loaded._ids = {key: output_id for output_id, key in entries}
        return loaded

    # --- internals --------------------------------------------------------------------------------

    def _matrix(self, vectors: np.ndarray) -> np.ndarray:
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2 or (len(matrix) and matrix.shape[1] != self.dim):
            raise ValueError(f"expected vectors of dimension {self.dim}, got shape {matrix.shape}")
        return np.ascontiguousarray(matrix)

    def _drop_unchanged(self, rows: OrderedDict[str, int], matrix: np.ndarray) -> None:
        held = [i for i in rows if i in self._keys]
        if not held:
            return
        stored = self._index.get(np.array([self._keys[i] for i in held], dtype=np.uint64))
        for output_id, vector in zip(held, _rows(stored, len(held)), strict=True):
            if vector is not None and np.array_equal(vector, matrix[rows[output_id]]):
                del rows[output_id]

    def _evict(self, incoming: int) -> None:
        if self._capacity is None:
            return
        excess = len(self._keys) + incoming - self._capacity
        if excess > 0:
            self.remove(list(islice(self._keys, excess)))

    def _claim_key(self, output_id: str) -> int:
        key = id_key(output_id)
        while key in self._ids:  # a prefix collision: probe to the next free key
            key = (key + 1) % _KEY_SPACE
        self._keys[output_id] = key
        self._ids[key] = output_id
        return key


def _check_capacity(capacity: int | None) -> int | None:
    if capacity is not None and capacity < 1:
        raise ValueError("capacity must be positive or None")
    return capacity


def _watermark(value: Any) -> Watermark | None:
    if value is None:
        return None
    at, output_id = value
    return datetime.fromisoformat(at), str(output_id)


def _batch(matches: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keys, distances and counts as 2-D arrays; usearch answers a single query with 1-D ones."""
    if isinstance(matches, BatchMatches):
        return matches.keys, matches.distances, matches.counts
    keys = np.asarray(matches.keys).reshape(1, -1)
    return keys, np.asarray(matches.distances).reshape(1, -1), np.array([keys.shape[1]])


def _rows(stored: Any, n: int) -> list[np.ndarray | None]:
    """usearch's ``get`` of several keys as one entry per key (None where a key is missing)."""
    if isinstance(stored, np.ndarray):
        return list(stored.reshape(n, -1))
    return list(stored)
