"""Put time-to-accuracy races run at the same time in separate processes into one report.

``time_to_accuracy.py`` races its contenders one after the other in one process. Two races
started together or overlapping (say ``--variant ...  --peers none`` in one process and ``--peers learn2learn
--peers-only`` in another, one thread each on a 2-core machine) share the machine's load
instead; this joins their ``curves.json`` into one ``curves.json``, ``curves.png`` and
``results.md``, each contender keeping its own command, start time and load, and copies each
contender's test report folder beside them.

    python benchmarks/combine_races.py RACE_A RACE_B --out docs/results/time_to_accuracy/both
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from time_to_accuracy import folder_name, markdown, plot_curves  # benchmarks/, beside this script


def combined(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """One curves.json document of races with the same config, thresholds and validation tasks.

    ``task.root`` is not compared: ``--quick`` races generate the same data in folders of their own.

    Raises:
        ValueError: the races differ in config, overrides, validation tasks or thresholds.
    """
    def settings(document: dict[str, Any]) -> dict[str, Any]:
        return {"config": document["config"], "val_tasks": document["val_tasks"],
                "overrides": [o for o in document["overrides"] if not o.startswith("task.root=")]}

    first = documents[0]
    for other in documents[1:]:
        for key, value in settings(first).items():
            if settings(other)[key] != value:
                raise ValueError(f"the races differ in {key}: {value!r} and {settings(other)[key]!r}")
    thresholds = {tuple(c["thresholds"]) for d in documents for c in d["contenders"]}
    if len(thresholds) > 1:
        raise ValueError(f"the races report different thresholds: {sorted(thresholds)}")
    contenders = [{**c, "command": d["command"]} for d in documents for c in d["contenders"]]
    return {**first, "command": " ; ".join(d["command"] for d in documents), "date": min(d["date"] for d in documents),
            "notes": [note for d in documents for note in d["notes"]]
            + [f"{len(documents)} races run in separate processes, started at the times and loads given per contender"],
            "contenders": contenders}


def copy_test_reports(races: list[Path], documents: list[dict[str, Any]], out: Path) -> None:
    """Copy each contender's test report folder (``RACE/<folder_name(label)>/``) into ``out``,
    over an earlier copy of the same name; ``documents`` are the races' ``curves.json``, in order.

    Raises:
        FileNotFoundError: a contender of ``races`` has no report folder.
        FileExistsError: two contenders have the same folder name.
    """
    sources = [race / folder_name(contender["label"]) for race, document in zip(races, documents)
               for contender in document["contenders"]]
    names = [source.name for source in sources]
    for source in sources:
        if not source.is_dir():
            raise FileNotFoundError(f"{source}: no test report for this contender")
        if names.count(source.name) > 1:
            raise FileExistsError(f"two contenders would share the report folder {source.name!r}")
    for source in sources:
        shutil.copytree(source, out / source.name, dirs_exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("races", nargs="+", type=Path, help="output folders of time_to_accuracy.py")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default=None, help="the figure's title (default: the config's name)")
    args = parser.parse_args(argv)
    try:
        documents = [json.loads((race / "curves.json").read_text()) for race in args.races]
        document = combined(documents)
        args.out.mkdir(parents=True, exist_ok=True)
        copy_test_reports(args.races, documents, args.out)
    except (OSError, ValueError, KeyError) as error:
        print(f"combine_races: error: {error}", file=sys.stderr)
        return 2
    (args.out / "curves.json").write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
    thresholds = [float(t) for t in document["contenders"][0]["thresholds"]]
    plot_curves(document["contenders"], thresholds, args.out / "curves.png",
                title=args.title or f"{document['config']}: validation accuracy, {document['val_tasks']} tasks")
    (args.out / "results.md").write_text(markdown(document))
    print(markdown(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
