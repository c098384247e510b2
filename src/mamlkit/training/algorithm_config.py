"""The ``algorithm`` section of a config: which member of the MAML family, and its settings.

The settings the family shares sit at the top of the section (``algorithm.inner_lr``); each
algorithm with settings of its own has a sub-section named after it (``algorithm.maml_pp.msl``)
whose type is the algorithm's settings dataclass itself (``MAMLPlusPlusSettings``, beside its
learner): declared and checked there, once. A sub-section may only differ from its defaults
when ``algorithm.name`` selects that algorithm, so that no setting is silently ignored.

``LEARNERS`` is the one list of algorithms: each learner class says its ``name`` and its
``settings_type``, and ``ALGORITHMS`` and ``SECTIONS`` derive from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from mamlkit.algorithms import (
    ANIL,
    CAVIA,
    FOMAML,
    IMAML,
    MAML,
    AlgorithmSettings,
    ANILSettings,
    CAVIASettings,
    IMAMLSettings,
    MAMLPlusPlus,
    MAMLPlusPlusSettings,
    MetaSGD,
    Reptile,
    ReptileSettings,
    check_shared_settings,
)
from mamlkit.core import SpecError
from mamlkit.run.schema import ConfigError, require

LEARNERS: tuple[type[MAML], ...] = (MAML, FOMAML, MetaSGD, ANIL, MAMLPlusPlus, Reptile, IMAML, CAVIA)
"""Every selectable algorithm, in the order ``algorithm.name``'s error lists them."""

ALGORITHMS: dict[str, type[MAML]] = {learner.name: learner for learner in LEARNERS}
"""``algorithm.name`` -> its learner class."""

SECTIONS: dict[str, type[AlgorithmSettings]] = {
    learner.name: learner.settings_type for learner in LEARNERS if learner.settings_type is not None}
"""``algorithm.<name>`` sub-section -> its settings dataclass (a field of ``AlgorithmConfig``)."""


@dataclass(frozen=True)
class AlgorithmConfig:
    """The meta-learning algorithm and its inner loop.

    The shared settings are the keyword arguments of ``mamlkit.algorithms.MAML`` of the same
    names, checked by ``check_shared_settings``; ``batch_norm`` is ``"transductive"`` or
    ``"frozen"``, ``vectorize`` ``"auto"``, ``"stacked"``, ``"vmap"`` or ``"loop"``.
    Each sub-section below is the settings dataclass of the algorithm of its name.
    """

    name: str = "maml"
    inner_lr: float = 0.01
    inner_steps: int = 1
    batch_norm: str = "transductive"
    vectorize: str = "auto"
    chunk_size: int | None = None
    checkpoint_steps: bool = False
    anil: ANILSettings = field(default_factory=ANILSettings)
    maml_pp: MAMLPlusPlusSettings = field(default_factory=MAMLPlusPlusSettings)
    reptile: ReptileSettings = field(default_factory=ReptileSettings)
    imaml: IMAMLSettings = field(default_factory=IMAMLSettings)
    cavia: CAVIASettings = field(default_factory=CAVIASettings)

    def __post_init__(self) -> None:
        require(self.name in ALGORITHMS,
                f"algorithm.name must be one of {', '.join(map(repr, ALGORITHMS))}; got {self.name!r}")
        _in_section("algorithm", lambda: check_shared_settings(
            inner_lr=self.inner_lr, inner_steps=self.inner_steps, batch_norm=self.batch_norm,
            vectorize=self.vectorize, chunk_size=self.chunk_size, checkpoint_steps=self.checkpoint_steps))
        for section, settings_type in SECTIONS.items():
            settings = getattr(self, section)
            changed = [f.name for f in dataclasses.fields(settings)
                       if getattr(settings, f.name) != getattr(settings_type(), f.name)]
            require(not changed or self.name == section,
                    f"algorithm.{section} sets {', '.join(changed)}, options of algorithm.name={section}, but "
                    f"algorithm.name is {self.name!r}: set algorithm.name={section} or remove those options")
        settings = self.settings
        if settings is not None:
            _in_section(f"algorithm.{self.name}", lambda: settings.check_batch_norm(self.batch_norm))

    @property
    def first_order(self) -> bool:
        return self.name == "fomaml"

    @property
    def settings(self) -> AlgorithmSettings | None:
        """The selected algorithm's own settings (its sub-section), or None if it has none."""
        return getattr(self, self.name) if self.name in SECTIONS else None

    def learner_arguments(self) -> dict[str, Any]:
        """The selected algorithm's own constructor arguments: its sub-section's fields."""
        return {} if self.settings is None else self.settings.arguments()


def _in_section(section: str, check: Callable[[], None]) -> None:
    """Run a learner's ``check``; its ``SpecError``, whose message starts with the setting's
    name, becomes a ``ConfigError`` naming the setting's dotted key (``algorithm.inner_steps``)."""
    try:
        check()
    except SpecError as error:
        raise ConfigError(f"{section}.{error}") from None
