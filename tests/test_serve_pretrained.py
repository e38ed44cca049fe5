""" "What is in this photo": the ImageNet backbone exported with ``dlnd export
pretrained:efficientnet_lite0`` and a transfer-learning run, each served and asked about
photos; the API's probabilities are those of the PyTorch model on the same pixels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from test_pretrained import randomise_batch_norms

from dlnd.checkpoint import save_model
from dlnd.cli import main
from dlnd.pretrained import load_backbone
from dlnd.pretrained.recipes import build_transfer_model
from dlnd.pretrained.registry import OFFLINE_DEFAULT
from dlnd.serve.app import create_app
from dlnd.serve.preprocess import decode_image

pytestmark = pytest.mark.slow


def served_probabilities(client, name: str, photo: bytes, classes: int) -> np.ndarray:
    """The API's probability of every class for one uploaded photo, by class index."""
    answer = client.post(
        f"/v1/models/{name}/predict",
        files={"file": ("photo.jpg", photo)},
        data={"top_k": str(classes)},
    )
    assert answer.status_code == 200, answer.text
    probabilities = np.zeros(classes)
    for prediction in answer.json()["predictions"]:
        probabilities[prediction["index"]] = prediction["probability"]
    return probabilities


def pytorch_probabilities(model: torch.nn.Module, photo: bytes, spec: dict) -> np.ndarray:
    """softmax of the PyTorch model on the photo prepared as the card says."""
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(decode_image(photo, spec))[None])
    return torch.softmax(logits, dim=1)[0].numpy()


def test_the_served_imagenet_network_names_ants_and_bees(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", f"pretrained:{OFFLINE_DEFAULT}", "--out", "lite0"]) == 0
    val = shared_data / "hymenoptera" / "val"
    photos = [(p, "ant") for p in sorted((val / "ants").glob("*.jpg"))[:3]]
    photos += [(p, "bee") for p in sorted((val / "bees").glob("*.jpg"))[:3]]
    lite0 = load_backbone(OFFLINE_DEFAULT)
    with TestClient(create_app([tmp_path / "lite0"])) as client:
        spec = client.get(f"/v1/models/{OFFLINE_DEFAULT}").json()["input"]
        for path, label in photos:
            photo = Path(path).read_bytes()
            served = served_probabilities(client, OFFLINE_DEFAULT, photo, 1000)
            np.testing.assert_allclose(served, pytorch_probabilities(lite0, photo, spec), atol=1e-5)
            answer = client.post(
                f"/v1/models/{OFFLINE_DEFAULT}/predict", files={"file": ("p.jpg", photo)}
            ).json()["predictions"]
            assert label in [p["label"] for p in answer], (path, answer)


TRANSFER_INFO = {  # what a quick transfer-learning run on the embedded shapes saves
    "task": "image-classification",
    "classes": ["circle", "cross", "square", "triangle"],
    "input": {
        "channels": 3,
        "height": 64,
        "width": 64,
        "color": "RGB",
        "resize": "center-crop",
        "crop_fraction": 1.0,
        "resample": "bicubic",
        "invert": False,
        "mean": [127 / 255] * 3,
        "std": [128 / 255] * 3,
    },
    "model": "transfer",
    "backbone": OFFLINE_DEFAULT,
    "fine_tune_blocks": 1,
}


def save_transfer_run(run_dir: Path) -> torch.nn.Module:
    """A transfer-learning run folder holding the recipe's own model class with seeded
    weights (tests/test_transfer_learning.py trains and exports a real one)."""
    torch.manual_seed(0)
    model = build_transfer_model({}, TRANSFER_INFO)
    randomise_batch_norms(model)
    meta = {"recipe": "transfer-learning", "config": {}, "info": TRANSFER_INFO, "epoch": 1}
    save_model(run_dir, model.state_dict(), meta)
    return model.eval()


def test_a_transfer_learning_run_serves_like_any_image_classifier(tmp_path):
    model = save_transfer_run(tmp_path / "run")
    classes = TRANSFER_INFO["classes"]
    rng = np.random.default_rng(0)
    photos = []
    for _ in range(3):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(buffer, "JPEG")
        photos.append(buffer.getvalue())
    with TestClient(create_app([tmp_path / "run"])) as client:  # exported on start
        (listed,) = client.get("/v1/models").json()["models"]
        assert listed["task"] == "image-classification" and listed["classes"] == classes
        assert listed["recipe"] == "transfer-learning"
        for photo in photos:
            served = served_probabilities(client, listed["name"], photo, len(classes))
            expected = pytorch_probabilities(model, photo, listed["input"])
            np.testing.assert_allclose(served, expected, atol=1e-5)
