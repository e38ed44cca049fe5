"""The command line: every user error exits 2 with one clear sentence and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import run_dlnd

from dlnd.cli import main, resolve_config
from dlnd.recipes import get_recipe


def call(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse exits on its own errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0, f"more than one line: {err!r}"
    for fragment in fragments:
        assert fragment in err


def test_unknown_recipe_suggests_the_close_name(capsys):
    code, _, err = call(capsys, "run", "spiral")
    assert_user_error(code, err, "Unknown recipe 'spiral'", "Did you mean 'spirals'", "dlnd list")


@pytest.mark.parametrize(
    ("flag", "value", "fragment"),
    [
        ("--epochs", "-3", "expected a positive whole number, got '-3'"),
        ("--epochs", "two", "expected a positive whole number, got 'two'"),
        ("--lr", "0", "expected a positive number, got '0'"),
        ("--lr", "nan", "expected a positive number, got 'nan'"),
        ("--batch-size", "1.5", "expected a positive whole number"),
        ("--device", "tpu", "invalid choice: 'tpu'"),
        ("--optimizer", "lbfgs", "invalid choice: 'lbfgs'"),
    ],
)
def test_bad_flag_values_exit_2(capsys, tmp_path, flag, value, fragment):
    code, _, err = call(capsys, "run", "spirals", flag, value, "--out", str(tmp_path))
    assert_user_error(code, err, fragment, "dlnd run spirals --help")
    assert not (tmp_path / "spirals").exists(), "a rejected command must not create a run"


def test_unknown_flag_exit_2(capsys, tmp_path):
    code, _, err = call(capsys, "run", "spirals", "--epoch", "3", "--out", str(tmp_path))
    assert_user_error(code, err, "unrecognized arguments: --epoch 3")


def test_resume_without_an_earlier_run(capsys, tmp_path):
    code, _, err = call(capsys, "run", "spirals", "--resume", "--out", str(tmp_path))
    assert_user_error(code, err, "no earlier run of 'spirals'", "without --resume")


def test_resume_of_a_folder_that_is_not_a_run(capsys, tmp_path):
    code, _, err = call(capsys, "run", "spirals", "--resume", str(tmp_path))
    assert_user_error(code, err, "is not a run directory")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_device(capsys, tmp_path):
    code, _, err = call(capsys, "run", "spirals", "--device", "cuda", "--out", str(tmp_path))
    assert_user_error(code, err, "--device cuda was asked for but is not available", "--device cpu")


def test_tour_only_unknown_recipe(capsys, tmp_path):
    code, _, err = call(capsys, "tour", "--only", "nothing", "--out", str(tmp_path))
    assert_user_error(code, err, "Not in the tour: nothing")


def test_unknown_command_exit_2(capsys):
    code, _, err = call(capsys, "trian")
    assert code == 2 and "invalid choice: 'trian'" in err


def test_help_shows_common_and_recipe_options(capsys):
    code, out, _ = call(capsys, "run", "spirals", "--help")
    assert code == 0
    for fragment in ("--epochs", "--resume", "--hidden-size", "--bf16", "(default 60)"):
        assert fragment in out


def test_list_and_runs(capsys, tmp_path):
    code, out, _ = call(capsys, "list")
    assert code == 0 and "spirals" in out and "validation accuracy" in out
    code, out, _ = call(capsys, "runs", "--out", str(tmp_path))
    assert code == 0 and "No runs" in out
    assert call(capsys, "run", "tiny", "--epochs", "1", "--out", str(tmp_path))[0] == 0
    code, out, _ = call(capsys, "runs", "--out", str(tmp_path))
    assert code == 0 and "tiny" in out and "finished" in out and "val_accuracy=" in out


def test_config_precedence():
    recipe = get_recipe("spirals")
    assert resolve_config(recipe, {})["epochs"] == 60  # the recipe's default
    assert resolve_config(recipe, {"quick": True})["epochs"] == 30  # its quick setting
    assert resolve_config(recipe, {"quick": True, "epochs": 2})["epochs"] == 2  # the user's flag
    assert resolve_config(recipe, {})["hidden_size"] == 64  # a recipe option's default


def test_config_json_records_every_value(tmp_path):
    result = run_dlnd("run", "tiny", "--epochs", "1", "--lr", "0.02", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (run_dir,) = list((tmp_path / "tiny").iterdir())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["recipe"] == "tiny" and config["lr"] == 0.02 and config["batch_size"] == 32
    assert "dropout" in config and config["seed"] == 0


def test_failure_of_the_run_itself_exits_1(tmp_path):
    result = run_dlnd("run", "tiny", "--nan-at-epoch", "1", "--out", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_run_recipe_from_python(tmp_path):
    import dlnd

    final = dlnd.run_recipe("tiny", epochs=2, out=str(tmp_path))
    assert final["metrics"]["val_accuracy"] > 0.8
    assert Path(final["run_dir"]).parent == tmp_path / "tiny"
    assert json.loads((Path(final["run_dir"]) / "config.json").read_text())["epochs"] == 2


def test_run_recipe_rejects_unknown_options(tmp_path):
    import dlnd
    from dlnd.errors import UserError

    with pytest.raises(UserError, match="tiny has no option hidden"):
        dlnd.run_recipe("tiny", hidden=3, out=str(tmp_path))


def test_missing_data_is_a_user_error_and_leaves_no_run(tmp_path, monkeypatch):
    monkeypatch.delenv("DLND_DATA", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "runs"
    result = run_dlnd(
        "run", "bike-sharing", "--data-dir", str(empty), "--out", str(out), DLND_OFFLINE="1"
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.count("\n") == 0
    assert "data set bike-sharing is missing" in message
    assert str(empty / "bike-sharing") in message and "https://" in message
    assert not any((out / "bike-sharing").glob("*")), "a refused run must leave no run folder"
