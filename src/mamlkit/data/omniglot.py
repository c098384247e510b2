"""Omniglot (Lake et al. 2015): download, one-time 28x28 cache, and the MAML splits.

The data root holds the two official zips and, once built, ``omniglot_28x28.npz``:
every drawing preprocessed as described in `read_omniglot_zips` (BOX resize, ink = high
values), 1623 classes x 20 drawings as one uint8 array. Loading the cache reads ~25 MB
and takes a fraction of a second; building it decodes 32,460 PNGs once (seconds).

References:
    Lake, Salakhutdinov & Tenenbaum (2015), "Human-level concept learning through
    probabilistic program induction", Science 350(6266).
    Finn, Abbeel & Levine (2017), "Model-Agnostic Meta-Learning", Sec. 5.2.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import numpy as np

from mamlkit.data.cache import load_class_images, save_class_images
from mamlkit.data.class_images import ClassImages
from mamlkit.data.download import download, file_digest
from mamlkit.data.errors import DataError
from mamlkit.data.omniglot_zips import (
    OMNIGLOT_IMAGE_SIZE,
    OMNIGLOT_RESAMPLE,
    OMNIGLOT_SUBSETS,
    read_omniglot_zips,
)

__all__ = [
    "OMNIGLOT_BASE_URL",
    "OMNIGLOT_CACHE_NAME",
    "OMNIGLOT_ZIP_DIGESTS",
    "build_omniglot_cache",
    "download_omniglot",
    "load_omniglot",
    "omniglot_splits",
]

OMNIGLOT_BASE_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python"
OMNIGLOT_CACHE_NAME = "omniglot_28x28.npz"
# Accepted digests per zip: the official release (md5) and the rebuilt zips of identical
# PNGs described in shared/data/omniglot/PROVENANCE.md (sha256 and md5).
OMNIGLOT_ZIP_DIGESTS = {
    "images_background.zip": {
        "md5": ("68d2efa1b9178cc56df9314c21c6e718", "cf8cff36dcb82434eeaa7d762b0e3c08"),
        "sha256": ("512b4a2b61ff1c7d09db743d05d12aedc2a5f38192fa40d63fd91f0fc1504c88",),
    },
    "images_evaluation.zip": {
        "md5": ("6b91aef0f799c5bb55b94e3f2daec811", "77f3256ef5a46dd8a2d38d9e7973c9ae"),
        "sha256": ("98893e98e6c7ac15783039de81205741dffe6bb4ac1e1f0c5568f6889e7e523c",),
    },
}
_ZIP_NAMES = tuple(f"images_{subset}.zip" for subset in OMNIGLOT_SUBSETS)
_CACHE_FORMAT = 1


def download_omniglot(
    root: str | os.PathLike, *, base_url: str = OMNIGLOT_BASE_URL, progress: bool = True
) -> Path:
    """Download both Omniglot zips into `root`, check them, and build the cache.

    Zips already in `root` with an accepted digest are not downloaded again; an
    interrupted download resumes. An existing valid cache is kept.

    Args:
        root: the data folder (created if missing).
        base_url: the URL folder holding ``images_background.zip`` and
            ``images_evaluation.zip``.
        progress: show progress bars.

    Returns:
        The path of the cache, ``root/omniglot_28x28.npz``.

    Raises:
        DataError: a download fails or a zip fails its checksum (see `download`).
    """
    root = Path(root)
    for name in _ZIP_NAMES:
        url = f"{base_url.rstrip('/')}/{name}"
        download(url, root / name, **OMNIGLOT_ZIP_DIGESTS[name], progress=progress)
    cache = root / OMNIGLOT_CACHE_NAME
    if _read_cache(cache) is None:
        build_omniglot_cache(root, cache, progress=progress)
    return cache


def build_omniglot_cache(
    zips_dir: str | os.PathLike, cache: str | os.PathLike, *, progress: bool = True
) -> Path:
    """Preprocess every drawing of the two zips in `zips_dir` into the cache file `cache`.

    The zips are trusted as they are (`download_omniglot` checks digests); their layout is
    checked. The cache is written under a temporary name and renamed when complete.

    Returns:
        `cache` as a Path.

    Raises:
        DataError: a zip is missing, unreadable or not laid out like Omniglot.
    """
    zips_dir = Path(zips_dir)
    missing = [name for name in _ZIP_NAMES if not (zips_dir / name).is_file()]
    if missing:
        raise DataError(f"{' and '.join(missing)} not found in {zips_dir}")
    data = read_omniglot_zips(zips_dir, progress=progress)
    metadata = {
        "format": _CACHE_FORMAT,
        "image_size": OMNIGLOT_IMAGE_SIZE,
        "resample": OMNIGLOT_RESAMPLE.name,
        "ink": "high: pixel = round(255 * ink fraction), background 0",
        "class_order": "background then evaluation; alphabet; character number",
        "sources": {name: file_digest(zips_dir / name) for name in _ZIP_NAMES},
    }
    return save_class_images(cache, data, metadata)


def load_omniglot(
    root: str | os.PathLike,
    *,
    download: bool = False,
    zips_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> ClassImages:
    """All 1623 Omniglot characters, 28x28, from the cache in `root` (built when missing).

    Order of attempts: read ``root/omniglot_28x28.npz``; else build it from the two zips
    in `zips_dir` (default `root`); else, with `download=True`, download them into
    `root` first.

    Args:
        root: the data folder holding the cache.
        download: download the zips when neither cache nor zips are there.
        zips_dir: where to look for the zips, when not in `root`.
        progress: show progress bars while downloading or building.

    Returns:
        One class per character, named ``"<Alphabet>/characterNN"``, background
        characters first (964, then 659 evaluation), 20 drawings each.

    Shapes:
        images (32460, 28, 28, 1) uint8, ink high (see `read_omniglot_zips`).

    Raises:
        DataError: no cache and no zips (saying which command fetches them), or a zip is
            unreadable.

    Example:
        >>> data = load_omniglot("data/omniglot", download=True)  # doctest: +SKIP
        >>> data.images.shape  # doctest: +SKIP
        (32460, 28, 28, 1)
    """
    root = Path(root)
    cache = root / OMNIGLOT_CACHE_NAME
    data = _read_cache(cache)
    if data is not None:
        return data
    zips_dir = Path(zips_dir) if zips_dir is not None else root
    if all((zips_dir / name).is_file() for name in _ZIP_NAMES):
        root.mkdir(parents=True, exist_ok=True)
        build_omniglot_cache(zips_dir, cache, progress=progress)
    elif download:
        download_omniglot(root, progress=progress)
    else:
        state = "is unreadable or outdated" if cache.exists() else "does not exist"
        raise DataError(
            f"no Omniglot data: {cache} {state}, and {zips_dir} lacks "
            f"{' or '.join(_ZIP_NAMES)}. Download them with "
            f"`mamlkit data download omniglot --root {shlex.quote(str(root))}`, or copy the two zips there."
        )
    data, _ = load_class_images(cache)
    return data


def omniglot_splits(
    data: ClassImages, *, n_train: int = 1100, n_val: int = 100, seed: int | None = None
) -> dict[str, ClassImages]:
    """Split characters into meta-train, meta-validation and meta-test classes.

    Finn et al. (2017) and Vinyals et al. (2016) use 1200 characters for meta-training
    (here 1100 train + 100 validation) and the remaining 423 for testing. With
    `seed=None` the split follows the order of `data` (for `load_omniglot`: background,
    then evaluation; alphabet; character): the first `n_train`, the next `n_val`, the rest
    to test. On Omniglot that puts the 964 background characters and the first 136
    evaluation characters in train, and only evaluation characters in val and test; an
    alphabet may straddle two splits, a character never does. With an integer `seed` the
    classes are first permuted by `np.random.default_rng(seed)`, each split then in
    ascending class order.

    Apply `with_rotations` to each split afterwards, never before.

    Args:
        data: all characters, e.g. from `load_omniglot`.
        n_train: classes for meta-training.
        n_val: classes for meta-validation.
        seed: None for the ordered split, or the seed of the permutation.

    Returns:
        {"train": ..., "val": ..., "test": ...}; 1100 / 100 / 423 classes on Omniglot.

    Raises:
        DataError: when the sizes leave no class for a split.
    """
    if n_train < 1 or n_val < 1 or n_train + n_val >= data.n_classes:
        raise DataError(
            f"cannot split {data.n_classes} classes into n_train={n_train}, n_val={n_val} "
            "and a non-empty test set"
        )
    order = np.arange(data.n_classes)
    if seed is not None:
        order = np.random.default_rng(seed).permutation(data.n_classes)
    parts = np.split(order, [n_train, n_train + n_val])
    indices = parts if seed is None else [np.sort(part) for part in parts]
    return {
        name: data.subset(part)
        for name, part in zip(("train", "val", "test"), indices, strict=True)
    }


def _read_cache(cache: Path) -> ClassImages | None:
    """The cached images, or None when the cache is absent, unreadable or outdated."""
    if not cache.is_file():
        return None
    try:
        data, metadata = load_class_images(cache)
    except DataError:
        return None
    return data if metadata.get("format") == _CACHE_FORMAT else None
