"""The ``algorithm`` section of a config: which member of the MAML family, and its knobs.

Options shared by the family sit at the top of the section; each algorithm with
options of its own has a sub-section named after it (``algorithm.maml_pp.msl=true``),
whose fields are its learner's own constructor arguments. A sub-section is only allowed
to differ from its defaults when ``algorithm.name`` selects that algorithm, so that no
setting is silently ignored. ``ALGORITHMS`` (below the options) maps each name to its
learner class and sub-section: the one place an algorithm is registered.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from mamlkit.algorithms import ANIL, CAVIA, FOMAML, IMAML, MAML, MAMLPlusPlus, MetaSGD, Reptile
from mamlkit.core import check_step_size
from mamlkit.run.schema import require, require_check


class AlgorithmOptions:
    """An options sub-section: its fields are its learner's keyword arguments."""

    def learner_arguments(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class AnilOptions(AlgorithmOptions):
    """ANIL (Raghu et al. 2020): only the head adapts in the inner loop."""

    head: str | int | None = None
    """The head module's name (e.g. 4 or "4" in an nn.Sequential); null: the last child with parameters."""

    def learner_arguments(self) -> dict[str, Any]:
        return {"head": None if self.head is None else str(self.head)}


@dataclass(frozen=True)
class MAMLPlusPlusOptions(AlgorithmOptions):
    """MAML++ (Antoniou et al. 2019): each fix a separate switch; all off is MAML."""

    msl: bool = False
    msl_iterations: int = 10000
    da: bool = False
    da_iterations: int = 50000
    lslr: bool = False
    bnrs: bool = False
    bnwb: bool = False
    ca: bool = False
    ca_min_lr: float = 1e-5

    def __post_init__(self) -> None:
        require(self.msl_iterations >= 1, f"algorithm.maml_pp.msl_iterations must be >= 1; got {self.msl_iterations}")
        require(self.da_iterations >= 0, f"algorithm.maml_pp.da_iterations must be >= 0; got {self.da_iterations}")
        require(self.ca_min_lr >= 0, f"algorithm.maml_pp.ca_min_lr must be >= 0; got {self.ca_min_lr}")


@dataclass(frozen=True)
class ReptileOptions(AlgorithmOptions):
    """Reptile (Nichol et al. 2018): θ ← θ + ε·mean(θ′ − θ), ε = train.meta_lr under SGD."""

    inner_optimizer: Literal["sgd", "adam"] = "sgd"
    adam_betas: tuple[float, float] = (0.0, 0.999)
    outer_optimizer: Literal["sgd", "adam"] = "sgd"

    def __post_init__(self) -> None:
        require(all(0 <= beta < 1 for beta in self.adam_betas),
                f"algorithm.reptile.adam_betas must both lie in [0, 1); got {list(self.adam_betas)}")


@dataclass(frozen=True)
class IMAMLOptions(AlgorithmOptions):
    """iMAML (Rajeswaran et al. 2019): proximal inner loop, implicit meta-gradient by CG."""

    lam: float = 1.0
    cg_steps: int = 5

    def __post_init__(self) -> None:
        require(self.lam > 0, f"algorithm.imaml.lam (the proximal λ) must be > 0; got {self.lam}")
        require(self.cg_steps >= 1, f"algorithm.imaml.cg_steps must be >= 1; got {self.cg_steps}")


@dataclass(frozen=True)
class CAVIAOptions(AlgorithmOptions):
    """CAVIA (Zintgraf et al. 2019): a context vector, reset to 0 per task, adapts alone."""

    context_size: int = 5

    def __post_init__(self) -> None:
        require(self.context_size >= 1, f"algorithm.cavia.context_size must be >= 1; got {self.context_size}")


@dataclass(frozen=True)
class Algorithm:
    """A registered member of the family: its learner class, and the name of its options
    sub-section (None: it has none), whose fields the learner takes as keyword arguments."""

    learner: type[MAML]
    options: str | None = None


ALGORITHMS = {
    "maml": Algorithm(MAML),
    "fomaml": Algorithm(FOMAML),
    "meta_sgd": Algorithm(MetaSGD),
    "anil": Algorithm(ANIL, "anil"),
    "maml_pp": Algorithm(MAMLPlusPlus, "maml_pp"),
    "reptile": Algorithm(Reptile, "reptile"),
    "imaml": Algorithm(IMAML, "imaml"),
    "cavia": Algorithm(CAVIA, "cavia"),
}
"""``algorithm.name`` -> the algorithm; each options sub-section is named after its algorithm."""

SECTIONS = tuple(algorithm.options for algorithm in ALGORITHMS.values() if algorithm.options is not None)


@dataclass(frozen=True)
class AlgorithmConfig:
    """The meta-learning algorithm and its inner loop."""

    name: str = "maml"
    inner_lr: float = 0.01
    inner_steps: int = 1
    batch_norm: Literal["transductive", "frozen"] = "transductive"
    vectorize: Literal["auto", "stacked", "vmap", "loop"] = "auto"
    chunk_size: int | None = None
    checkpoint_steps: bool = False
    anil: AnilOptions = field(default_factory=AnilOptions)
    maml_pp: MAMLPlusPlusOptions = field(default_factory=MAMLPlusPlusOptions)
    reptile: ReptileOptions = field(default_factory=ReptileOptions)
    imaml: IMAMLOptions = field(default_factory=IMAMLOptions)
    cavia: CAVIAOptions = field(default_factory=CAVIAOptions)

    def __post_init__(self) -> None:
        require(self.name in ALGORITHMS,
                f"algorithm.name must be one of {', '.join(map(repr, ALGORITHMS))}; got {self.name!r}")
        require_check(lambda: check_step_size(self.inner_lr, "algorithm.inner_lr"))
        require(self.inner_steps >= 1, f"algorithm.inner_steps must be >= 1; got {self.inner_steps}")
        require(self.chunk_size is None or self.chunk_size >= 1,
                f"algorithm.chunk_size must be null or >= 1; got {self.chunk_size}")
        for section in SECTIONS:
            options = getattr(self, section)
            changed = [f.name for f in dataclasses.fields(options)
                       if getattr(options, f.name) != getattr(type(options)(), f.name)]
            require(not changed or self.name == section,
                    f"algorithm.{section} sets {', '.join(changed)}, options of algorithm.name={section}, but "
                    f"algorithm.name is {self.name!r}: set algorithm.name={section} or remove those options")
        if self.name == "maml_pp":
            require(not self.maml_pp.bnrs or self.batch_norm == "transductive",
                    "algorithm.maml_pp.bnrs meta-trains with batch statistics: it needs "
                    f"algorithm.batch_norm=transductive; got {self.batch_norm!r}")

    @property
    def first_order(self) -> bool:
        return self.name == "fomaml"

    def learner_arguments(self) -> dict[str, Any]:
        """The selected algorithm's own constructor arguments, from its options sub-section."""
        section = ALGORITHMS[self.name].options
        return {} if section is None else getattr(self, section).learner_arguments()
