"""The baselines of docs/unsupervised.md: their classifiers against independent references,
and the whole benchmark end to end on generated images (``--quick``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import unsupervised_baselines as baselines  # noqa: E402  benchmarks/ is not a package


def test_pca_projects_new_images_onto_the_training_images_principal_axes():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(50, 1, 3, 4, generator=generator) * torch.linspace(0.1, 2, 12).reshape(1, 1, 3, 4)
    pca = baselines.fit_pca(images, 5)
    flat = images.flatten(1).double()
    _, _, right = torch.linalg.svd(flat - flat.mean(dim=0), full_matrices=False)  # rows: principal axes
    new = torch.rand(7, 1, 3, 4, generator=generator)
    want = (new.flatten(1).double() - flat.mean(dim=0)) @ right[:5].T
    torch.testing.assert_close(pca.embed(new, 5).abs(), want.abs())  # an axis's sign is arbitrary
    assert pca.embed(new, 2).shape == (7, 2)


def test_nearest_neighbour_takes_the_label_of_the_closest_support_example():
    support = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]])
    labels = torch.tensor([[2, 0, 1]])
    query = torch.tensor([[[9.0, 1.0], [1.0, 1.0], [1.0, 8.0], [6.0, 0.0]]])
    assert baselines.nearest_neighbour(support, labels, query).tolist() == [[0, 2, 1, 0]]


def test_logistic_regression_matches_scikit_learn_on_each_task():
    linear_model = pytest.importorskip("sklearn.linear_model")
    generator = torch.Generator().manual_seed(1)
    support = torch.randn(3, 12, 4, generator=generator, dtype=torch.float64)
    labels = torch.arange(3).repeat(4).expand(3, 12)
    query = torch.randn(3, 5, 4, generator=generator, dtype=torch.float64)
    l2 = 0.05
    logits = baselines.logistic_regression(support, labels, query, n_way=3, l2=l2)
    for task in range(3):
        # sklearn minimises ||W||² / 2 + C · Σ loss; ours mean loss + l2 · ||W||²: the same for C = 1 / (2 l2 n)
        reference = linear_model.LogisticRegression(C=1 / (2 * l2 * 12), tol=1e-10, max_iter=10_000)
        reference.fit(support[task].numpy(), labels[task].numpy())
        want = torch.from_numpy(reference.predict_proba(query[task].numpy()))
        torch.testing.assert_close(logits[task].softmax(dim=-1), want, atol=1e-4, rtol=0)


def test_quick_run_scores_every_method_on_the_protocol_tasks_with_settings_chosen_on_validation(tmp_path):
    out = tmp_path / "baselines.json"
    subprocess.run([sys.executable, str(BENCHMARKS / "unsupervised_baselines.py"), "--quick", "--out", str(out)],
                   check=True, capture_output=True, text=True, timeout=300)
    report = json.loads(out.read_text())
    results = {r["method"]: r for r in report["results"]}
    assert sorted(results) == ["contrastive encoder + logistic regression", "contrastive encoder + nearest neighbour",
                               "conv4 from scratch", "pca + logistic regression", "pca + nearest neighbour"]
    assert report["protocol"]["test tasks"] == 12 and report["protocol"]["preset"] == "unsupervised_folder"
    quick = baselines.QUICK
    assert results["pca + nearest neighbour"]["setting"]["dim"] in quick["dims"]
    assert results["pca + logistic regression"]["setting"]["l2"] in quick["l2"]
    assert 0 <= results["conv4 from scratch"]["setting"]["steps"] <= quick["max_steps"]
    for result in results.values():
        assert 0 <= result["ci95_low"] <= result["mean"] <= result["ci95_high"] <= 1
    # each generated class is one pattern plus a little noise: the nearest image is of its class
    assert results["pca + nearest neighbour"]["mean"] > 0.9
