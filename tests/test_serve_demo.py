"""The demo models that ship with dlnd: small, described by their cards, and as accurate on
real held-out images as their training runs reported."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from serve_fixtures import cifar_test_jpegs

from dlnd.data.readers import load_mnist
from dlnd.serve.app import create_app
from dlnd.serve.classifier import softmax
from dlnd.serve.export import CARD_FILE
from dlnd.serve.preprocess import decode_image
from dlnd.serve.registry import demo_model_dirs
from dlnd.serve.runtime import OnnxModel

DEMOS = {folder.name: folder for folder in demo_model_dirs()}
MAX_BYTES = 5 * 1024 * 1024


def card_of(name: str) -> dict:
    return json.loads((DEMOS[name] / CARD_FILE).read_text())


def test_the_mnist_and_cifar10_demos_ship():
    assert {"mnist-cnn", "cifar10-cnn"} <= set(DEMOS)


@pytest.mark.parametrize("name", sorted(DEMOS))
def test_each_demo_is_small_and_matches_its_card(name):
    card = card_of(name)
    model = (DEMOS[name] / card["file"]).read_bytes()
    assert len(model) < MAX_BYTES
    assert card["sha256"] == hashlib.sha256(model).hexdigest()
    assert card["name"] == card["recipe"] == name
    assert card["task"] == "image-classification" and card["format"] == "onnx"
    assert 0.0 < card["metrics"]["final"]["test_accuracy"] <= 1.0


def test_the_mnist_demo_reaches_its_reported_accuracy_on_the_held_out_digits(shared_data):
    """The 2,000 test digits the recipe held out (same split and seed) give the run's
    reported test accuracy: the shipped file is the trained model."""
    split = load_mnist(shared_data, seed=card_of("mnist-cnn")["config"]["seed"])
    model = OnnxModel(DEMOS["mnist-cnn"] / "model.onnx")
    pixels = (split.test_images.astype(np.float32) / 255)[:, None]
    accuracy = float((model(pixels).argmax(1) == split.test_labels).mean())
    assert accuracy == pytest.approx(
        card_of("mnist-cnn")["metrics"]["final"]["test_accuracy"], abs=0.003
    )
    assert accuracy >= 0.97


def test_the_mnist_demo_answers_uploads_like_pixel_arrays(shared_data):
    split = load_mnist(shared_data, seed=0)
    app = create_app([DEMOS["mnist-cnn"]])
    with TestClient(app) as client:
        for image in split.test_images[:20]:
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, "PNG")
            upload = client.post(
                "/v1/models/mnist-cnn/predict",
                data={"top_k": "3"},
                files={"file": ("digit.png", buffer.getvalue(), "image/png")},
            )
            pixels = client.post(
                "/v1/models/mnist-cnn/predict", json={"pixels": (image / 255).tolist(), "top_k": 3}
            )
            assert upload.json() == pixels.json()


def test_the_cifar10_demo_classifies_real_test_photos(shared_data):
    """500 real CIFAR-10 test JPEGs through the server's own preprocessing: about the
    accuracy the run reported (which averaged each photo with its mirror image)."""
    card = card_of("cifar10-cnn")
    photos = cifar_test_jpegs(shared_data, per_class=50)
    model = OnnxModel(DEMOS["cifar10-cnn"] / "model.onnx")
    x = np.stack([decode_image(data, card["input"]) for _, data in photos])
    predicted = [card["classes"][i] for i in model(x).argmax(1)]
    accuracy = np.mean([p == label for p, (label, _) in zip(predicted, photos, strict=True)])
    assert accuracy >= card["metrics"]["final"]["test_accuracy"] - 0.06
    assert np.allclose(softmax(model(x[:1])[0]).sum(), 1.0)
