"""The shared loop itself, in process: a RunContext in a temporary folder, no subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from toy_tasks import GanTask, LanguageModelTask, TinyLM, ToyGan, gan_data

from dlnd.distributed import DistState
from dlnd.errors import TrainingDiverged, UserError
from dlnd.loop import Monitor, Step, Task, train
from dlnd.recipes import Recipe
from dlnd.runs import RunContext
from dlnd.store import MODEL_FILE, STATE_FILE, load_tensors, read_header
from dlnd.trainer import TrainConfig, make_optimizer


def context(run_dir: Path, name: str = "scripted", resumed: bool = False) -> RunContext:
    recipe = Recipe(name=name, summary="", dataset="", target="", run=lambda ctx: {})
    run_dir.mkdir(parents=True, exist_ok=True)
    return RunContext(recipe=recipe, cfg={"seed": 0}, run_dir=run_dir, resumed=resumed)


class ScriptedTask(Task):
    """One weight trained towards 5; each epoch reports a ``score`` read from a script, so
    that which epoch is best is known in advance."""

    def __init__(self, scores, monitor, cfg, nan_at_epoch=0):
        self.layer = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(self.layer.weight)
        self.scores, self.monitor, self.cfg, self.nan_at_epoch = scores, monitor, cfg, nan_at_epoch
        self.snapshots: dict[int, torch.Tensor] = {}
        self.epoch = 0

    def modules(self):
        return {"model": self.layer}

    def optimizers(self, total_steps):
        return {"model": (torch.optim.SGD(self.layer.parameters(), lr=0.01), None)}

    def start_epoch(self, epoch):
        self.epoch = epoch

    def train_batches(self, epoch, dist):
        return [torch.ones(4, 1)] * 3

    def train_step(self, batch, step):
        loss = (self.layer(batch) - 5).pow(2).mean()
        if self.epoch == self.nan_at_epoch:
            loss = loss * float("nan")
        step.update("model", loss)
        return {"loss": loss.detach()}

    def end_epoch(self, epoch, ctx):
        self.snapshots[epoch] = self.layer.weight.detach().clone()
        return {"score": self.scores[epoch - 1]}


def run_scripted(tmp_path, scores, monitor, patience=0, nan_at_epoch=0):
    cfg = TrainConfig(epochs=len(scores), patience=patience, device="cpu")
    task = ScriptedTask(scores, monitor, cfg, nan_at_epoch)
    result = train(context(tmp_path), task, cfg)
    return task, result


@pytest.mark.parametrize(
    ("scores", "mode", "best"),
    [([0.1, 0.5, 0.3, 0.2], "max", 2), ([0.5, 0.2, 0.4, 0.1], "min", 4), ([3, 1, 2], "min", 2)],
)
def test_best_weights_follow_the_monitor_in_both_directions(tmp_path, scores, mode, best):
    task, result = run_scripted(tmp_path, scores, Monitor("score", mode))
    assert result.best_epoch == best
    assert torch.equal(result.model.weight, task.snapshots[best])
    saved, meta = load_tensors(tmp_path / MODEL_FILE)
    assert torch.equal(saved["weight"], task.snapshots[best])
    assert meta["epoch"] == best and meta["metrics"]["score"] == scores[best - 1]
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == best


def test_early_stopping_stops_after_patience_and_restores_the_best(tmp_path):
    scores = [0.1, 0.5, 0.4, 0.3, 0.9, 1.0]
    task, result = run_scripted(tmp_path, scores, Monitor("score", "max"), patience=2)
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert result.stopped_early and result.best_epoch == 2
    assert torch.equal(result.model.weight, task.snapshots[2])


def test_without_a_monitor_the_last_weights_are_kept(tmp_path):
    task, result = run_scripted(tmp_path, [0.9, 0.1, 0.5], None)
    assert result.best_epoch == 3
    assert torch.equal(load_tensors(tmp_path / MODEL_FILE)[0]["weight"], task.snapshots[3])


def test_patience_needs_a_monitor(tmp_path):
    with pytest.raises(UserError, match="--patience"):
        run_scripted(tmp_path, [0.1, 0.2], None, patience=1)


def test_a_monitored_metric_that_is_never_reported_is_named(tmp_path):
    with pytest.raises(KeyError, match="'val_bleu' is not among this epoch's metrics"):
        run_scripted(tmp_path, [0.1, 0.2], Monitor("val_bleu", "max"))


def test_monitor_mode_is_checked():
    with pytest.raises(ValueError, match="'min' or 'max'"):
        Monitor("val_loss", "lowest")


def test_nan_loss_stops_and_the_last_good_checkpoint_stays(tmp_path):
    with pytest.raises(TrainingDiverged) as raised:
        run_scripted(tmp_path, [0.1, 0.2, 0.3], Monitor("score", "max"), nan_at_epoch=2)
    message = str(raised.value)
    assert "training loss became nan in epoch 2" in message
    assert f"Last good checkpoint: epoch 1 in {tmp_path}" in message
    _, state = read_header(tmp_path / STATE_FILE)
    assert state["epoch"] == 1
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
    assert torch.isfinite(load_tensors(tmp_path / MODEL_FILE)[0]["weight"]).all()


def test_nan_in_the_first_epoch_says_there_is_no_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match="No checkpoint was written yet"):
        run_scripted(tmp_path, [0.1, 0.2], Monitor("score", "max"), nan_at_epoch=1)


def one_weight_step(clip_grad: float = 0.0, optimizer: str = "sgd"):
    weight = nn.Parameter(torch.zeros(()))
    cfg = TrainConfig(clip_grad=clip_grad, lr=0.1, optimizer=optimizer)
    made = (
        torch.optim.LBFGS([weight], lr=1.0)
        if optimizer == "lbfgs"
        else make_optimizer(cfg, [weight])
    )
    return weight, Step(cfg, torch.device("cpu"), {"w": (made, None)})


def test_update_zeroes_backpropagates_clips_and_steps():
    weight, step = one_weight_step(clip_grad=1.0)
    for _ in range(2):  # a second update must not add the first one's gradient
        step.update("w", 100 * weight)  # dL/dw = 100, clipped to norm 1, times lr 0.1
    assert weight.item() == pytest.approx(-0.2)


def test_update_refuses_a_nan_loss_before_touching_the_weights():
    weight, step = one_weight_step()
    with pytest.raises(TrainingDiverged, match="became nan"):
        step.update("w", weight * float("nan"))
    assert weight.item() == 0 and weight.grad is None


def test_update_with_a_closure_serves_lbfgs():
    weight, step = one_weight_step(optimizer="lbfgs")
    for _ in range(3):
        step.update("w", lambda: (weight - 3).pow(2))
    assert weight.item() == pytest.approx(3.0, abs=1e-4)


def test_update_names_the_optimizers_it_knows():
    weight, step = one_weight_step()
    with pytest.raises(KeyError, match="No optimizer named 'generator'; the task made: w"):
        step.update("generator", weight * 2)


def gan_task(epochs: int) -> tuple[GanTask, TrainConfig]:
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=0.01, device="cpu")
    return GanTask(ToyGan(), gan_data(), cfg, sleep=0.0), cfg


def test_two_optimizers_round_trip_through_a_checkpoint(tmp_path):
    straight, cfg = gan_task(epochs=3)
    a = train(context(tmp_path / "a", "toy-gan"), straight, cfg)

    first, cfg2 = gan_task(epochs=2)
    train(context(tmp_path / "b", "toy-gan"), first, cfg2)
    tensors, meta = load_tensors(tmp_path / "b" / STATE_FILE)
    for name in ("generator", "discriminator"):
        assert any(k.startswith(f"optimizer.{name}.") for k in tensors), name
        assert any(k.startswith(f"module.{name}.") for k in tensors), name
    assert set(meta["optimizers"]) == {"generator", "discriminator"}
    assert meta["modules"] == ["generator", "discriminator"]
    assert "best.generator.0.weight" not in tensors  # no monitor: the last weights are kept
    model_keys, model_meta = read_header(tmp_path / "b" / MODEL_FILE)
    assert "generator.0.weight" in model_keys and "discriminator.0.weight" in model_keys
    assert model_meta["modules"] == ["generator", "discriminator"]

    resumed, cfg3 = gan_task(epochs=3)
    b = train(context(tmp_path / "b", "toy-gan", resumed=True), resumed, cfg3)
    assert torch.equal(resumed.restored_noise, first.fixed_noise)
    assert [r["epoch"] for r in b.history] == [1, 2, 3]
    assert [r["fake_mean"] for r in a.history] == [r["fake_mean"] for r in b.history]
    for name, module in a.modules.items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, b.modules[name].state_dict()[key]), f"{name}.{key}"


def test_resume_state_stays_the_same_size_as_epochs_pass(tmp_path):
    sizes = []
    for epochs in (2, 8):
        task, cfg = gan_task(epochs)
        train(context(tmp_path / str(epochs), "toy-gan"), task, cfg)
        sizes.append((tmp_path / str(epochs) / STATE_FILE).stat().st_size)
    assert abs(sizes[0] - sizes[1]) < 64, sizes


def test_a_sequence_task_gets_ordered_windows_and_carries_its_state(tmp_path):
    cfg = TrainConfig(epochs=4, batch_size=16, lr=0.01, device="cpu")
    task = LanguageModelTask(TinyLM(), cfg, seq_len=4, carry=True, sleep=0.0)
    windows = task.train_batches(1, DistState())
    for (_, y0), (x1, _) in zip(windows, windows[1:]):
        # each row continues where it stopped: the next window's first input is the last target
        assert torch.equal(x1[:, 0], y0[:, -1])
    step = Step(cfg, torch.device("cpu"), task.optimizers(10))
    task.start_epoch(1)
    task.train_step(windows[0], step)
    assert task.hidden is not None and not task.hidden.requires_grad
    task.start_epoch(2)
    assert task.hidden is None
    result = train(context(tmp_path, "toy-lm"), LanguageModelTask(TinyLM(), cfg, 4, True, 0.0), cfg)
    assert result.history[result.best_epoch - 1]["val_accuracy"] > 0.95
