"""Omniglot on small fake zips in the official layout: build, cache, download, splits."""

from __future__ import annotations

import functools
import hashlib
import zipfile

import numpy as np
import pytest

from mamlkit.data import (
    OMNIGLOT_CACHE_NAME,
    ClassImages,
    DataError,
    build_omniglot_cache,
    download_omniglot,
    load_omniglot,
    omniglot_splits,
    with_rotations,
)
from mamlkit.data import omniglot as omniglot_module


def test_build_reads_official_layout(fake_omniglot, tmp_path):
    data = load_omniglot(tmp_path / "root", zips_dir=fake_omniglot.zips_dir, progress=False)

    names = fake_omniglot.class_names
    assert data.class_names == tuple(names)
    assert names.index("Zulu/character10") > names.index("Zulu/character02")
    assert data.class_names[:2] == ("Aurek/character01", "Aurek/character02")  # background first
    assert data.class_names[-1] == "Tengwar/character03"
    n_drawings = fake_omniglot.n_drawings
    assert data.images.shape == (len(names) * n_drawings, 28, 28, 1)
    assert data.class_sizes.tolist() == [n_drawings] * len(names)


def test_pixels_hold_ink_fraction_with_background_zero(fake_omniglot, tmp_path):
    data = load_omniglot(tmp_path, zips_dir=fake_omniglot.zips_dir, progress=False)
    grid = data.by_class()  # (classes, drawings, 28, 28, 1)
    for class_index in range(data.n_classes):
        for drawing in range(fake_omniglot.n_drawings):
            image = grid[class_index, drawing]
            assert image[-1, -1, 0] == 0  # the corner is background
            assert image.max() == 255  # the box interior is full ink
            # BOX resize keeps the ink mass: mean pixel / 255 is the ink fraction
            source = np.asarray(fake_omniglot.drawing(class_index, drawing + 1), dtype=float)
            assert image.mean() / 255 == pytest.approx(1.0 - source.mean(), abs=0.005)


def test_second_load_reads_the_cache(fake_omniglot, tmp_path):
    zips = fake_omniglot.zips_dir
    root = tmp_path / "root"
    first = load_omniglot(root, zips_dir=zips, progress=False)
    assert sorted(path.name for path in root.iterdir()) == [OMNIGLOT_CACHE_NAME]
    for path in zips.iterdir():
        path.unlink()  # the cache alone must suffice now
    second = load_omniglot(root, progress=False)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.class_sizes, second.class_sizes)
    assert first.class_names == second.class_names


def test_zips_in_root_are_found(fake_omniglot):
    zips = fake_omniglot.zips_dir
    assert load_omniglot(zips, progress=False).class_names == tuple(fake_omniglot.class_names)
    assert (zips / OMNIGLOT_CACHE_NAME).is_file()


def test_missing_data_says_the_exact_command_to_run(tmp_path):
    root = tmp_path / "my data"
    with pytest.raises(DataError) as raised:
        load_omniglot(root, progress=False)
    message = str(raised.value)
    assert f"`mamlkit data download omniglot --root '{root}'`" in message
    assert "download=True" not in message  # no command-line form (issue 17 item 8)


def test_unreadable_cache_is_rebuilt_from_zips(fake_omniglot):
    zips = fake_omniglot.zips_dir
    (zips / OMNIGLOT_CACHE_NAME).write_bytes(b"garbage")
    assert load_omniglot(zips, progress=False).class_names == tuple(fake_omniglot.class_names)


def test_unreadable_cache_without_zips_is_reported(tmp_path):
    (tmp_path / OMNIGLOT_CACHE_NAME).write_bytes(b"garbage")
    with pytest.raises(DataError, match="is unreadable or outdated"):
        load_omniglot(tmp_path, progress=False)


def test_a_file_that_is_not_a_zip_is_named(fake_omniglot, tmp_path):
    zips = fake_omniglot.zips_dir
    (zips / "images_evaluation.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"cannot read .*images_evaluation\.zip"):
        build_omniglot_cache(zips, tmp_path / "cache.npz", progress=False)
    assert not (tmp_path / "cache.npz").exists()


@pytest.mark.parametrize(
    ("entry", "content", "message"),
    [
        ("images_background/Zulu/0001_01.png", lambda fake: fake.png(0, 1), "not laid out as"),
        (
            "images_background/Zulu/character01/0001_09.png",
            lambda fake: b"?",
            "not a readable image",
        ),
    ],
    ids=["layout", "corrupt-png"],
)
def test_bad_entries_are_named(fake_omniglot, tmp_path, entry, content, message):
    zips = fake_omniglot.zips_dir
    with zipfile.ZipFile(zips / "images_background.zip", "a") as archive:
        archive.writestr(entry, content(fake_omniglot))
    with pytest.raises(DataError, match=message) as raised:
        build_omniglot_cache(zips, tmp_path / "cache.npz", progress=False)
    assert entry in str(raised.value)
    assert [path.name for path in tmp_path.iterdir()] == ["zips"]  # no cache, no temp file


def test_missing_zip_is_named(fake_omniglot, tmp_path):
    zips = fake_omniglot.zips_dir
    (zips / "images_background.zip").unlink()
    with pytest.raises(DataError, match=r"images_background\.zip not found"):
        build_omniglot_cache(zips, tmp_path / "cache.npz", progress=False)


@pytest.fixture
def served_fake_omniglot(fake_omniglot, file_server, monkeypatch):
    """The fake zips behind the loopback server, accepted by their sha256."""
    zips = fake_omniglot.zips_dir
    digests = {}
    for path in zips.iterdir():
        (file_server.root / path.name).write_bytes(path.read_bytes())
        digests[path.name] = {"sha256": (hashlib.sha256(path.read_bytes()).hexdigest(),)}
    monkeypatch.setattr(omniglot_module, "OMNIGLOT_ZIP_DIGESTS", digests)
    return file_server, fake_omniglot.class_names


def test_download_omniglot_fetches_checks_and_caches(served_fake_omniglot, tmp_path):
    server, expected_names = served_fake_omniglot
    root = tmp_path / "root"
    cache = download_omniglot(root, base_url=server.base_url + "/", progress=False)
    assert cache == root / OMNIGLOT_CACHE_NAME
    assert sorted(path.name for path in root.iterdir()) == [
        "images_background.zip",
        "images_evaluation.zip",
        OMNIGLOT_CACHE_NAME,
    ]
    assert load_omniglot(root).class_names == tuple(expected_names)

    download_omniglot(root, base_url=server.base_url, progress=False)
    assert len(server.requests) == 2  # nothing fetched again


def test_load_omniglot_downloads_when_asked(served_fake_omniglot, tmp_path, monkeypatch):
    server, expected_names = served_fake_omniglot
    monkeypatch.setattr(
        omniglot_module,
        "download_omniglot",
        functools.partial(download_omniglot, base_url=server.base_url),
    )
    data = load_omniglot(tmp_path, download=True, progress=False)
    assert data.class_names == tuple(expected_names)


def test_download_omniglot_rejects_unknown_zips(fake_omniglot, file_server, tmp_path):
    zips = fake_omniglot.zips_dir
    for path in zips.iterdir():
        (file_server.root / path.name).write_bytes(path.read_bytes())
    root = tmp_path / "root"
    with pytest.raises(DataError, match=r"images_background\.zip downloaded from .* is corrupt"):
        download_omniglot(root, base_url=file_server.base_url, progress=False)
    assert list(root.iterdir()) == []


def numbered_classes(n_classes: int) -> ClassImages:
    """Class c holds 2 one-pixel images of value c % 256."""
    images = np.repeat(np.arange(n_classes) % 256, 2).astype(np.uint8).reshape(-1, 1, 1, 1)
    return ClassImages(images, np.full(n_classes, 2), tuple(f"c{c}" for c in range(n_classes)))


def class_ids(data: ClassImages) -> list[int]:
    return [int(name[1:]) for name in data.class_names]


def test_ordered_split_takes_consecutive_classes_without_copying():
    data = numbered_classes(20)
    splits = omniglot_splits(data, n_train=11, n_val=3)
    assert class_ids(splits["train"]) == list(range(11))
    assert class_ids(splits["val"]) == [11, 12, 13]
    assert class_ids(splits["test"]) == list(range(14, 20))
    assert splits["test"].images[:, 0, 0, 0].tolist() == [c for c in range(14, 20) for _ in "ab"]
    assert all(np.shares_memory(split.images, data.images) for split in splits.values())


def test_default_split_sizes_are_the_papers():
    splits = omniglot_splits(numbered_classes(1623))
    assert {name: split.n_classes for name, split in splits.items()} == {
        "train": 1100,
        "val": 100,
        "test": 423,
    }


def test_seeded_split_is_a_fixed_partition():
    data = numbered_classes(30)
    first = omniglot_splits(data, n_train=20, n_val=4, seed=7)
    again = omniglot_splits(data, n_train=20, n_val=4, seed=7)
    other = omniglot_splits(data, n_train=20, n_val=4, seed=8)
    ids = {name: class_ids(split) for name, split in first.items()}
    assert ids == {name: class_ids(split) for name, split in again.items()}
    assert ids != {name: class_ids(split) for name, split in other.items()}
    assert sorted(ids["train"] + ids["val"] + ids["test"]) == list(range(30))
    assert ids["train"] != list(range(20))
    for name, split in first.items():
        np.testing.assert_array_equal(split.images[::2, 0, 0, 0], ids[name])


@pytest.mark.parametrize(("n_train", "n_val"), [(0, 2), (5, 0), (8, 2), (9, 2)])
def test_split_sizes_must_leave_every_split_non_empty(n_train, n_val):
    with pytest.raises(DataError, match="cannot split 10 classes"):
        omniglot_splits(numbered_classes(10), n_train=n_train, n_val=n_val)


def test_rotating_after_splitting_keeps_test_characters_out_of_training():
    splits = omniglot_splits(numbered_classes(12), n_train=8, n_val=2)
    train = with_rotations(splits["train"])
    test = with_rotations(splits["test"])
    assert (train.n_classes, test.n_classes) == (32, 8)
    train_characters = {name.split("/")[0] for name in train.class_names}
    test_characters = {name.split("/")[0] for name in test.class_names}
    assert train_characters.isdisjoint(test_characters)
