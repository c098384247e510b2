"""``ANIL``: only the network's head adapts in the inner loop; the body is meta-learned.

References:
    Raghu, Raghu, Bengio & Vinyals (2020), Rapid Learning or Feature Reuse? Towards
    Understanding the Effectiveness of MAML, ICLR. Section 4 (ANIL): the inner loop
    updates the head only; the outer loop updates body and head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from mamlkit.algorithms.maml import MAML
from mamlkit.algorithms.settings import AlgorithmSettings
from mamlkit.core import SpecError


@dataclass(frozen=True)
class ANILSettings(AlgorithmSettings):
    """ANIL's own setting; the config's ``algorithm.anil`` section.

    Attributes:
        head: the head module, the only one that adapts: its name in ``model.named_modules()``
            ("head", "classifier.fc"), or a child's index in an ``nn.Sequential`` (4 or "4");
            ``None`` (null): the last top-level child that has parameters.

    Raises:
        SpecError: ``head`` is neither None, a non-empty string nor an integer >= 0.
    """

    head: str | int | None = None

    def __post_init__(self) -> None:
        valid = (self.head is None or (isinstance(self.head, str) and self.head != "")
                 or (isinstance(self.head, int) and not isinstance(self.head, bool) and self.head >= 0))
        if not valid:
            raise SpecError(f"head must be null/None (the last child with parameters), a module's name or a "
                            f"child's index >= 0; got {self.head!r}")


class ANIL(MAML):
    """Almost No Inner Loop: MAML whose inner loop adapts the head's parameters only.

    Core knobs: ``InnerSpec.adapts`` = the head's parameters; and, when ``model`` is a
    plain ``nn.Sequential`` and ``head`` one of its children, ``TaskModel.frozen_prefix``
    = the children before the head. The body's features do not depend on the adapting
    head, so the core computes them once per task batch (support and query) and runs
    only the head in each inner step: the same meta-gradient as running the whole
    network per step, at a fraction of the cost. Other models get the same
    meta-gradient without that shortcut (``uses_cached_features`` says which).

    Args:
        model: any ``nn.Module``.
        head: the head module (``ANILSettings.head``: a name in ``model.named_modules()``, a
            child's index, or ``None``: the last top-level child that has parameters). With an
            ``nn.Sequential``, the children from the head on form the module run per inner step.
        **options: as ``MAML`` (``inner_lr``, ``inner_steps``, ``first_order``, ``loss``, ...),
            except ``adapts``.

    Example:
        >>> model = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1))
        >>> learner = ANIL(model)
        >>> learner.head, sorted(learner.spec.adapts), learner.uses_cached_features
        ('2', ['2.bias', '2.weight'], True)
    """

    name = "anil"
    settings_type = ANILSettings

    def __init__(self, model: nn.Module, *, head: str | int | None = ANILSettings.head, **options: Any) -> None:
        if "adapts" in options:
            raise TypeError("ANIL adapts its head: choose it with head=..., not adapts=")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        self.settings = ANILSettings(head=head)
        head = _default_head(model) if head is None else str(head)
        modules = dict(model.named_modules())
        if head not in modules:
            children = [name for name, _ in model.named_children()]
            raise SpecError(f"ANIL head {head!r} is not a sub-module of the model; its top-level children: "
                            f"{children}")
        head_names = {f"{head}.{name}" for name, _ in modules[head].named_parameters()}
        if not head_names:
            raise SpecError(f"ANIL head {head!r} has no parameters to adapt")
        super().__init__(model, adapts=lambda name: name in head_names, **options)
        self.head = head
        self._split: tuple[nn.Module, nn.Module | None] = (model, None)
        children = [name for name, _ in model.named_children()]
        if type(model) is nn.Sequential and head in children:
            start = children.index(head)
            if start > 0:
                self._split = (model[start:], model[:start])

    @property
    def uses_cached_features(self) -> bool:
        """Whether the body runs once per task batch rather than once per inner step."""
        return self._split[1] is not None

    def _modules(self) -> tuple[nn.Module, nn.Module | None]:
        return self._split


def _default_head(model: nn.Module) -> str:
    with_parameters = [name for name, child in model.named_children() if any(True for _ in child.parameters())]
    if not with_parameters:
        raise SpecError("ANIL needs a head: the model has no child module with parameters; pass head=...")
    return with_parameters[-1]
