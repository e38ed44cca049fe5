"""The shared trainer through the real command line: learning, resume after SIGKILL,
NaN handling, data-parallel training, checkpoints."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import dlnd_env, run_dlnd, start_dlnd
from hypothesis import given
from hypothesis import strategies as st

from dlnd.checkpoint import load_model, load_tensors
from dlnd.errors import UserError
from dlnd.trainer import batch_indices


def only_run(out: Path, recipe: str = "tiny") -> Path:
    (run_dir,) = list((out / recipe).iterdir())
    return run_dir


def final_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "final.json").read_text())["metrics"]


def test_tiny_recipe_learns(tmp_path):
    result = run_dlnd("run", "tiny", "--epochs", "6", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run_dir = only_run(tmp_path)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    # the training loss falls by at least a factor of 3 from the first to the last epoch
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] / 3
    assert final_metrics(run_dir)["val_accuracy"] > 0.9
    for name in ("config.json", "final.json", "model.safetensors", "checkpoint.json", "index.html"):
        assert (run_dir / name).exists(), name
    assert (run_dir / "plots" / "learning_curves.png").stat().st_size > 1000
    model, meta = load_model(run_dir)
    assert meta["recipe"] == "tiny" and meta["config"]["epochs"] == 6
    final = json.loads((run_dir / "final.json").read_text())
    assert {"torch", "numpy", "python"} <= set(final["versions"])


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    args = [
        "run",
        "tiny",
        "--epochs",
        "6",
        "--dropout",
        "0.2",
        "--seed",
        "7",
        "--schedule",
        "onecycle",
    ]
    straight = run_dlnd(*args, "--out", str(tmp_path / "a"))
    assert straight.returncode == 0, straight.stderr

    process = start_dlnd(*args, "--epoch-sleep", "0.4", "--out", str(tmp_path / "b"))
    metrics_file = None
    deadline = time.time() + 120
    while time.time() < deadline:
        found = list((tmp_path / "b").glob("tiny/*/metrics.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 3:
            metrics_file = found[0]
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert metrics_file is not None, "the run never reached epoch 3"
    assert not (metrics_file.parent / "final.json").exists(), "killed too late"

    resumed = run_dlnd("run", "tiny", "--resume", "--out", str(tmp_path / "b"))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    a, b = only_run(tmp_path / "a"), only_run(tmp_path / "b")
    assert final_metrics(a) == final_metrics(b)
    rows_a = [json.loads(x) for x in (a / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (b / "metrics.jsonl").read_text().splitlines()]
    drop = ("time_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows_a] == [
        {k: v for k, v in r.items() if k not in drop} for r in rows_b
    ]
    weights_a, _ = load_tensors(a / "model.safetensors")
    weights_b, _ = load_tensors(b / "model.safetensors")
    for name in weights_a:
        assert torch.equal(weights_a[name], weights_b[name]), name


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    result = run_dlnd("run", "tiny", "--epochs", "6", "--nan-at-epoch", "3", "--out", str(tmp_path))
    assert result.returncode == 1
    assert "loss became nan in epoch 3" in result.stderr
    assert "Last good checkpoint: epoch 2" in result.stderr
    assert "Traceback" not in result.stderr
    run_dir = only_run(tmp_path)
    assert not (run_dir / "final.json").exists()
    model, meta = load_model(run_dir)
    assert meta["epoch"] in (1, 2)  # the best of the good epochs
    assert all(torch.isfinite(p).all() for p in model.parameters())
    _, state = load_tensors(run_dir / "trainer_state.safetensors")
    assert state["epoch"] == 2
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    result = run_dlnd("run", "tiny", "--epochs", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run_dir = only_run(tmp_path)
    data = (run_dir / "model.safetensors").read_bytes()
    (run_dir / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="unreadable or corrupt"):
        load_model(run_dir)


@pytest.mark.slow
def test_ddp_two_processes_match_one_process(tmp_path):
    common = [
        "run",
        "tiny",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--optimizer",
        "sgd",
        "--lr",
        "0.1",
    ]
    single = run_dlnd(
        *common, "--out", str(tmp_path / "single"), "--dump-params", str(tmp_path / "p1")
    )
    assert single.returncode == 0, single.stderr
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=127.0.0.1:0",
    ]
    ddp = subprocess.run(
        [
            *torchrun,
            "-m",
            "dlnd",
            *common,
            "--out",
            str(tmp_path / "ddp"),
            "--dump-params",
            str(tmp_path / "p2"),
        ],
        env=dlnd_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    rank0, _ = load_tensors(tmp_path / "p2" / "rank0.safetensors")
    rank1, _ = load_tensors(tmp_path / "p2" / "rank1.safetensors")
    one, _ = load_tensors(tmp_path / "p1" / "rank0.safetensors")
    for name in one:
        assert torch.equal(rank0[name], rank1[name]), f"ranks differ in {name}"
        relative = (rank0[name] - one[name]).norm() / one[name].norm()
        assert relative < 1e-5, f"{name}: relative difference {relative:.2e}"
    # only rank 0 writes a run directory, and its metrics cover the whole validation set
    (ddp_run,) = list((tmp_path / "ddp" / "tiny").iterdir())
    single_metrics = final_metrics(only_run(tmp_path / "single"))
    assert final_metrics(ddp_run)["val_accuracy"] == pytest.approx(
        single_metrics["val_accuracy"], abs=1e-9
    )


@given(
    n=st.integers(1, 300),
    batch=st.integers(1, 64),
    world=st.integers(1, 4),
    seed=st.integers(0, 10),
    epoch=st.integers(0, 5),
)
def test_shards_of_each_batch_make_up_the_single_process_batch(n, batch, world, seed, epoch):
    one = batch_indices(n, batch, shuffle=True, seed=seed, epoch=epoch)
    shards = [
        batch_indices(n, batch, shuffle=True, seed=seed, epoch=epoch, rank=r, world=world)
        for r in range(world)
    ]
    assert all(len(s) == len(shards[0]) for s in shards)
    for i, parts in enumerate(zip(*shards)):
        joined = sorted(torch.cat(parts).tolist())
        expected = one[i][: len(one[i]) - len(one[i]) % world]
        assert joined == sorted(expected.tolist())
        assert len({len(p) for p in parts}) == 1  # equal shard sizes keep DDP's mean exact
    # a single process sees every example exactly once per epoch
    assert sorted(torch.cat(one).tolist()) == list(range(n))


def test_epoch_order_depends_on_seed_and_epoch_only():
    a = batch_indices(100, 10, shuffle=True, seed=3, epoch=2)
    b = batch_indices(100, 10, shuffle=True, seed=3, epoch=2)
    c = batch_indices(100, 10, shuffle=True, seed=3, epoch=3)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_spirals_recipe_through_cli(tmp_path):
    result = run_dlnd("run", "spirals", "--quick", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run_dir = only_run(tmp_path, "spirals")
    assert final_metrics(run_dir)["val_accuracy"] > 0.85
    assert (run_dir / "plots" / "decision_regions.png").exists()
    shutil.rmtree(tmp_path)
