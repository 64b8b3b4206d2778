"""The nearest-neighbour index on plain vectors: search, upserts, removal, the FIFO window, files."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from workers.index import IndexFormatError, NeighbourIndex, id_key

DIM = 32


def units(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def ids(n: int) -> list[str]:
    """Output-like ids: 32 hex digits."""
    return [hashlib.md5(str(i).encode()).hexdigest() for i in range(n)]


def exact_top(query: np.ndarray, data: np.ndarray, k: int) -> list[int]:
    return list(np.argsort(-(data @ query))[:k])


def test_search_returns_the_most_similar_outputs_best_first_with_cosine_similarity() -> None:
    data, names = units(200), ids(200)
    index = NeighbourIndex(DIM)
    index.add(names, data)
    query = units(1, seed=1)[0]
    [hits] = index.search(query, 5)
    assert [h[0] for h in hits] == [names[i] for i in exact_top(query, data, 5)]
    expected = sorted((data @ query).tolist(), reverse=True)[:5]
    assert [h[1] for h in hits] == pytest.approx(expected, abs=1e-5)
    assert len(index) == 200 and names[7] in index


def test_an_output_is_not_its_own_neighbour() -> None:
    data, names = units(50), ids(50)
    index = NeighbourIndex(DIM)
    index.add(names, data)
    results = index.search(data[:3], 4, exclude=names[:3])
    for own, hits in zip(names[:3], results, strict=True):
        assert len(hits) == 4 and own not in [h[0] for h in hits]
    [with_self] = index.search(data[0], 1)
    assert with_self[0][0] == names[0] and with_self[0][1] == pytest.approx(1.0, abs=1e-5)


def test_each_query_excludes_only_its_own_id() -> None:
    data, names = units(10), ids(10)
    index = NeighbourIndex(DIM)
    index.add(names, data)
    results = index.search(np.vstack([data[0], data[0]]), 1, exclude=[names[0], None])
    assert results[0][0][0] != names[0] and results[1][0][0] == names[0]


def test_an_empty_index_or_k_zero_finds_nothing() -> None:
    index = NeighbourIndex(DIM)
    assert index.search(units(2), 5) == [[], []]
    index.add(ids(3), units(3))
    assert index.search(units(2), 0) == [[], []]
    assert [len(h) for h in index.search(units(2), 10)] == [3, 3]


def test_readding_an_id_replaces_its_vector() -> None:
    data, names = units(20), ids(20)
    index = NeighbourIndex(DIM)
    index.add(names, data)
    moved = units(1, seed=9)
    index.add([names[0]], moved)
    assert len(index) == 20
    [hits] = index.search(moved, 1)
    assert hits[0][0] == names[0] and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    [old] = index.search(data[0], 1)
    assert old[0][0] != names[0]


def test_the_last_vector_wins_when_a_batch_repeats_an_id() -> None:
    data = units(2)
    index = NeighbourIndex(DIM)
    index.add(["a", "a"], data)
    assert len(index) == 1
    assert index.search(data[1], 1)[0][0][0] == "a"
    assert index.search(data[1], 1)[0][0][1] == pytest.approx(1.0, abs=1e-5)


def test_removed_outputs_are_never_found_again() -> None:
    data, names = units(30), ids(30)
    index = NeighbourIndex(DIM)
    index.add(names, data)
    assert index.remove([names[0], names[1], "never-added"]) == 2
    assert len(index) == 28 and names[0] not in index
    found = {h[0] for hits in index.search(data[:2], 28) for h in hits}
    assert not found & {names[0], names[1]}


def test_a_full_window_drops_the_oldest_outputs_first() -> None:
    data, names = units(12), ids(12)
    index = NeighbourIndex(DIM, capacity=5)
    index.add(names[:4], data[:4])
    index.add(names[4:7], data[4:7])
    assert index.ids == names[2:7]
    index.add(names[7:], data[7:])  # a batch larger than the window keeps its newest
    assert index.ids == names[7:]
    assert {h[0] for h in index.search(data[0], 10)[0]} == set(names[7:])
    index.capacity = 2
    assert index.ids == names[10:]


def test_a_changed_vector_becomes_newest_but_an_unchanged_one_keeps_its_place() -> None:
    data, names = units(4), ids(4)
    index = NeighbourIndex(DIM, capacity=3)
    index.add(names[:3], data[:3])
    index.add([names[0]], data[:1])  # the same vector again: nothing moves
    assert index.ids == names[:3]
    index.add([names[0]], units(1, seed=5))
    assert index.ids == [names[1], names[2], names[0]]
    index.add([names[3]], data[3:])
    assert index.ids == [names[2], names[0], names[3]]


def test_ids_whose_key_prefixes_collide_stay_distinct() -> None:
    a, b = "abcdef0123456780" + "0" * 16, "abcdef0123456781" + "1" * 16
    assert id_key(a) == id_key(b)
    data = units(2)
    index = NeighbourIndex(DIM)
    index.add([a, b], data)
    assert index.search(data[0], 1)[0][0][0] == a
    assert index.search(data[1], 1)[0][0][0] == b
    index.remove([a])
    assert index.search(data[0], 2)[0][0][0] == b


def test_a_saved_index_loads_with_its_ids_window_and_watermark(tmp_path: Path) -> None:
    data, names = units(100), ids(100)
    index = NeighbourIndex(DIM, capacity=80)
    index.add(names, data)
    index.remove([names[50]])
    index.watermark = (datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC), names[99])
    path = tmp_path / "recent.nbr"
    index.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["recent.nbr"]  # no temp file left behind

    loaded = NeighbourIndex.load(path, DIM)
    assert loaded.ids == index.ids and loaded.capacity == 80 and loaded.watermark == index.watermark
    queries = units(5, seed=3)
    assert loaded.search(queries, 5) == index.search(queries, 5)
    loaded.add(["new-1", "new-2"], units(2, seed=4))
    assert loaded.ids[0] == names[21] and loaded.ids[-1] == "new-2" and len(loaded) == 80


def test_an_empty_index_round_trips(tmp_path: Path) -> None:
    NeighbourIndex(DIM).save(tmp_path / "empty.nbr")
    loaded = NeighbourIndex.load(tmp_path / "empty.nbr", DIM)
    assert len(loaded) == 0 and loaded.watermark is None and loaded.search(units(1), 3) == [[]]


def test_a_file_of_another_dimension_or_a_damaged_file_is_refused(tmp_path: Path) -> None:
    index = NeighbourIndex(DIM)
    index.add(ids(10), units(10))
    path = tmp_path / "index.nbr"
    index.save(path)
    with pytest.raises(IndexFormatError):
        NeighbourIndex.load(path, DIM * 2)
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(IndexFormatError):
        NeighbourIndex.load(path, DIM)
    path.write_bytes(b"not an index")
    with pytest.raises(IndexFormatError):
        NeighbourIndex.load(path, DIM)


def test_vectors_of_the_wrong_dimension_are_rejected() -> None:
    index = NeighbourIndex(DIM)
    with pytest.raises(ValueError):
        index.add(["a"], units(1, dim=DIM + 1))
    with pytest.raises(ValueError):
        index.add(["a", "b"], units(1))
