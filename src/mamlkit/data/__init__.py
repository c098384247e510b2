"""Datasets on disk: Omniglot, miniImageNet-style pickles, image folders, and downloads.

Every labelled loader returns a `ClassImages` (uint8 images grouped by class), every
unlabelled one an `ImagePool` (images only), and raises
`DataError` with a message that names the file and says how to fix it. This package
imports nothing else of mamlkit.
"""

from mamlkit.data.augment import ROTATION_DEGREES as ROTATION_DEGREES
from mamlkit.data.augment import with_rotations as with_rotations
from mamlkit.data.cache import load_class_images as load_class_images
from mamlkit.data.cache import save_class_images as save_class_images
from mamlkit.data.class_images import ClassImages as ClassImages
from mamlkit.data.datasets import DATASETS as DATASETS
from mamlkit.data.datasets import Dataset as Dataset
from mamlkit.data.download import download as download
from mamlkit.data.download import file_digest as file_digest
from mamlkit.data.errors import DataError as DataError
from mamlkit.data.image_folder import IMAGE_SUFFIXES as IMAGE_SUFFIXES
from mamlkit.data.image_folder import UnlabelledImages as UnlabelledImages
from mamlkit.data.image_folder import load_image_folder as load_image_folder
from mamlkit.data.image_folder import load_unlabelled_folder as load_unlabelled_folder
from mamlkit.data.image_pool import ImagePool as ImagePool
from mamlkit.data.image_pool import drop_labels as drop_labels
from mamlkit.data.image_pool import load_image_tree as load_image_tree
from mamlkit.data.image_pool import pool_with_rotations as pool_with_rotations
from mamlkit.data.mini_imagenet import MINI_IMAGENET_SPLITS as MINI_IMAGENET_SPLITS
from mamlkit.data.mini_imagenet import load_mini_imagenet as load_mini_imagenet
from mamlkit.data.mini_imagenet import load_mini_imagenet_splits as load_mini_imagenet_splits
from mamlkit.data.omniglot import OMNIGLOT_BASE_URL as OMNIGLOT_BASE_URL
from mamlkit.data.omniglot import OMNIGLOT_CACHE_NAME as OMNIGLOT_CACHE_NAME
from mamlkit.data.omniglot import build_omniglot_cache as build_omniglot_cache
from mamlkit.data.omniglot import download_omniglot as download_omniglot
from mamlkit.data.omniglot import load_omniglot as load_omniglot
from mamlkit.data.omniglot import omniglot_splits as omniglot_splits

__all__ = [
    "DATASETS",
    "IMAGE_SUFFIXES",
    "MINI_IMAGENET_SPLITS",
    "OMNIGLOT_BASE_URL",
    "OMNIGLOT_CACHE_NAME",
    "ROTATION_DEGREES",
    "ClassImages",
    "DataError",
    "Dataset",
    "ImagePool",
    "UnlabelledImages",
    "build_omniglot_cache",
    "download",
    "download_omniglot",
    "drop_labels",
    "file_digest",
    "load_class_images",
    "load_image_folder",
    "load_image_tree",
    "load_mini_imagenet",
    "load_mini_imagenet_splits",
    "load_omniglot",
    "load_unlabelled_folder",
    "omniglot_splits",
    "pool_with_rotations",
    "save_class_images",
    "with_rotations",
]
