"""FID against independent references (a NumPy computation and Gaussians with a known
closed form), the judge's features, class shares, and the real-data floor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlnd.errors import UserError
from dlnd.generative.judge import (
    FrechetDistance,
    Judge,
    Scorer,
    class_shares,
    inception_fid_metric,
    last_linear,
)
from dlnd.vision.models import CourseCNN


def frechet_numpy(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance of Gaussians fitted to samples a (N, F) and b (M, F), written
    independently: Tr((S_a S_b)^(1/2)) = Tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), both square
    roots by symmetric eigendecomposition."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    trace_sqrt = np.sqrt(np.clip(inner, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * trace_sqrt)


def test_frechet_distance_matches_an_independent_numpy_computation():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 6))
    a = rng.normal(size=(500, 6)) @ mixing
    b = rng.normal(size=(700, 6)) @ mixing.T + 0.3
    ours = FrechetDistance(torch.from_numpy(a))(torch.from_numpy(b))
    assert ours == pytest.approx(frechet_numpy(b, a), rel=1e-7)


def test_frechet_distance_of_gaussians_with_a_known_closed_form():
    """Covariances Q diag(alpha) Q^T and Q diag(beta) Q^T commute, so
    FID = |mu_1 - mu_2|^2 + sum_i (sqrt(alpha_i) - sqrt(beta_i))^2."""
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))  # a random rotation
    alpha, beta = np.array([1.0, 4.0, 0.25, 2.0]), np.array([9.0, 1.0, 1.0, 2.0])
    mu_1, mu_2 = np.array([0.0, 1.0, 0.0, 0.0]), np.array([2.0, 0.0, 0.0, 1.0])
    n = 400_000
    x = (rng.normal(size=(n, 4)) * np.sqrt(alpha)) @ q.T + mu_1
    y = (rng.normal(size=(n, 4)) * np.sqrt(beta)) @ q.T + mu_2
    expected = ((mu_1 - mu_2) ** 2).sum() + ((np.sqrt(alpha) - np.sqrt(beta)) ** 2).sum()
    assert expected == pytest.approx(11.25)
    measured = FrechetDistance(torch.from_numpy(x))(torch.from_numpy(y))
    assert measured == pytest.approx(expected, rel=0.01)


def test_frechet_distance_is_zero_for_the_same_set_and_the_squared_shift_for_a_translate():
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.normal(size=(300, 5)))
    distance = FrechetDistance(x)
    assert distance(x) == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([1.0, -2.0, 0.0, 0.5, 0.0], dtype=torch.float64)
    assert distance(x + shift) == pytest.approx(float(shift.pow(2).sum()), abs=1e-6)
    assert distance(x) == pytest.approx(0.0, abs=1e-6)  # the reference survives each call


def tiny_judge() -> Judge:
    torch.manual_seed(0)
    model = CourseCNN((1, 28, 28), 10, [0.1], [0.3], widths=(4, 8), hidden_size=16).eval()
    return Judge(model, [str(k) for k in range(10)], {"run_dir": "test"})


def test_the_judge_features_are_the_input_of_the_last_linear_layer():
    judge = tiny_judge()
    assert last_linear(judge.model) is judge.model.classifier[-1]
    images = torch.randint(0, 256, (7, 1, 28, 28), dtype=torch.uint8)
    features, probabilities = judge.score(images, batch_size=3)
    with torch.no_grad():
        x = judge.model.normalize(images.float() / 255)
        expected = judge.model.classifier[:-1](judge.model.features(x))
        logits = judge.model(images.float() / 255)
    assert features.shape == (7, 16) and features.dtype == torch.float64
    assert torch.allclose(features.float(), expected, atol=1e-6)
    assert torch.allclose(probabilities, logits.softmax(1), atol=1e-6)


def test_a_classifier_without_a_linear_layer_cannot_judge():
    with pytest.raises(ValueError, match="no linear layer"):
        last_linear(nn.Sequential(nn.Conv2d(1, 2, 3)))


def test_class_shares():
    probabilities = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [1, 0, 0]])
    assert class_shares(probabilities).tolist() == [0.75, 0.25, 0.0]


def test_scorer_floor_and_scores():
    judge = tiny_judge()
    generator = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (400, 1, 28, 28), dtype=torch.uint8, generator=generator)
    test = torch.randint(0, 256, (300, 1, 28, 28), dtype=torch.uint8, generator=generator)
    scorer = Scorer(judge, test, train, samples=200, seed=0)
    assert scorer.samples == 200
    assert scorer.floor.fid > 0  # finite samples: even real images are not at 0
    assert sum(scorer.floor.shares) == pytest.approx(1.0)
    blank = scorer.score(torch.zeros(200, 1, 28, 28, dtype=torch.uint8))
    assert blank.fid > 10 * scorer.floor.fid  # one constant image: far from the data
    assert max(blank.shares) == 1.0 and blank.metrics()["class_share_min"] == 0.0
    assert Scorer(judge, test, train[:50], samples=200, seed=0).samples == 50


def test_inception_fid_is_refused_offline_without_trying_to_download(monkeypatch):
    monkeypatch.setenv("DLND_OFFLINE", "1")
    with pytest.raises(UserError, match="downloads are off"):
        inception_fid_metric()
