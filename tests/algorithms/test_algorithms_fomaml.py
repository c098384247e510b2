"""FOMAML: the meta-gradient is the query gradient at the adapted parameters."""

from __future__ import annotations

import pytest
import torch

from family_reference import family_meta_loss, grads_of, one_thread  # noqa: F401 - autouse fixture
from mamlkit import TaskBatch
from mamlkit.algorithms import FOMAML, MAML
from mamlkit.algorithms.losses import LOSSES
from zoo import batch_for, conv_bn, loss_name_for, mlp


@pytest.mark.parametrize("make_model", [mlp, conv_bn], ids=lambda f: f.__name__)
def test_fomaml_meta_grad_matches_the_first_order_reference(make_model, generator):
    model = make_model().double()
    batch = batch_for(make_model, generator)
    loss = loss_name_for(make_model)
    FOMAML(model, inner_lr=0.3, inner_steps=2, loss=loss).meta_loss(TaskBatch(*batch)).backward()
    got = {name: p.grad for name, p in model.named_parameters()}
    want = grads_of(family_meta_loss(model, batch, loss=LOSSES[loss], steps=2, lr=lambda name, step: 0.3,
                                     first_order=True), dict(model.named_parameters()))
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)
    model.zero_grad()
    MAML(model, inner_lr=0.3, inner_steps=2, loss=loss).meta_loss(TaskBatch(*batch)).backward()
    assert any(not torch.allclose(got[name], p.grad) for name, p in model.named_parameters())


def test_fomaml_refuses_a_first_order_argument():
    with pytest.raises(TypeError, match="first-order by definition"):
        FOMAML(mlp(), first_order=False)
