"""The sequence recipes and ``dlnd sample`` through the real command line (in process)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from dlnd.cli import main
from dlnd.runs import read_metrics
from dlnd.sequence.sampling import load_language_model, write_from_run
from dlnd.store import MODEL_FILE, load_tensors


def call(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse exits on its own errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_quick(out: Path, name: str, *flags: str) -> tuple[Path, dict]:
    assert main(["run", name, "--quick", "--embedded", "--out", str(out), *flags]) == 0
    run_dir = max((out / name).iterdir())
    return run_dir, json.loads((run_dir / "final.json").read_text())["metrics"]


@pytest.fixture(scope="module")
def char_run(tmp_path_factory) -> Path:
    return run_quick(tmp_path_factory.mktemp("char"), "char-rnn")[0]


def test_char_rnn_learns_the_embedded_prose_and_writes_samples(char_run):
    metrics = json.loads((char_run / "final.json").read_text())["metrics"]
    rows = read_metrics(char_run)
    # a character model that learned nothing scores ln(vocabulary) ~ 3.5 nats
    assert metrics["val_loss"] < 1.0 and rows[-1]["val_loss"] < rows[0]["val_loss"]
    assert metrics["val_bits_per_char"] == pytest.approx(metrics["val_loss"] / 0.693147, 1e-4)
    samples = sorted((char_run / "texts").glob("sample_epoch_*.txt"))
    assert len(samples) == len(rows) and samples[0].read_text().startswith("Anna")
    assert "sample epoch 001" in (char_run / "index.html").read_text()


def test_sample_prints_the_same_text_for_the_same_seed(char_run, capsys):
    args = ("sample", str(char_run), "--prime", "Levin", "--length", "80")
    code, once, _ = call(capsys, *args, "--seed", "4")
    assert code == 0 and once.startswith("Levin") and len(once.rstrip("\n")) >= 80
    assert call(capsys, *args, "--seed", "4")[1] == once
    assert call(capsys, *args, "--seed", "5")[1] != once
    code, several, _ = call(capsys, *args, "--n", "3", "--top-k", "0", "--temperature", "1.5")
    assert code == 0 and several.count("\n---\n") == 2
    code, fast, _ = call(capsys, *args, "--seed", "4", "--bf16")
    assert (
        code == 0
        and fast.startswith("Levin")
        and call(capsys, *args, "--seed", "4", "--bf16")[1] == fast
    )


def test_sample_reads_unknown_characters_in_the_prime(char_run, capsys):
    code, out, err = call(capsys, "sample", str(char_run), "--prime", "Ωμέγα ☃", "--length", "20")
    assert code == 0 and out.startswith("Ωμέγα ☃") and not err


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (("--prime", ""), "The prime holds no token"),
        (("--length", "0"), "argument --length: expected a positive whole number"),
        (("--length", "1000000"), "The length must be a whole number from 1 to"),
        (("--temperature", "0"), "argument --temperature: expected a positive number"),
        (("--temperature", "inf"), "argument --temperature: expected a positive number"),
        (("--top-k", "-1"), "argument --top-k: expected a whole number >= 0"),
        (("--n", "0"), "argument --n: expected a positive whole number"),
    ],
)
def test_bad_sample_settings_exit_2_with_one_sentence(char_run, capsys, flags, fragment):
    code, out, err = call(capsys, "sample", str(char_run), *flags)
    assert code == 2 and fragment in err and "Traceback" not in err
    assert err.strip().count("\n") == 0 and not out


def test_sample_refuses_what_is_not_a_language_model_run(char_run, tmp_path, capsys):
    code, _, err = call(capsys, "sample", str(tmp_path / "nothing"))
    assert code == 2 and "not a run directory" in err
    sine_run, _ = run_quick(tmp_path, "sine-wave", "--epochs", "1")
    code, _, err = call(capsys, "sample", str(sine_run))
    assert code == 2 and "is a run of sine-wave, which does not generate" in err
    code, _, err = call(capsys, "sample", str(char_run), "--out", str(tmp_path))
    assert code == 2 and "--out does not apply to char-rnn, whose model writes text" in err


def test_a_run_rebuilds_from_its_checkpoint(char_run):
    model, vocab = load_language_model(char_run)
    saved, meta = load_tensors(char_run / MODEL_FILE)
    assert meta["info"]["vocabulary"]["tokens"] == list(vocab.tokens)
    torch.testing.assert_close(model.head.weight, saved["head.weight"])


def test_tv_script_writes_a_scene_primed_with_a_name(tmp_path):
    run_dir, metrics = run_quick(tmp_path, "tv-script")
    assert metrics["train_loss"] < 1.5 and metrics["val_perplexity"] < 5
    assert metrics["val_perplexity"] == pytest.approx(2.718281828 ** metrics["val_loss"], 1e-6)
    scene = (run_dir / "texts" / "sample_best_model.txt").read_text()
    lines = scene.splitlines()
    assert scene.startswith("jerry:") and len(lines) > 3
    assert all(":" in line.split()[0] for line in lines[1:-1] if line.split())
    (more,) = write_from_run(run_dir, "Elaine:", 30, seed=1)
    assert more == write_from_run(run_dir, "Elaine:", 30, seed=1)[0] and "<unk>" not in more


@pytest.mark.parametrize(
    ("name", "vocabulary"), [("char-rnn", (70, 90)), ("tv-script", (15_000, 25_000))]
)
def test_language_models_on_the_real_corpora(tmp_path, shared_data, name, vocabulary):
    flags = ("--train-limit", "20000", "--epochs", "1", "--data-dir", str(shared_data))
    out = tmp_path / "runs"
    assert main(["run", name, "--quick", "--out", str(out), *flags]) == 0
    run_dir = max((out / name).iterdir())
    metrics = json.loads((run_dir / "final.json").read_text())["metrics"]
    assert math.isfinite(metrics["val_loss"])
    _, vocab = load_language_model(run_dir)
    assert vocabulary[0] <= len(vocab) <= vocabulary[1]
    assert (run_dir / "texts" / "sample_best_model.txt").exists()


def test_sine_wave_beats_persistence_and_plots(tmp_path):
    run_dir, metrics = run_quick(tmp_path, "sine-wave")
    assert metrics["val_mse"] < 0.5 * metrics["persistence_mse"]
    assert (run_dir / "plots" / "predictions.png").exists()


def test_char_rnn_resumed_at_an_epoch_boundary_equals_uninterrupted(tmp_path):
    # a tiny model on a slice of the prose: resuming must be exact whatever it learns
    flags = ("--seed", "2", "--schedule", "none", "--hidden-size", "16", "--embedding-size", "8")
    flags += ("--train-limit", "5000", "--sample-length", "20")
    straight, _ = run_quick(tmp_path / "a", "char-rnn", *flags, "--epochs", "3")
    run_quick(tmp_path / "b", "char-rnn", *flags, "--epochs", "2")
    assert main(["run", "char-rnn", "--resume", "--epochs", "3", "--out", str(tmp_path / "b")]) == 0
    resumed = max((tmp_path / "b" / "char-rnn").iterdir())

    def without_times(run_dir: Path) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "time_s"} for row in read_metrics(run_dir)]

    assert without_times(resumed) == without_times(straight)
    a, b = load_tensors(straight / MODEL_FILE)[0], load_tensors(resumed / MODEL_FILE)[0]
    assert all(torch.equal(a[key], b[key]) for key in a)
