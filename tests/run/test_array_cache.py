"""The run folder's array cache: computed once per key, read back after, recomputed when the
key changes or the file is damaged."""

from __future__ import annotations

import numpy as np

from mamlkit.run.array_cache import cached_arrays


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, np.ndarray]:
        self.calls += 1
        return {"values": np.arange(4) * self.calls}


def test_the_same_key_reads_the_arrays_another_key_recomputes_them(tmp_path):
    compute = Counting()
    first = cached_arrays(tmp_path / "cache", "thing", {"k": 1, "s": [1, 2]}, compute)
    again = cached_arrays(tmp_path / "cache", "thing", {"s": [1, 2], "k": 1}, compute)
    assert compute.calls == 1
    np.testing.assert_array_equal(again["values"], first["values"])
    other = cached_arrays(tmp_path / "cache", "thing", {"k": 2, "s": [1, 2]}, compute)
    assert compute.calls == 2 and other["values"].tolist() == [0, 2, 4, 6]
    assert len(list((tmp_path / "cache").glob("thing-*.npz"))) == 2
    assert not list((tmp_path / "cache").glob(".*"))  # no temporary file left


def test_a_damaged_file_or_one_of_another_key_is_recomputed(tmp_path):
    compute = Counting()
    cached_arrays(tmp_path, "thing", {"k": 1}, compute)
    (path,) = tmp_path.glob("thing-*.npz")
    path.write_bytes(path.read_bytes()[:50])
    assert cached_arrays(tmp_path, "thing", {"k": 1}, compute)["values"].tolist() == [0, 2, 4, 6]
    np.savez(path, values=np.zeros(1), __key__=np.array('{"k": 9}'))  # as if two keys' hashes collided
    assert cached_arrays(tmp_path, "thing", {"k": 1}, compute)["values"].tolist() == [0, 3, 6, 9]
    assert compute.calls == 3
