"""examples/hf_lora_few_shot.py runs end to end with tiny settings."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from threads import one_thread  # noqa: F401 - a fixture

pytest.importorskip("transformers")
pytest.importorskip("peft")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hf_lora_few_shot.py"


@pytest.fixture
def example():
    """The example script as a module."""
    spec = importlib.util.spec_from_file_location("hf_lora_few_shot", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_meta_trains_and_prints_accuracy_before_and_after(example, capsys, one_thread):  # noqa: F811
    example.main(["--iterations", "2", "--meta-batch", "2", "--test-tasks", "2", "--shots", "2", "--queries", "2",
                  "--length", "6"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("3-way 2-shot, 2 test tasks")
    assert re.fullmatch(r"initial adapters: +[01]\.\d{3} -> [01]\.\d{3}", lines[1])
    assert re.fullmatch(r"meta-learned adapters: [01]\.\d{3} -> [01]\.\d{3}", lines[2])


def test_the_example_loads_a_local_checkpoint(example, tmp_path, capsys, one_thread):  # noqa: F811
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path)
    example.main(["--checkpoint", str(tmp_path), "--base", "frozen", "--iterations", "1", "--meta-batch", "1",
                  "--test-tasks", "1", "--shots", "1", "--queries", "1", "--length", "6"])
    assert "meta-learned adapters:" in capsys.readouterr().out
