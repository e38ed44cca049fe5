"""The generative recipes end to end on embedded data: figures and metrics of a GAN run, an
exact ``--resume`` after SIGKILL, ``dlnd sample``, the user errors, and the two lessons."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import dlnd_env, run_dlnd, start_dlnd
from PIL import Image

from dlnd import run_recipe
from dlnd.checkpoint import load_model
from dlnd.cli import main
from dlnd.errors import UserError
from dlnd.store import MODEL_FILE, STATE_FILE, load_tensors

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory) -> Path:
    """A quick mnist-cnn run on the embedded digits: the judge the GAN tests share."""
    out = tmp_path_factory.mktemp("judge")
    final = run_recipe("mnist-cnn", quick=True, embedded=True, out=str(out), device="cpu")
    return Path(final["run_dir"])


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory) -> tuple[dict, Path]:
    """A quick dcgan run that trains its own judge."""
    out = tmp_path_factory.mktemp("dcgan")
    final = run_recipe("dcgan", quick=True, embedded=True, out=str(out), device="cpu", epochs=3)
    return final["metrics"], Path(final["run_dir"])


def test_a_gan_run_writes_its_figures_metrics_and_judge(dcgan_run):
    metrics, run_dir = dcgan_run
    assert metrics["epochs"] == 3
    assert 0 < metrics["fid_floor"] < metrics["fid"]
    assert metrics["fid_over_floor"] == pytest.approx(metrics["fid"] / metrics["fid_floor"])
    assert 0 <= metrics["class_share_min"] <= 0.1 and 0.1 <= metrics["confidence"] <= 1
    plots = {p.name for p in (run_dir / "plots").iterdir()}
    assert plots >= {
        "learning_curves.png",
        "samples.png",
        "latent_interpolation.png",
        "class_shares.png",
        "samples_over_epochs.gif",
        "nearest_training_images.png",
    }
    # the copying check: a 3-epoch GAN's samples are farther from the training images than
    # real test images are (it cannot have learnt to copy them)
    assert metrics["nearest_train_ratio"] == pytest.approx(
        metrics["nearest_train_generated"] / metrics["nearest_train_test"]
    )
    assert metrics["nearest_train_ratio"] > 1
    with Image.open(run_dir / "plots" / "samples_over_epochs.gif") as animation:
        assert animation.n_frames == 3
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        "epoch_001.png",
        "epoch_002.png",
        "epoch_003.png",
    ]
    assert "samples_over_epochs.gif" in (run_dir / "index.html").read_text()
    assert "real test" in (run_dir / "texts" / "class_shares.txt").read_text()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"train_d_loss", "train_g_loss", "train_d_real", "train_d_fake", "fid"} <= set(rows[0])
    assert rows[-1]["fid"] == pytest.approx(metrics["fid"])  # the last weights are kept
    # the judge: a dlnd run of its own, named in the checkpoint
    gan, meta = load_model(run_dir)
    judge = meta["info"]["judge"]
    assert judge["recipe"] == "mnist-cnn" and judge["run_dir"] == str(run_dir / "judge")
    assert judge["test_accuracy"] > 0.5 and "last linear layer" in judge["features"]
    assert (run_dir / "judge" / "final.json").exists()
    assert meta["info"]["fid_floor"] == pytest.approx(metrics["fid_floor"])
    assert gan.generator.generate(4, seed=0).shape == (4, 1, 28, 28)


def test_the_course_gan_with_a_given_judge(judge_dir, tmp_path):
    final = run_recipe(
        "gan-mnist",
        quick=True,
        embedded=True,
        out=str(tmp_path),
        device="cpu",
        judge=str(judge_dir),
    )
    run_dir = Path(final["run_dir"])
    assert not (run_dir / "judge").exists()
    _, meta = load_model(run_dir)
    assert meta["info"]["model"] == "course" and meta["info"]["judge"]["run_dir"] == str(judge_dir)
    assert final["metrics"]["fid"] > 0


def only_run(out: Path, recipe: str) -> Path:
    (run_dir,) = list((out / recipe).iterdir())
    return run_dir


def rows_without_times(run_dir: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "time_s"} for row in rows]


def test_a_killed_and_resumed_gan_ends_equal_to_an_uninterrupted_one(judge_dir, tmp_path):
    args = ["run", "dcgan", "--quick", "--embedded", "--epochs", "5", "--seed", "2"]
    args += ["--judge", str(judge_dir), "--device", "cpu"]
    straight = run_dlnd(*args, "--out", str(tmp_path / "a"))
    assert straight.returncode == 0, straight.stderr

    process = start_dlnd(*args, "--out", str(tmp_path / "b"))
    deadline, metrics_file = time.time() + 120, tmp_path / "none"
    while time.time() < deadline and not metrics_file.exists():
        for found in (tmp_path / "b").glob("dcgan/*/metrics.jsonl"):
            if len(found.read_text().splitlines()) >= 2:
                metrics_file = found
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert metrics_file.exists(), "the run never reached epoch 2"
    assert not (metrics_file.parent / "final.json").exists(), "killed too late"

    resumed = run_dlnd("run", "dcgan", "--resume", "--out", str(tmp_path / "b"))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    a, b = only_run(tmp_path / "a", "dcgan"), only_run(tmp_path / "b", "dcgan")
    assert rows_without_times(a) == rows_without_times(b)  # losses, D outputs, FID, shares
    metrics_a = json.loads((a / "final.json").read_text())["metrics"]
    metrics_b = json.loads((b / "final.json").read_text())["metrics"]
    metrics_a.pop("train_seconds"), metrics_b.pop("train_seconds")
    assert metrics_a == metrics_b
    for name in (MODEL_FILE, STATE_FILE):
        tensors_a, _ = load_tensors(a / name)
        tensors_b, _ = load_tensors(b / name)
        assert tensors_a.keys() == tensors_b.keys()
        for key in tensors_a:
            assert torch.equal(tensors_a[key], tensors_b[key]), f"{name}: {key}"
    for epoch in range(1, 6):  # the fixed-noise grids, also those drawn after the resume
        grid = f"samples/epoch_{epoch:03d}.png"
        assert (a / grid).read_bytes() == (b / grid).read_bytes(), grid


def call(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse exits on its own errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sample_writes_the_same_images_for_the_same_seed(dcgan_run, tmp_path, capsys):
    _, run_dir = dcgan_run
    outputs = []
    for name, seed in (("one", "7"), ("two", "7"), ("three", "8")):
        out = tmp_path / name
        code, stdout, stderr = call(capsys, "sample", str(run_dir), "--n", "70", "--seed", seed,
                                    "--out", str(out))  # fmt: skip
        assert code == 0, stderr
        assert stdout.split() == [str(out / "samples.png"), str(out / "samples.npz")]
        with np.load(out / "samples.npz", allow_pickle=False) as arrays:
            outputs.append(arrays["images"])
    assert outputs[0].dtype == np.uint8 and outputs[0].shape == (70, 1, 28, 28)
    assert np.array_equal(outputs[0], outputs[1]) and not np.array_equal(outputs[0], outputs[2])
    with Image.open(tmp_path / "one" / "samples.png") as grid:
        assert grid.size[0] > 28 * 8
    gan, _ = load_model(run_dir)
    assert np.array_equal(gan.generator.generate(70, seed=7).numpy(), outputs[0])


def test_sample_through_the_command_line(dcgan_run, tmp_path):
    result = run_dlnd("sample", str(dcgan_run[1]), "--n", "5", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "samples.npz", allow_pickle=False) as arrays:
        assert arrays["images"].shape == (5, 1, 28, 28)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "0"], "expected a positive whole number"),
        (["--n", "50001"], "--n is at most 50,000"),
        (["--seed", "-1"], "--seed must be from 0 to 2**63 - 1 for images"),
        (["--prime", "x"], "--prime does not apply to dcgan, whose model writes images"),
        (["--bf16"], "--bf16 does not apply to dcgan, whose model writes images"),
    ],
)
def test_sample_refuses_bad_flags(dcgan_run, tmp_path, capsys, args, message):
    code, _, err = call(capsys, "sample", str(dcgan_run[1]), *args, "--out", str(tmp_path))
    assert code == 2 and message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_sample_refuses_a_run_that_does_not_generate(judge_dir, tmp_path, capsys):
    code, _, err = call(capsys, "sample", str(judge_dir), "--out", str(tmp_path))
    assert code == 2
    assert "run of mnist-cnn, which does not generate" in err
    code, _, err = call(capsys, "sample", str(tmp_path / "nothing"))
    assert code == 2 and "is not a run directory" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"image_size": 32}, "--image-size applies to --dataset folder"),
        ({"dataset": "folder"}, "needs --data-dir DIR"),
        ({"inception_fid": True}, "downloads are off"),
    ],
)
def test_gan_user_errors(flags, message, tmp_path):
    with pytest.raises(UserError, match=message):
        run_recipe("dcgan", quick=True, out=str(tmp_path), device="cpu", **flags)
    assert not list((tmp_path / "dcgan").iterdir())  # refused: no run folder left


def test_a_judge_must_take_the_gan_s_images(judge_dir, tmp_path):
    with pytest.raises(UserError, match=r"takes images of shape \(1, 28, 28\)"):
        run_recipe(
            "dcgan", quick=True, embedded=True, dataset="cifar10", judge=str(judge_dir),
            out=str(tmp_path), device="cpu",
        )  # fmt: skip


def test_dcgan_on_a_folder_of_photos(judge_dir, tmp_path):
    final = run_recipe(
        "dcgan", quick=True, embedded=True, dataset="folder", image_size=24, epochs=1,
        out=str(tmp_path), device="cpu",
    )  # fmt: skip
    gan, meta = load_model(final["run_dir"])
    assert meta["info"]["image_shape"] == [3, 24, 24]
    assert meta["info"]["judge"]["recipe"] == "image-classifier"
    assert gan.generator.generate(2, seed=0).shape == (2, 3, 24, 24)


def test_two_processes_train_a_gan_and_score_it_once(judge_dir, tmp_path):
    result = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
            "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0",
            "-m", "dlnd", "run", "dcgan", "--quick", "--embedded", "--epochs", "2",
            "--judge", str(judge_dir), "--device", "cpu", "--out", str(tmp_path),
        ],
        env=dlnd_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run(tmp_path, "dcgan")
    rows = rows_without_times(run_dir)
    assert len(rows) == 2 and all(row["fid"] > 0 for row in rows)
    assert (run_dir / "plots" / "samples_over_epochs.gif").exists()


# --- the lessons ---------------------------------------------------------------------------------


def test_weight_init_lesson_zeros_and_ones_stay_at_chance(tmp_path):
    final = run_recipe("weight-init", quick=True, embedded=True, out=str(tmp_path), device="cpu")
    metrics, run_dir = final["metrics"], Path(final["run_dir"])
    for stuck in ("zeros", "ones"):
        assert metrics[f"val_accuracy_{stuck}"] < 0.2, metrics
    for learns in ("general_rule", "normal_rule", "xavier", "he", "default"):
        assert metrics[f"val_accuracy_{learns}"] > 0.4, metrics
    assert "general rule" in (run_dir / "texts" / "results.txt").read_text()
    assert (run_dir / "plots" / "learning_curves.png").exists()
    networks, meta = load_model(run_dir)
    assert sorted(dict(networks.named_children())) == sorted(meta["info"]["networks"])


def test_batch_norm_lesson_reports_both_networks_and_both_modes(tmp_path):
    final = run_recipe("batch-norm", quick=True, embedded=True, out=str(tmp_path), device="cpu")
    metrics = final["metrics"]
    assert metrics["val_accuracy_batch_norm"] > metrics["val_accuracy_plain"]
    assert metrics["test_accuracy_batch_norm_eval_mode"] > 0.5
    # four images are too few to estimate a mean and a variance: train mode suffers
    assert (
        metrics["test_accuracy_batch_norm_batches_of_4"]
        < metrics["test_accuracy_batch_norm_eval_mode"]
    )
    table = (Path(final["run_dir"]) / "texts" / "results.txt").read_text()
    assert "train mode, batches of 4" in table
