"""Transfer learning: the classifier split at the cache computes what the whole network
computes, the feature cache, frozen batch norm and the unfreeze schedule, and the recipe's
model served like any image classifier."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pytest
import torch
from PIL import Image
from test_pretrained import randomise_batch_norms

from dlnd import distributed
from dlnd.checkpoint import load_model
from dlnd.cli import main
from dlnd.errors import UserError
from dlnd.launch import run_recipe
from dlnd.pretrained import load_backbone, transfer
from dlnd.serve.export import TOLERANCE
from dlnd.store import MODEL_FILE, load_tensors
from dlnd.trainer import Step, TrainConfig

QUICK = {"quick": True, "embedded": True, "device": "cpu"}


@pytest.fixture
def classifier():
    torch.manual_seed(0)
    model = transfer.transfer_classifier(load_backbone("efficientnet_lite0", pretrained=False), 3)
    randomise_batch_norms(model)
    return model.eval()


@pytest.mark.parametrize("tuned", [0, 1, 3])
def test_top_on_frozen_features_is_the_whole_classifier(classifier, tuned):
    pixels = torch.rand(2, 3, 64, 80, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        frozen = transfer.frozen_features(classifier, tuned, pixels)
        split = transfer.ClassifierTop(classifier, tuned)(frozen)
        torch.testing.assert_close(split, classifier(pixels), rtol=1e-4, atol=1e-5)
    assert split.shape == (2, 3)
    # nothing tuned: pooled features; the last 1 (head) or 3 (stage6, stage7, head) tuned:
    # the output of stage7 (stride 32) or stage5 (stride 16)
    expected = {0: (2, 1280), 1: (2, 320, 2, 3), 3: (2, 112, 4, 5)}[tuned]
    assert frozen.shape == expected


def test_tuned_stages_outside_the_network_are_refused(classifier):
    with pytest.raises(UserError, match="between 0 and 8 for efficientnet_lite0"):
        transfer.ClassifierTop(classifier, 9)


def test_views_are_the_image_and_its_mirror_and_their_probabilities_are_averaged(classifier):
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    frozen = transfer.compute_frozen_features(classifier, 0, images, torch.device("cpu"))
    top = transfer.ClassifierTop(classifier, 0)
    with torch.no_grad():
        pixels = images.float() / 255
        mirrored = classifier.features(pixels.flip(3))
        torch.testing.assert_close(frozen[:, 1], mirrored, rtol=1e-5, atol=1e-5)
        direct = (classifier(pixels).softmax(1) + classifier(pixels.flip(3)).softmax(1)) / 2
        averaged = transfer.predict_views(top, frozen)
    torch.testing.assert_close(averaged, direct, rtol=1e-4, atol=1e-6)
    examples = transfer.training_examples(frozen, torch.tensor([0, 1, 2]))
    assert len(examples) == 6 and examples.tensors[1].tolist() == [0, 0, 1, 1, 2, 2]


def test_cached_features_change_with_the_data_and_are_read_back(classifier, monkeypatch):
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    device = torch.device("cpu")
    first, cached = transfer.cached_frozen_features(classifier, "w", 0, images, device)
    assert not cached

    def no_compute(*args):
        raise AssertionError("computed although cached")

    with monkeypatch.context() as patch:
        patch.setattr(transfer, "compute_frozen_features", no_compute)
        again, cached = transfer.cached_frozen_features(classifier, "w", 0, images, device)
    assert cached and torch.equal(first, again)
    key = transfer.features_key(classifier, "w", 0, images)
    changed = images.clone()
    changed[1, 2, 5, 5] ^= 1  # one pixel
    assert transfer.features_key(classifier, "w", 0, changed) != key
    assert transfer.features_key(classifier, "other weights", 0, images) != key
    assert transfer.features_key(classifier, "w", 2, images) != key


def test_fine_tuning_waits_for_the_head_keeps_batch_norm_and_lowers_the_lr(classifier):
    """Three epochs of one step: the head alone in epoch 1, the last two stages join in
    epoch 2 with a tenth of the learning rate; frozen layers and every batch-norm statistic
    stay exactly as they were."""
    torch.manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    frozen = transfer.compute_frozen_features(classifier, 2, images, torch.device("cpu"))
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2, optimizer="adam")
    task = transfer.TransferTask(
        classifier,
        2,
        transfer.training_examples(frozen, labels),
        torch.utils.data.TensorDataset(frozen, labels),
        cfg,
        head_epochs=1,
        backbone_lr_factor=0.1,
    )
    optimizer, _ = task.optimizers(total_steps=3)["model"]
    assert [group["lr"] for group in optimizer.param_groups] == [1e-2, 1e-3]
    before = {k: v.clone() for k, v in classifier.state_dict().items()}
    step = Step(cfg, torch.device("cpu"), {"model": (optimizer, None)})

    def epoch(number):
        classifier.train()
        task.start_epoch(number)
        assert not any(m.training for m in classifier.stages.modules())
        for batch in task.train_batches(number, distributed.state()):
            task.train_step(batch, step)
        return {k: v.clone() for k, v in classifier.state_dict().items()}

    after_head = epoch(1)
    changed = {k for k in before if not torch.equal(before[k], after_head[k])}
    assert changed == {"head.weight", "head.bias"}
    after_tuning = epoch(2)
    changed = {k for k in before if not torch.equal(after_head[k], after_tuning[k])}
    assert changed and all(
        k.startswith(("head.", "stages.stage7.", "stages.head.")) for k in changed
    )
    assert not any("running" in k or "num_batches" in k for k in changed)


def test_a_missing_images_folder_is_one_sentence(tmp_path):
    with pytest.raises(UserError, match="--images .*missing is not a folder"):
        run_recipe("transfer-learning", images=str(tmp_path / "missing"), out=str(tmp_path))
    assert not (tmp_path / "transfer-learning").exists() or not any(
        (tmp_path / "transfer-learning").iterdir()
    )


def test_quick_transfer_learning_is_an_image_classifier_that_exports(tmp_path, monkeypatch):
    final = run_recipe("transfer-learning", **QUICK, out=str(tmp_path), fine_tune_blocks=1)
    run_dir = final["run_dir"]
    assert final["metrics"]["test_accuracy"] >= 0.8  # four shapes: chance is 0.25
    plots = {p.stem for p in (tmp_path / "transfer-learning").glob("*/plots/*.png")}
    assert plots >= {"learning_curves", "per_class_accuracy", "confusion_matrix", "misclassified"}
    model, meta = load_model(run_dir)
    info = meta["info"]
    assert info["task"] == "image-classification" and info["backbone"] == "efficientnet_lite0"
    assert info["input"]["height"] == 64 and info["input"]["resample"] == "bicubic"

    picture = tmp_path / "picture.png"
    Image.fromarray(np.full((50, 70, 3), 128, dtype=np.uint8)).save(picture)
    assert main(["predict", run_dir, str(picture), "--json"]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["export", run_dir, "--out", "exported"]) == 0
    card = json.loads((tmp_path / "exported" / "model_card.json").read_text())
    assert card["task"] == "image-classification" and card["classes"] == info["classes"]
    assert card["verification"]["max_abs_diff_vs_pytorch"] <= TOLERANCE
    from dlnd.serve.runtime import OnnxModel

    pixels = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(pixels).numpy()
    onnx = OnnxModel(tmp_path / "exported" / "model.onnx")(pixels.numpy())
    assert np.abs(onnx - expected).max() <= TOLERANCE


def test_resumed_fine_tuning_equals_an_uninterrupted_run(tmp_path):
    """The stages join in epoch 2 (start_epoch depends on the epoch alone), so a run resumed
    after epoch 1 ends with the same weights as one that was never interrupted."""
    flags = {**QUICK, "fine_tune_blocks": 1, "head_epochs": 1, "schedule": "none"}
    straight = run_recipe("transfer-learning", **flags, out=str(tmp_path / "a"), epochs=3)
    first = run_recipe("transfer-learning", **flags, out=str(tmp_path / "b"), epochs=1)
    resumed = run_recipe(
        "transfer-learning", **flags, out=str(tmp_path / "b"), epochs=3, resume=first["run_dir"]
    )
    assert resumed["metrics"] == {**straight["metrics"], "train_seconds": ANY}
    a, _ = load_tensors(Path(straight["run_dir"]) / MODEL_FILE)
    b, _ = load_tensors(Path(resumed["run_dir"]) / MODEL_FILE)
    assert all(torch.equal(a[key], b[key]) for key in a)
