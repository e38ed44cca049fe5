"""Kill-then-``--resume`` and data-parallel equality for tasks that are not supervised
classification: a two-optimizer GAN and a language model with carried state."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import dlnd_env, run_dlnd, start_dlnd

from dlnd.store import MODEL_FILE, STATE_FILE, load_tensors, read_header


def only_run(out: Path, recipe: str) -> Path:
    (run_dir,) = list((out / recipe).iterdir())
    return run_dir


def rows_without_times(run_dir: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "time_s"} for row in rows]


def kill_after_epoch(out: Path, recipe: str, args: list[str], epoch: int) -> None:
    """Start a run and SIGKILL it once ``epoch`` epochs are on disk (before it finishes)."""
    process = start_dlnd("run", recipe, *args, "--epoch-sleep", "0.5", "--out", str(out))
    deadline = time.time() + 120
    metrics_file = None
    while time.time() < deadline and metrics_file is None:
        for found in out.glob(f"{recipe}/*/metrics.jsonl"):
            if len(found.read_text().splitlines()) >= epoch:
                metrics_file = found
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert metrics_file is not None, f"the run never reached epoch {epoch}"
    assert not (metrics_file.parent / "final.json").exists(), "killed too late"


@pytest.mark.parametrize(
    ("recipe", "args"),
    [
        ("toy-gan", ["--epochs", "5", "--seed", "3"]),
        ("toy-lm", ["--epochs", "5", "--seed", "3", "--schedule", "onecycle"]),
    ],
)
def test_killed_and_resumed_equals_uninterrupted(tmp_path, recipe, args):
    straight = run_dlnd("run", recipe, *args, "--out", str(tmp_path / "a"))
    assert straight.returncode == 0, straight.stderr
    kill_after_epoch(tmp_path / "b", recipe, args, epoch=2)
    resumed = run_dlnd("run", recipe, "--resume", "--out", str(tmp_path / "b"))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    a, b = only_run(tmp_path / "a", recipe), only_run(tmp_path / "b", recipe)
    assert rows_without_times(a) == rows_without_times(b)
    final_a = json.loads((a / "final.json").read_text())["metrics"]
    assert final_a == json.loads((b / "final.json").read_text())["metrics"]
    for name in (MODEL_FILE, STATE_FILE):
        tensors_a, _ = load_tensors(a / name)
        tensors_b, _ = load_tensors(b / name)
        assert tensors_a.keys() == tensors_b.keys()
        for key in tensors_a:
            assert torch.equal(tensors_a[key], tensors_b[key]), f"{name}: {key}"


@pytest.mark.slow
def test_ddp_two_processes_match_one_process_with_two_optimizers(tmp_path):
    common = ["run", "toy-gan", "--epochs", "2", "--batch-size", "64", "--optimizer", "sgd"]
    single = run_dlnd(
        *common, "--out", str(tmp_path / "one"), "--dump-params", str(tmp_path / "p1")
    )
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
            "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0",
            "-m", "dlnd", *common, "--out", str(tmp_path / "ddp"),
            "--dump-params", str(tmp_path / "p2"),
        ],
        env=dlnd_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, _ = load_tensors(tmp_path / "p1" / "rank0.safetensors")
    rank0, _ = load_tensors(tmp_path / "p2" / "rank0.safetensors")
    rank1, _ = load_tensors(tmp_path / "p2" / "rank1.safetensors")
    assert {k.split(".")[0] for k in one} == {"generator", "discriminator"}
    for name in one:
        assert torch.equal(rank0[name], rank1[name]), f"ranks differ in {name}"
        relative = (rank0[name] - one[name]).norm() / one[name].norm()
        assert relative < 1e-5, f"{name}: relative difference {relative:.2e}"
    # only rank 0 writes; both optimizers' states are in the resume file under their names
    ddp_run = only_run(tmp_path / "ddp", "toy-gan")
    _, meta = read_header(ddp_run / STATE_FILE)
    assert set(meta["optimizers"]) == {"generator", "discriminator"}
    rows_one = rows_without_times(only_run(tmp_path / "one", "toy-gan"))
    rows_ddp = rows_without_times(ddp_run)
    for row_one, row_ddp in zip(rows_one, rows_ddp, strict=True):
        for key in ("train_d_loss", "train_g_loss", "fake_mean"):
            assert row_ddp[key] == pytest.approx(row_one[key], rel=1e-5), key
