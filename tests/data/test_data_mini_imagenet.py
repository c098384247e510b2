"""miniImageNet cache pickles: grouping by class, restricted unpickling, malformed content."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from mamlkit.data import DataError, load_mini_imagenet, load_mini_imagenet_splits


def image_data(n_images):
    """Image i is filled with the value i (so rows can be traced after regrouping)."""
    return np.broadcast_to(
        np.arange(n_images, dtype=np.uint8)[:, None, None, None], (n_images, 4, 4, 3)
    ).copy()


def write_cache(folder, split, content, protocol=pickle.DEFAULT_PROTOCOL):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"mini-imagenet-cache-{split}.pkl"
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_regroups_rows_by_sorted_class_name(tmp_path, protocol):
    class_dict = {"n02": [5, 0, 3], "n01": [np.int64(1), 4], "n03": np.array([2, 6])}
    write_cache(
        tmp_path, "train", {"image_data": image_data(7), "class_dict": class_dict}, protocol
    )

    data = load_mini_imagenet(tmp_path, "train")

    assert data.class_names == ("n01", "n02", "n03")
    assert data.class_sizes.tolist() == [2, 3, 2]
    assert data.images[:, 0, 0, 0].tolist() == [1, 4, 5, 0, 3, 2, 6]
    assert data.image_shape == (4, 4, 3)


def test_loads_all_three_splits(tmp_path):
    for split, n_classes in [("train", 4), ("val", 2), ("test", 3)]:
        rows = np.arange(n_classes * 2).reshape(n_classes, 2)
        class_dict = {f"{split}{c}": rows[c].tolist() for c in range(n_classes)}
        write_cache(
            tmp_path, split, {"image_data": image_data(n_classes * 2), "class_dict": class_dict}
        )
    splits = load_mini_imagenet_splits(tmp_path)
    assert {name: split.n_classes for name, split in splits.items()} == {
        "train": 4,
        "val": 2,
        "test": 3,
    }
    np.testing.assert_array_equal(splits["val"].by_class()[1, :, 0, 0, 0], [2, 3])


class RunsShellCommand:
    """Unpickling this calls os.system: what a malicious data file would do."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("make_payload", [RunsShellCommand, lambda _: CallsEval()])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, make_payload):
    marker = tmp_path / "pwned"
    payload = make_payload(f"touch {marker}")
    path = write_cache(tmp_path, "test", {"image_data": payload, "class_dict": {}})
    with pytest.raises(
        DataError,
        match=r"refusing to load .*cache-test\.pkl: it asks to call (posix\.system|builtins\.eval)",
    ):
        load_mini_imagenet(tmp_path, "test")
    assert not marker.exists()
    assert path.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([1, 2], "must hold a dict with keys 'image_data' and 'class_dict'"),
        ({"image_data": image_data(2)}, "must hold a dict with keys"),
        ({"image_data": np.zeros((2, 4, 4, 3)), "class_dict": {"a": [0]}}, "uint8 array"),
        ({"image_data": image_data(2), "class_dict": {}}, "non-empty dict"),
        ({"image_data": image_data(2), "class_dict": {3: [0]}}, "non-empty dict"),
        ({"image_data": image_data(2), "class_dict": {"a": []}}, r"class_dict\['a'\] must be"),
        ({"image_data": image_data(2), "class_dict": {"a": ["x"]}}, r"class_dict\['a'\] must be"),
        (
            {"image_data": image_data(2), "class_dict": {"a": [0, 2]}},
            "indexes rows 0..2, but image_data has 2 rows",
        ),
        (
            {"image_data": image_data(2), "class_dict": {"a": [0], "b": [0, 1]}},
            "listed more than once",
        ),
    ],
)
def test_malformed_content_is_named(tmp_path, content, message):
    write_cache(tmp_path, "val", content)
    with pytest.raises(DataError, match=message) as raised:
        load_mini_imagenet(tmp_path, "val")
    assert "mini-imagenet-cache-val.pkl" in str(raised.value)


def test_truncated_pickle_is_reported(tmp_path):
    path = write_cache(
        tmp_path, "train", {"image_data": image_data(3), "class_dict": {"a": [0, 1, 2]}}
    )
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=r"cannot unpickle .*may be truncated"):
        load_mini_imagenet(tmp_path, "train")


def test_missing_file_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match=r"mini-imagenet-cache-train\.pkl not found. Put"):
        load_mini_imagenet(tmp_path, "train")


def test_unknown_split_is_rejected(tmp_path):
    with pytest.raises(DataError, match="unknown miniImageNet split 'valid'"):
        load_mini_imagenet(tmp_path, "valid")
