"""Meta-learn the LoRA adapters of a transformers text classifier for few-shot classification.

Tasks are generated on the fly: each is an N-way K-shot classification of token sequences in
which class c is "the sequence holds the task's keyword c" (N keywords drawn per task from a
pool of 16 token ids; the rest of the sequence is filler drawn from the other ids). No two
tasks share their labelling, so a model can only succeed by adapting to each task's support
set. The model is a small BERT classifier with random weights (or a local pretrained
checkpoint, ``--checkpoint DIR``), LoRA adapters on its attention's query and value, and its
classification head; the inner loop adapts the adapters and the head, the base stays frozen.
MAML (second order unless ``--first-order``) meta-learns the adapters' and the head's
initial values (``mamlkit.integrations.huggingface.lora_maml``, ``docs/huggingface.md``).

It prints the query accuracy over fixed test tasks before and after adaptation, first with
the initial adapters and then with the meta-learned ones. About half a minute of CPU:

    python examples/hf_lora_few_shot.py
    python examples/hf_lora_few_shot.py --checkpoint path/to/bert-checkpoint --iterations 300

Needs the hf extra: pip install 'mamlkit[hf]'.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import torch

from mamlkit.integrations.huggingface import is_lora, lora_maml, output_loss, set_base_trainable

KEYWORD_POOL = 16
"""Token ids 1..16 are keywords; filler tokens are drawn from the ids above them; 0 starts every sequence."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a local folder saved by save_pretrained (default: a tiny random BERT)")
    parser.add_argument("--iterations", type=int, default=150, help="meta-iterations")
    parser.add_argument("--meta-batch", type=int, default=4, help="tasks per meta-iteration")
    parser.add_argument("--ways", type=int, default=3)
    parser.add_argument("--shots", type=int, default=4, help="support sequences per class")
    parser.add_argument("--queries", type=int, default=4, help="query sequences per class")
    parser.add_argument("--length", type=int, default=12, help="tokens per sequence")
    parser.add_argument("--inner-steps", type=int, default=2)
    parser.add_argument("--inner-lr", type=float, default=0.5)
    parser.add_argument("--meta-lr", type=float, default=3e-3)
    parser.add_argument("--first-order", action="store_true", help="FOMAML")
    parser.add_argument("--base", choices=("frozen", "meta-learned"), default="meta-learned",
                        help="the base weights: meta-learned (suits the random model) or frozen (a pretrained one)")
    parser.add_argument("--test-tasks", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def build_model(args: argparse.Namespace) -> torch.nn.Module:
    """A BERT classifier with LoRA on query and value; its head is trainable too (modules_to_save)."""
    try:
        import peft
        import transformers
    except ImportError:
        sys.exit("this example needs the hf extra: pip install 'mamlkit[hf]'")
    torch.manual_seed(args.seed)
    if args.checkpoint:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            args.checkpoint, num_labels=args.ways, attn_implementation="eager", ignore_mismatched_sizes=True)
    else:
        config = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                         intermediate_size=64, max_position_embeddings=args.length,
                                         num_labels=args.ways, attn_implementation="eager")
        model = transformers.BertForSequenceClassification(config)
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], modules_to_save=["classifier"])
    with warnings.catch_warnings():  # peft 0.21 calls a method that transformers 5 deprecates
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return peft.get_peft_model(model, lora)


def sample_task(generator: torch.Generator, args: argparse.Namespace, vocab_size: int):
    """(support inputs, query inputs) of one task: input_ids, attention_mask, labels."""
    keywords = 1 + torch.randperm(KEYWORD_POOL, generator=generator)[:args.ways]

    def inputs(per_class: int) -> dict[str, torch.Tensor]:
        labels = torch.arange(args.ways).repeat_interleave(per_class)
        ids = torch.randint(KEYWORD_POOL + 1, vocab_size, (len(labels), args.length), generator=generator)
        places = 1 + torch.rand(len(labels), args.length - 1, generator=generator).argsort(dim=1)[:, :3]
        ids.scatter_(1, places, keywords[labels][:, None].expand(-1, 3))  # its keyword 3 times, never first
        ids[:, 0] = 0  # position 0 is a summary token ([CLS] in BERT's vocabulary), read by the head
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}

    return inputs(args.shots), inputs(args.queries)


def accuracy(model_fn, inputs: dict[str, torch.Tensor]) -> float:
    with torch.no_grad():
        logits = model_fn(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    return (logits.argmax(-1) == inputs["labels"]).float().mean().item()


def evaluate(learner, tasks, args: argparse.Namespace) -> tuple[float, float]:
    """Mean query accuracy over ``tasks`` before and after ``inner_steps`` steps of adaptation."""
    before, after = [], []
    for support, query in tasks:
        before.append(accuracy(learner.model, query))
        with torch.no_grad():
            adapted = learner.adapt(output_loss(support))
        after.append(accuracy(adapted, query))
    return sum(before) / len(tasks), sum(after) / len(tasks)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)  # tiny tensors: a second thread costs more than it computes
    model = build_model(args)
    model.eval()  # no dropout: adapting and scoring see the same function
    set_base_trainable(model, args.base == "meta-learned")
    vocab_size = model.config.vocab_size
    learner = lora_maml(model, inner_lr=args.inner_lr, inner_steps=args.inner_steps, first_order=args.first_order,
                        adapts=lambda name: is_lora(name) or "classifier.modules_to_save" in name)
    test_generator = torch.Generator().manual_seed(args.seed + 1)
    test_tasks = [sample_task(test_generator, args, vocab_size) for _ in range(args.test_tasks)]
    print(f"{args.ways}-way {args.shots}-shot, {len(test_tasks)} test tasks, query accuracy before -> after "
          f"{args.inner_steps} inner steps (chance {1 / args.ways:.2f})")
    print("initial adapters:      {:.3f} -> {:.3f}".format(*evaluate(learner, test_tasks, args)))

    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.meta_lr)
    generator = torch.Generator().manual_seed(args.seed)
    for _ in range(args.iterations):
        optimizer.zero_grad()
        for _ in range(args.meta_batch):
            support, query = sample_task(generator, args, vocab_size)
            adapted = learner.adapt(output_loss(support))
            (adapted(**query).loss / args.meta_batch).backward()
        optimizer.step()
    print("meta-learned adapters: {:.3f} -> {:.3f}".format(*evaluate(learner, test_tasks, args)))


if __name__ == "__main__":
    main()
