"""LoRA adapters of tiny random transformers models, meta-learned with ``lora_maml``, against a
naive per-task loop written here (no download: models built from small configs)."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from mamlkit.core import SpecError
from mamlkit.integrations.huggingface import check_attention, is_lora, lora_maml, output_loss, set_base_trainable

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

pytestmark = pytest.mark.filterwarnings(  # peft 0.21 calls a transformers 5 method that is deprecated
    "ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

VOCAB, LENGTH, N_TASKS, N_WAY = 30, 6, 2, 3


def tiny_bert(attention: str = "eager"):
    """A 1-layer BERT classifier, hidden size 16, random weights, LoRA on query and value."""
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=N_WAY,
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                     attn_implementation=attention)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    lora = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["query", "value"], modules_to_save=["classifier"],
                           init_lora_weights=False)  # random B too: no zero gradients at the start
    return peft.get_peft_model(model, lora).double()


def tiny_gpt2(attention: str = "sdpa"):
    """A 1-layer GPT-2 language model, embedding size 16, random weights, LoRA on c_attn."""
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=16, n_embd=16, n_layer=1, n_head=2,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
                                     attn_implementation=attention)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    lora = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"], fan_in_fan_out=True,
                           init_lora_weights=False)
    return peft.get_peft_model(model, lora).double()


def classification_tasks(seed: int):
    """Per task: support and query inputs (input_ids, attention_mask, labels)."""
    generator = torch.Generator().manual_seed(seed)

    def inputs(n):
        ids = torch.randint(1, VOCAB, (n, LENGTH), generator=generator)
        mask = torch.ones(n, LENGTH, dtype=torch.long)
        mask[0, -2:] = 0  # one padded sequence
        return {"input_ids": ids, "attention_mask": mask, "labels": torch.arange(n) % N_WAY}

    return [(inputs(N_WAY), inputs(2 * N_WAY)) for _ in range(N_TASKS)]


def language_tasks(seed: int):
    generator = torch.Generator().manual_seed(seed)

    def inputs(n):
        ids = torch.randint(0, VOCAB, (n, LENGTH), generator=generator)
        return {"input_ids": ids, "labels": ids}

    return [(inputs(2), inputs(3)) for _ in range(N_TASKS)]


def reference_meta_grad(model, tasks, *, steps, inner_lr, first_order, adapts):
    """The plain per-task loop: autograd.grad(create_graph=True) on the adapting parameters."""
    theta = {name: p for name, p in model.named_parameters() if p.requires_grad}
    frozen = {name: p for name, p in model.named_parameters() if not p.requires_grad}
    total = 0.0
    with sdpa_kernel(SDPBackend.MATH):
        for support, query in tasks:
            params = dict(theta)
            for _ in range(steps):
                loss = functional_call(model, {**frozen, **params}, (), support).loss
                names = [name for name in params if adapts(name)]
                grads = torch.autograd.grad(loss, [params[name] for name in names], create_graph=not first_order)
                params.update({name: params[name] - inner_lr * grad for name, grad in zip(names, grads)})
            total = total + functional_call(model, {**frozen, **params}, (), query).loss
    grads = torch.autograd.grad(total / len(tasks), list(theta.values()), allow_unused=True)
    return {name: torch.zeros_like(p) if g is None else g for (name, p), g in zip(theta.items(), grads)}


def lora_meta_grad(learner, tasks, *, steps):
    learner.model.zero_grad(set_to_none=True)
    for support, query in tasks:
        adapted = learner.adapt(output_loss(support), steps=steps)
        (adapted(**query).loss / len(tasks)).backward()
    return {name: p.grad for name, p in learner.model.named_parameters() if p.requires_grad}


def assert_equal_grads(got, want):
    assert got.keys() == want.keys()
    for name in want:
        grad = torch.zeros_like(want[name]) if got[name] is None else got[name]
        torch.testing.assert_close(grad, want[name], rtol=1e-9, atol=1e-11, msg=name)


HEAD = "classifier.modules_to_save"


@pytest.mark.parametrize("variant", ["maml", "fomaml", "anil"])
def test_bert_lora_meta_gradient_matches_the_naive_loop_and_the_base_gets_none(variant):
    model = tiny_bert()
    first_order = variant == "fomaml"
    adapts = (lambda name: HEAD in name) if variant == "anil" else is_lora
    learner = lora_maml(model, inner_lr=0.3, inner_steps=2, first_order=first_order, adapts=adapts)
    tasks = classification_tasks(0)
    got = lora_meta_grad(learner, tasks, steps=2)
    want = reference_meta_grad(model, tasks, steps=2, inner_lr=0.3, first_order=first_order, adapts=adapts)
    assert_equal_grads(got, want)
    assert all(got[name].abs().sum() > 0 for name in got if is_lora(name) or HEAD in name)
    frozen = [p for name, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(p.grad is None for p in frozen)


def test_gpt2_lora_on_sdpa_with_the_base_meta_learned_matches_the_naive_loop():
    model = tiny_gpt2("sdpa")
    set_base_trainable(model, True)
    learner = lora_maml(model, inner_lr=0.2, inner_steps=1)
    assert learner.spec.adapts == {name for name, _ in model.named_parameters() if is_lora(name)}
    tasks = language_tasks(1)
    got = lora_meta_grad(learner, tasks, steps=1)
    want = reference_meta_grad(model, tasks, steps=1, inner_lr=0.2, first_order=False, adapts=is_lora)
    assert_equal_grads(got, want)
    assert got["base_model.model.transformer.wte.weight"].abs().sum() > 0  # the base, through the inner step


def test_sdpa_fused_kernel_has_no_second_derivative_so_the_inner_loop_uses_the_math_kernel():
    model = tiny_gpt2("sdpa")
    (support, _), = language_tasks(2)[:1]
    lora = [p for name, p in model.named_parameters() if is_lora(name)]
    grads = torch.autograd.grad(model(**support).loss, lora, create_graph=True)
    with pytest.raises(RuntimeError, match="not implemented"):  # torch 2.13's fused CPU kernel
        torch.autograd.grad(sum(g.sum() for g in grads), lora)


def test_an_attention_without_second_derivative_is_one_clear_line():
    model = tiny_bert()
    model.config._attn_implementation = "flex_attention"
    with pytest.raises(SpecError, match="'flex_attention' has no second derivative: load the model with "
                                        "attn_implementation='eager'") as error:
        lora_maml(model)
    assert "\n" not in str(error.value)
    check_attention(tiny_bert("sdpa"))
    assert lora_maml(model, first_order=True).spec.first_order


def test_an_output_without_loss_is_one_clear_line():
    model = tiny_bert()
    (support, _), = classification_tasks(3)[:1]
    without_labels = {key: value for key, value in support.items() if key != "labels"}
    with pytest.raises(SpecError, match="SequenceClassifierOutput without a loss: pass labels"):
        lora_maml(model).adapt(output_loss(without_labels))
