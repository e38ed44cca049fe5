"""Activations and error functions of dlnd.scratch against torch, including extreme inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dlnd.scratch import activations, losses

EXTREME = np.array([[-1e4, 0.0, 1e4], [800.0, -800.0, 3.0], [1e-30, -1e-30, 0.0]])
finite_logits = arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(1, 5)),
    elements=st.floats(-1e3, 1e3, allow_nan=False),
)


@given(finite_logits)
@settings(max_examples=60, deadline=None)
def test_softmax_and_log_softmax_match_torch(z):
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        probabilities, log_probabilities = losses.softmax(z), losses.log_softmax(z)
    reference = torch.from_numpy(z)
    np.testing.assert_allclose(
        probabilities, torch.softmax(reference, 1).numpy(), rtol=1e-12, atol=1e-300
    )
    np.testing.assert_allclose(
        log_probabilities, torch.log_softmax(reference, 1).numpy(), rtol=1e-12, atol=1e-12
    )


def test_cross_entropy_is_finite_and_exact_for_extreme_logits():
    labels = np.array([0, 1, 2])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        ours = losses.categorical_cross_entropy(EXTREME, labels)
    reference = torch.nn.functional.cross_entropy(
        torch.from_numpy(EXTREME), torch.from_numpy(labels)
    )
    assert np.isfinite(ours)
    assert ours == pytest.approx(float(reference), rel=1e-12)


def test_binary_cross_entropy_from_logits_is_finite_and_exact_for_extreme_logits():
    targets = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        ours = losses.binary_cross_entropy(EXTREME, targets)
    reference = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(EXTREME), torch.from_numpy(targets)
    )
    assert ours == pytest.approx(float(reference), rel=1e-12)


def test_log_loss_clips_probabilities_of_zero_and_one():
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = losses.log_loss(np.array([0.0, 1.0, 0.5]), np.array([1.0, 0.0, 1.0]))
    assert np.isfinite(loss) and loss > 9  # -log(1e-12) = 27.6 for the two confident mistakes
    assert losses.log_loss(np.array([0.8]), np.array([1.0])) == pytest.approx(-np.log(0.8))


def test_mean_squared_error_averages_over_all_elements():
    predictions, targets = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 2.0], [3.0, 6.0]])
    assert losses.mean_squared_error(predictions, targets) == pytest.approx((1 + 0 + 0 + 4) / 4)


@pytest.mark.parametrize("output", sorted(losses.OUTPUT_LAYERS))
def test_fused_loss_and_delta_equal_the_separate_loss(output):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 3)) * 5
    targets = rng.integers(0, 3, 8) if output == "softmax" else rng.random((8, 3)).round()
    layer = losses.OUTPUT_LAYERS[output]
    delta = np.empty_like(logits)
    assert layer.loss_and_delta(logits, targets, delta) == pytest.approx(
        layer.loss(logits, targets), rel=1e-12
    )


def test_sigmoid_is_stable_and_matches_torch():
    z = np.array([-1e4, -745.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1e4])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        ours = activations.sigmoid(z)
    np.testing.assert_allclose(
        ours, torch.sigmoid(torch.from_numpy(z)).numpy(), rtol=1e-12, atol=1e-300
    )
    assert activations.sigmoid(np.float32([3.0])).dtype == np.float32


def test_step_is_the_perceptron_threshold():
    np.testing.assert_array_equal(activations.step(np.array([-2.0, -1e-9, 0.0, 4.0])), [0, 0, 1, 1])


@pytest.mark.parametrize("name", sorted(activations.HIDDEN_ACTIVATIONS))
def test_activation_derivatives_match_torch(name):
    activate, derivative = activations.HIDDEN_ACTIVATIONS[name]
    z = np.random.default_rng(1).normal(size=(5, 4)) * 3
    upstream = np.random.default_rng(2).normal(size=(5, 4))
    z_torch = torch.from_numpy(z).requires_grad_()
    getattr(torch, name)(z_torch).backward(torch.from_numpy(upstream))
    delta = upstream.copy()
    derivative(activate(z), delta)
    np.testing.assert_allclose(delta, z_torch.grad.numpy(), rtol=1e-12, atol=1e-15)
