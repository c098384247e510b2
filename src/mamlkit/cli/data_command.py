"""``mamlkit data download omniglot --root DIR``: fetch, verify and preprocess a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from mamlkit.data import OMNIGLOT_BASE_URL, DataError, download_omniglot, load_omniglot


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("data", help="download datasets", description="Download and prepare datasets.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    download = actions.add_parser(
        "download", help="download a dataset, check it, and build its cache",
        description="Download the official Omniglot zips over HTTP(S) (resuming a partial download), check "
                    "their checksums, and build the 28x28 cache that training reads. Files already there and "
                    "valid are kept; nothing half-written is left behind.")
    download.add_argument("dataset", choices=("omniglot",), help="the dataset (miniImageNet cannot be "
                          "redistributed: put its cache pickles in a folder and set task.root)")
    download.add_argument("--root", type=Path, required=True, metavar="DIR", help="the data folder, e.g. data/omniglot")
    download.add_argument("--base-url", default=OMNIGLOT_BASE_URL, metavar="URL",
                          help=f"the folder URL holding the two zips (default: {OMNIGLOT_BASE_URL})")
    download.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    download.set_defaults(run=run_download)


def run_download(args: argparse.Namespace) -> int:
    if args.root.exists() and not args.root.is_dir():
        raise DataError(f"--root {args.root} is a file; give the folder to download into")
    cache = download_omniglot(args.root, base_url=args.base_url, progress=args.progress)
    data = load_omniglot(args.root, progress=False)
    print(f"Omniglot ready in {args.root}: {data.n_classes} characters, {data.n_images} images of "
          f"{data.image_shape[0]}x{data.image_shape[1]} in {cache.name}. Train with: "
          f"mamlkit train omniglot_5w1s task.root={args.root}")
    return 0
