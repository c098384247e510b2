"""Binary classification tasks in R^dim whose boundaries share a hidden structure.

A task is a hyperplane w·x = b: an example x ~ N(0, I_dim) has label 1 when w·x > b,
else 0. The normal w is a random unit vector inside the span of the first
``relevant_dims`` coordinates, the same subspace for every task; the other coordinates
are noise. The offset b ~ U[−max_offset, max_offset].

Every direction in that plane is equally likely, so the average task has no preferred
label anywhere: a model pre-trained on all tasks jointly learns nothing that transfers,
and one trained from scratch on K examples per class must find the two relevant
coordinates among ``dim``. A meta-learned initialisation can already attend to the
relevant subspace and adapt in a step or two (see ``examples/binary_classification.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mamlkit.core.types import TaskBatch
from mamlkit.tasks.source import SamplerError, check_counts


@dataclass(frozen=True)
class BinaryTasks:
    """The distribution of binary classification tasks described in the module docstring.

    Its fields are also the config's ``task`` settings of the same names, checked here only
    (messages name them ``task.<field>``).

    Attributes:
        dim: input dimension, >= 1.
        relevant_dims: leading coordinates that span every task's normal w, 1..dim.
        max_offset: the offset b is uniform in [−max_offset, max_offset], >= 0.

    Raises:
        SamplerError: a setting out of its range.

    Example:
        >>> tasks = BinaryTasks(dim=10)
        >>> batch = tasks.sample(4, k_shot=5, n_query=15, generator=torch.Generator().manual_seed(0))
        >>> tuple(batch.support_x.shape), batch.support_y[0].tolist()
        ((4, 10, 10), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    """

    dim: int = 10
    relevant_dims: int = 2
    max_offset: float = 0.5

    def __post_init__(self) -> None:
        if not self.dim >= 1:
            raise SamplerError(f"task.dim must be >= 1; got {self.dim}")
        if not 1 <= self.relevant_dims <= self.dim:
            raise SamplerError(f"task.relevant_dims must lie in 1..task.dim = 1..{self.dim}; got {self.relevant_dims}")
        if not self.max_offset >= 0:
            raise SamplerError(f"task.max_offset must be >= 0; got {self.max_offset}")

    def sample_boundaries(self, n_tasks: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Unit normals w (n_tasks, dim), zero beyond ``relevant_dims``, and offsets b (n_tasks,)."""
        normal = torch.zeros(n_tasks, self.dim, dtype=torch.float64)
        direction = torch.randn(n_tasks, self.relevant_dims, generator=generator, dtype=torch.float64)
        normal[:, : self.relevant_dims] = direction / direction.norm(dim=1, keepdim=True)
        offset = (2 * torch.rand(n_tasks, generator=generator, dtype=torch.float64) - 1) * self.max_offset
        return normal, offset

    def sample(self, n_tasks: int, *, k_shot: int, n_query: int, generator: torch.Generator,
               split: str = "train") -> TaskBatch:
        """``n_tasks`` tasks with ``k_shot`` support and ``n_query`` query examples per class.

        Examples are grouped by class (label 0 first). Every split draws from the same
        distribution; ``split`` is accepted for the ``TaskSource`` interface.

        Returns:
            ``TaskBatch`` with support_x (n_tasks, 2·K, dim) float32, support_y
            (n_tasks, 2·K) int64 in {0, 1}, query_x (n_tasks, 2·Q, dim), query_y (n_tasks, 2·Q).
        """
        del split
        check_counts(n_tasks=n_tasks, k_shot=k_shot, n_query=n_query)
        normal, offset = self.sample_boundaries(n_tasks, generator)
        per_class = k_shot + n_query
        x = self._examples(normal, offset, per_class, generator)  # (tasks, 2, K+Q, dim)
        y = torch.arange(2).reshape(1, 2, 1).expand(n_tasks, 2, per_class)
        return TaskBatch(x[:, :, :k_shot].flatten(1, 2), y[:, :, :k_shot].flatten(1, 2),
                         x[:, :, k_shot:].flatten(1, 2), y[:, :, k_shot:].flatten(1, 2))

    def _examples(self, normal: Tensor, offset: Tensor, per_class: int, generator: torch.Generator) -> Tensor:
        """x ~ N(0, I) conditioned on its side of the boundary, per class: (tasks, 2, per_class, dim).

        The projection s = w·x of a standard normal x is N(0, 1); draw s from that normal
        truncated to the class's side of b (inverse CDF), then add the orthogonal part.
        """
        n_tasks = normal.shape[0]
        below = torch.special.ndtr(offset).reshape(n_tasks, 1, 1)  # P(w·x < b)
        u = torch.rand(n_tasks, 2, per_class, generator=generator, dtype=torch.float64)
        quantile = torch.where(torch.arange(2).reshape(1, 2, 1) == 0, u * below, below + u * (1 - below))
        eps = torch.finfo(torch.float64).eps
        projection = torch.special.ndtri(quantile.clamp(eps, 1 - eps))  # (tasks, 2, per_class)
        noise = torch.randn(n_tasks, 2, per_class, self.dim, generator=generator, dtype=torch.float64)
        w = normal.reshape(n_tasks, 1, 1, self.dim)
        orthogonal = noise - (noise * w).sum(dim=-1, keepdim=True) * w
        return (projection.unsqueeze(-1) * w + orthogonal).float()
