"""Meta-learned weights for use without mamlkit: a ``safetensors`` file of tensors, and a JSON
of the inner-loop settings that adapt them as ``mamlkit eval`` does (docs/export.md).

Tensor names: ``model.<name>`` for each entry of the model's ``state_dict()``; the
learner's own tensors under their ``MAML.state_dict()`` names: ``inner_lr.<parameter>``
(Meta-SGD, shaped like the parameter), ``lslr.<parameter>`` (MAML++ LSLR, one per inner
step), ``bnwb.<layer>.weight|bias`` and ``bnrs.<layer>.running_mean|running_var`` (MAML++,
one row per parameter state: before the first step and after each).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor

import mamlkit
from mamlkit.algorithms import MAML
from mamlkit.run.atomic import write_atomically
from mamlkit.training.config import Config, config_to_data

EXPORT_FORMAT = "mamlkit-export-1"
MODEL_PREFIX = "model."
EXTRA = "pip install 'mamlkit[export]'"


class ExportError(ValueError):
    """Weights that cannot be exported: the ``export`` extra is missing, the output exists
    (without ``overwrite``), is not a ``.safetensors`` file, or cannot be written."""


def exported_tensors(learner: MAML) -> dict[str, Tensor]:
    """The tensors to export, by their documented names (see the module docstring), on the CPU."""
    tensors = {f"{MODEL_PREFIX}{name}": tensor for name, tensor in learner.model.state_dict().items()}
    tensors.update(learner.state_dict())
    return {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}


def exported_settings(config: Config, learner: MAML, *, source: Mapping[str, Any],
                      preprocessing: Mapping[str, Any] | None) -> dict[str, Any]:
    """What adapting the exported tensors as ``mamlkit eval`` does takes, as plain JSON data.

    Args:
        config: the run's config, with the eval settings to export (``eval.steps``, ``eval.inner_lr``).
        learner: the learner holding the weights (its inner-loop spec, BatchNorm mode, step sizes).
        source: where the weights come from (run folder, checkpoint), kept as given.
        preprocessing: the run's ``ImagePreprocessing.to_data()``; None for tasks of vectors.

    Returns:
        The fields docs/export.md lists: the network (``model``, ``input_shape``,
        ``n_outputs``), the task (``loss``, ``n_way``), and the inner loop at test time
        (``adapts``, ``steps``, ``inner_lr``, ``learned_step_sizes``, ``batch_norm``,
        ``inner_optimizer``, ``proximal``).
    """
    spec, task = learner.spec, config.task
    learned = learner.learns_inner_lr and config.eval.inner_lr is None
    settings: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "mamlkit_version": mamlkit.__version__,
        "source": dict(source),
        "algorithm": config.algorithm.name,
        "model": config_to_data(config)["model"],
        "input_shape": list(task.input_shape),
        "n_outputs": task.n_outputs,
        "loss": task.loss,
        "n_way": task.n_outputs if task.loss == "cross_entropy" else None,
        "preprocessing": None if preprocessing is None else dict(preprocessing),
        "adapts": sorted(spec.adapts),
        "steps": config.eval.steps,
        "inner_steps_in_training": spec.steps,
        "inner_lr": config.algorithm.inner_lr if config.eval.inner_lr is None else config.eval.inner_lr,
        "learned_step_sizes": learned,
        "batch_norm": learner.eval_batch_norm,
        "inner_optimizer": spec.optimizer,
        "proximal": spec.proximal,
    }
    if spec.optimizer == "adam":
        settings.update(adam_betas=list(spec.adam_betas), adam_eps=spec.adam_eps)
    return settings


def settings_path(out: Path) -> Path:
    """The JSON written beside ``out``: ``model.safetensors`` -> ``model.json``."""
    return out.with_suffix(".json")


def write_export(out: Path, tensors: Mapping[str, Tensor], settings: Mapping[str, Any], *,
                 overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``tensors`` to ``out`` (safetensors, with ``settings`` as its metadata under
    "mamlkit") and ``settings`` to the JSON beside it, each atomically.

    Returns:
        (the safetensors file, the JSON file).

    Raises:
        ExportError: ``check_export_target`` fails, or a file cannot be written.
    """
    check_export_target(out, overwrite=overwrite)
    from safetensors.torch import save  # noqa: PLC0415 - checked above

    text = json.dumps(settings, indent=2) + "\n"
    json_out = settings_path(out)
    try:
        write_atomically(out, save(dict(tensors), metadata={"mamlkit": text}))
        write_atomically(json_out, text.encode())
    except OSError as error:
        raise ExportError(f"cannot write {out} and {json_out.name}: {error.strerror or error}; "
                          "choose another --out") from None
    return out, json_out


def check_export_target(out: Path, *, overwrite: bool) -> None:
    """Raise ``ExportError`` unless an export to ``out`` can start: the ``export`` extra is
    installed, ``out`` ends in ``.safetensors``, and neither it nor its JSON exists (or
    ``overwrite``) as anything but a file."""
    try:
        import safetensors.torch  # noqa: F401, PLC0415 - an optional extra
    except ImportError:
        raise ExportError(f"exporting needs the export extra (safetensors): {EXTRA}") from None
    if out.suffix != ".safetensors":
        raise ExportError(f"--out must name a .safetensors file (the settings go beside it, as .json); got {out}")
    for path in (out, settings_path(out)):
        if path.is_dir():
            raise ExportError(f"{path} is a folder; choose another --out")
        if path.exists() and not overwrite:
            raise ExportError(f"{path} exists; add --overwrite to replace it, or choose another --out")
