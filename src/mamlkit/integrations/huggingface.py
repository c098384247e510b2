"""Meta-learn the LoRA adapters of a Hugging Face ``transformers`` model with ``ClosureMAML``.

The inner loop adapts the LoRA parameters that ``peft`` adds (``lora_A``, ``lora_B``, ...) and
nothing else; the base weights stay frozen (peft's default: they get no gradient) or, made
trainable, are meta-learned with the adapters as shared parameters. The model is called as
transformers models are, with keyword inputs, and returns a ``ModelOutput``; with ``labels``
among the inputs it computes its own loss, which ``output_loss`` hands to the inner loop.

This module imports neither transformers nor peft: it reads parameter names and the models'
``config``. Building the models needs the ``hf`` extra (``pip install 'mamlkit[hf]'``).

Second-order MAML differentiates the attention's backward pass. The ``"eager"`` implementation
and ``"sdpa"`` (run on PyTorch's math kernel in the inner loop) have that second derivative;
PyTorch's fused CPU kernel does not ("derivative for
aten::_scaled_dot_product_flash_attention_for_cpu_backward is not implemented", torch 2.13),
nor, as far as mamlkit knows, do the other implementations (flash attention, flex attention):
``lora_maml`` refuses them unless ``first_order``.

References:
    Hu et al. (2022), LoRA: Low-Rank Adaptation of Large Language Models, ICLR.
    Finn, Abbeel & Levine (2017), Model-Agnostic Meta-Learning, ICML.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor, nn

from mamlkit.algorithms.closure import ClosureMAML, ModelFn, SupportLoss
from mamlkit.algorithms.maml import Adapts
from mamlkit.core import InnerLR, SpecError

SECOND_ORDER_ATTENTION = ("eager", "sdpa")
"""Attention implementations (``config._attn_implementation``) that second-order MAML can use."""


def is_lora(name: str) -> bool:
    """Whether parameter ``name`` belongs to a LoRA adapter added by peft (``...lora_A.default.weight``).

    Example:
        >>> is_lora("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.default.weight")
        True
        >>> is_lora("base_model.model.bert.encoder.layer.0.attention.self.query.base_layer.weight")
        False
    """
    return any(part.startswith("lora_") for part in name.split("."))


def lora_maml(model: nn.Module, *, inner_lr: InnerLR = 0.01, inner_steps: int = 1, first_order: bool = False,
              adapts: Adapts = is_lora) -> ClosureMAML:
    """``ClosureMAML`` over a transformers model whose LoRA parameters adapt in the inner loop.

    Which parameters are meta-learned is what requires grad: after ``peft.get_peft_model``
    the adapters and any ``modules_to_save`` (a classification head); call
    ``set_base_trainable(model, True)`` to meta-learn the base weights too.

    Args:
        model: a transformers model with peft's LoRA adapters (``peft.get_peft_model``).
        inner_lr: step size α of the inner SGD steps.
        inner_steps: inner steps per task, >= 1.
        first_order: FOMAML.
        adapts: the parameters that adapt (default: the LoRA ones); e.g. only the head
            (ANIL: ``lambda name: "classifier" in name``).

    Returns:
        The learner; ``learner.adapt(output_loss(support_inputs))`` adapts it to one task.

    Raises:
        SpecError: second order with an attention implementation that has no second
            derivative (the message says which to choose), nothing adapts, or a bad setting.
    """
    if not first_order:
        check_attention(model)
    return ClosureMAML(model, inner_lr=inner_lr, inner_steps=inner_steps, first_order=first_order, adapts=adapts)


def check_attention(model: nn.Module) -> None:
    """Raise ``SpecError`` unless every attention implementation in ``model``'s configs has a
    second derivative (``SECOND_ORDER_ATTENTION``)."""
    found = {getattr(module.config, "_attn_implementation", None)
             for module in model.modules() if hasattr(module, "config")} - {None}
    unusable = sorted(found - set(SECOND_ORDER_ATTENTION))
    if unusable:
        raise SpecError(f"attention implementation {unusable[0]!r} has no second derivative: load the model with "
                        f"attn_implementation='eager' (or 'sdpa', which mamlkit runs on PyTorch's math kernel), "
                        f"or use first_order=True")


def set_base_trainable(model: nn.Module, trainable: bool) -> None:
    """Make the non-LoRA parameters of ``model`` meta-learned (``True``) or frozen (``False``), in place.

    A peft model's ``modules_to_save`` keep their own copies (``modules_to_save.*``) and the
    originals (``original_module.*``), which its forward pass does not use.
    """
    for name, param in model.named_parameters():
        if not is_lora(name):
            param.requires_grad_(trainable)


def output_loss(inputs: Mapping[str, Any]) -> SupportLoss:
    """The support loss that a transformers model computes itself: ``model(**inputs).loss``.

    Args:
        inputs: the model's keyword inputs, ``labels`` among them (e.g. ``input_ids``,
            ``attention_mask``, ``labels``), for one task.

    Returns:
        ``loss_fn(model_fn)`` for ``ClosureMAML.adapt``.
    """
    def loss_fn(model_fn: ModelFn) -> Tensor:
        output = model_fn(**inputs)
        loss = getattr(output, "loss", None)
        if loss is None:
            raise SpecError(f"the model returned {type(output).__name__} without a loss: pass labels among the "
                            f"inputs, or write the loss yourself")
        return loss

    return loss_fn
