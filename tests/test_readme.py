"""The README's examples run as written.

The Python example runs with fewer iterations. Every line of the README's bash blocks runs
as written, in bash, with the bin folder of the environment running the tests first on
PATH (as after `. .venv/bin/activate`), in a fresh folder that mirrors the checkout: its
files are linked there, `runs/` and `data/` start empty. Each paragraph of a block is one
session: its lines run in order in one folder, as a user types them.

What a user brings is put in the folder first: the Omniglot zips (linked from
../shared/data/omniglot; `mamlkit data download` then finds them, checks them and builds
the cache, with no network; without them the session is skipped) and their own images for
`mamlkit adapt`. Commands that run for hours (training, and the 600-task Omniglot
evaluation, minutes on two CPU cores) are started as written and stopped with Ctrl-C, a
SIGINT to the process group as a terminal sends it, a second after their progress bar
appears (the set-up before it is what can fail): a training run must then say where it
saved its progress and leave a checkpoint that loads, and the session goes on with what
it left. `make test` is the suite running this test: it is only
dry-run (`make -n`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from image_fixtures import image_folder, save_image
from mamlkit.run.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
OMNIGLOT_ZIPS = [REPO.parent / "shared" / "data" / "omniglot" / name
                 for name in ("images_background.zip", "images_evaluation.zip")]
MADE_BY_COMMANDS = ("runs", "data")  # not linked from the checkout: each session starts without them
INTERRUPTED = ("mamlkit train", "make demo", "mamlkit eval runs/omniglot")
RUNS_AFTER_PROGRESS_S = 1
LIMIT_S = 300  # for a command to finish, or to show its progress bar
SAVED = re.compile(r"progress saved in (\S+)\. Continue with: mamlkit train --resume \S+")
PYTHON_PROBLEM = re.compile(r"Traceback|\w+Warning: ")


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "the README has no python example"
    source = blocks[0].replace("range(1000)", "range(3)")
    namespace: dict = {}
    exec(compile(source, str(README), "exec"), namespace)
    assert namespace["prediction"].shape == (100, 1)


def bash_sessions() -> list[list[str]]:
    """The command lines of each paragraph of each bash block of the README, in order."""
    sessions = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL):
        for paragraph in block.replace("\\\n", "").split("\n\n"):
            lines = [line.strip() for line in paragraph.splitlines()]
            sessions.append([line for line in lines if line and not line.startswith("#")])
    return [session for session in sessions if session]


@pytest.mark.slow
@pytest.mark.parametrize("session", bash_sessions(), ids=lambda session: session[0].split("#")[0].strip())
def test_readme_commands_run_as_written(session, tmp_path):
    folder = _checkout_with_user_inputs(tmp_path / "checkout", session)
    # a user's shell: without the variables of a make that may be running this suite (`make test`)
    user_env = {name: value for name, value in os.environ.items() if name not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env = {**user_env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for number, line in enumerate(session):
        command = "make -n test" if line.split("#")[0].split() == ["make", "test"] else line
        interrupt = command.startswith(INTERRUPTED)
        status, err = _run(command, folder, env, tmp_path / f"{number}", interrupt=interrupt)
        where = f"`{line}` (exit status {status}):\n{err[-3000:]}"
        assert not PYTHON_PROBLEM.search(err), where
        if not interrupt:
            assert status == 0, where
            continue
        assert status == 128 + signal.SIGINT, where
        if command.startswith("mamlkit eval"):
            assert "mamlkit: interrupted" in err, where
            continue
        saved = SAVED.search(err)
        assert saved, where
        assert load_checkpoint(folder / saved.group(1))["iteration"] >= 1, where
        if command.startswith("make "):  # the rest of the target's recipe, on what the training left
            recipe = _dry_run(command, folder, env)
            after_training = recipe[1 + next(i for i, step in enumerate(recipe) if "mamlkit train" in step):]
            for step in after_training:
                status, err = _run(step, folder, env, tmp_path / f"{number}.recipe", interrupt=False)
                assert status == 0 and not PYTHON_PROBLEM.search(err), f"`{step}` of `{line}`:\n{err[-3000:]}"


def _checkout_with_user_inputs(folder: Path, session: list[str]) -> Path:
    """``folder`` with every entry of the checkout linked in but ``runs/`` and ``data/``, and
    what a user brings to ``session``'s commands; skips what cannot run here."""
    folder.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in MADE_BY_COMMANDS:
            (folder / entry.name).symlink_to(entry)
    commands = "\n".join(session)
    if any(line.startswith("make ") for line in session):
        _require_make(folder)
    if "omniglot" in commands:
        _provide_omniglot_zips(folder / "data" / "omniglot")
    _provide_user_images(folder, commands)
    return folder


def _run(command: str, folder: Path, env: dict[str, str], logs: Path, *, interrupt: bool) -> tuple[int, str]:
    """Run ``command`` in bash in ``folder``; with ``interrupt``, send its process group SIGINT
    ``RUNS_AFTER_PROGRESS_S`` after it shows a progress bar. Returns its exit status as a
    shell reports it (128 + N when killed by signal N) and its stderr."""
    err_path = logs.with_name(logs.name + ".err")
    with open(logs.with_name(logs.name + ".out"), "w") as out, open(err_path, "w") as err:
        process = subprocess.Popen(["bash", "-c", command], cwd=folder, env=env, stdout=out, stderr=err,
                                   start_new_session=True, preexec_fn=_default_ctrl_c)
        try:
            if interrupt:
                deadline = time.monotonic() + LIMIT_S
                while process.poll() is None and "%|" not in err_path.read_text(errors="replace"):
                    if time.monotonic() > deadline:
                        pytest.fail(f"`{command}` showed no progress bar in {LIMIT_S} s")
                    time.sleep(0.2)
                time.sleep(RUNS_AFTER_PROGRESS_S)
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGINT)
            returncode = process.wait(timeout=LIMIT_S)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return (128 - returncode if returncode < 0 else returncode), err_path.read_text(errors="replace")


def _default_ctrl_c() -> None:
    """In the child, before exec: SIGINT's default action, as in a user's terminal. A suite run as
    a background job of a non-interactive shell inherits SIGINT ignored, and so would ``make``
    (which then outlives its interrupted recipe) and every command that installs no handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _dry_run(command: str, folder: Path, env: dict[str, str]) -> list[str]:
    """The commands a ``make`` command line would run, from ``make -n``."""
    target = command.split("#")[0].split()[1:]
    result = subprocess.run(["make", "-n", *target], cwd=folder, env=env, capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def _require_make(folder: Path) -> None:
    """Skip unless make is installed and the checkout's .venv is the one make keeps up to date
    (otherwise ``make`` would try to install packages)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    if subprocess.run(["make", "-q", ".venv/.installed"], cwd=folder, capture_output=True).returncode != 0:
        pytest.skip("the checkout's .venv was not made (or is out of date) by make")


def _provide_omniglot_zips(root: Path) -> None:
    """Link the real Omniglot zips into ``root``, as a user who has them copies them there."""
    missing = [str(path) for path in OMNIGLOT_ZIPS if not path.is_file()]
    if missing:
        pytest.skip(f"the real Omniglot zips are absent ({', '.join(missing)}), and there is no network")
    root.mkdir(parents=True)
    for path in OMNIGLOT_ZIPS:
        (root / path.name).symlink_to(path)


def _provide_user_images(folder: Path, commands: str) -> None:
    """The user's own 28x28 grey images that ``mamlkit adapt`` takes: one image for each of
    the 5 classes of a 5-way run (``my_classes/<class>/``), and 3 images to classify."""
    if "my_classes/" in commands:
        image_folder(folder / "my_classes", [f"class_{c}" for c in range(5)], per_class=1, size=(28, 28))
    if "my_images/" in commands:
        for j in range(3):
            save_image(folder / "my_images" / f"{j}.png", seed=j, size=(28, 28))
