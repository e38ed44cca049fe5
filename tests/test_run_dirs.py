"""Run directories, checkpoints and flags under bad input: each problem found by a probe is
one sentence and exit status 2 (or correct behaviour), and nothing is lost or half-made."""

from __future__ import annotations

import json
import signal
import struct
import threading
import time
from pathlib import Path

import pytest
from helpers import run_dlnd, start_dlnd

from dlnd.checkpoint import load_model
from dlnd.config import positive_int
from dlnd.errors import UserError
from dlnd.recipes import Option, Recipe, register
from dlnd.runs import latest_run_dir, new_run_dir
from dlnd.store import MODEL_FILE, STATE_FILE, read_header


def one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def run_folders(out: Path, recipe: str) -> list[Path]:
    return sorted((out / recipe).glob("*")) if (out / recipe).exists() else []


@pytest.fixture(scope="module")
def spirals_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spirals")
    result = run_dlnd("run", "spirals", "--quick", "--epochs", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_folders(out, "spirals")
    return run_dir


def rewrite_header(source: Path, target: Path, change) -> None:
    """Copy a safetensors file with its dlnd metadata passed through ``change``."""
    data = source.read_bytes()
    length = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + length])
    meta = json.loads(header["__metadata__"]["dlnd"])
    header["__metadata__"]["dlnd"] = json.dumps(change(meta))
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data[8 + length :])


def without(key):
    return lambda meta: {k: v for k, v in meta.items() if k != key}


def with_config(**values):
    return lambda meta: {**meta, "config": {**meta["config"], **values}}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (without("config"), "it has no 'config'"),
        (lambda meta: {**meta, "config": [1, 2]}, "'config' is not a JSON object"),
        (lambda meta: {**meta, "info": "x"}, "'info' is not a JSON object"),
        (without("recipe"), "names no recipe"),
        (lambda meta: {**meta, "recipe": "no-such"}, "Unknown recipe 'no-such'"),
        (lambda meta: {**meta, "info": {"classes": 3}}, "does not describe a model"),
        (with_config(hidden_size="wide"), "does not describe a model"),
        (with_config(hidden_size=200_000), "do not fit the model its header describes"),
    ],
)
def test_a_tampered_header_is_refused_before_a_model_is_built(
    spirals_run, tmp_path, change, fragment
):
    rewrite_header(spirals_run / MODEL_FILE, tmp_path / "run" / MODEL_FILE, change)
    with pytest.raises(UserError, match=fragment.replace("(", r"\(")):
        load_model(tmp_path / "run")


def test_an_absurd_size_in_the_header_costs_no_memory(spirals_run, tmp_path):
    # 200000 x 200000 hidden weights would be 160 GB: the model is sized on the meta device
    rewrite_header(
        spirals_run / MODEL_FILE, tmp_path / "run" / MODEL_FILE, with_config(hidden_size=200_000)
    )
    started = time.time()
    result = run_dlnd("export", str(tmp_path / "run"))
    one_line_error(result, "do not fit the model its header describes")
    assert time.time() - started < 30


def test_out_that_is_a_file_is_a_user_error(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    result = run_dlnd("run", "tiny", "--epochs", "1", "--out", str(tmp_path / "afile"))
    one_line_error(result, "Cannot create a run folder under", "give --out a folder")


def test_resume_of_a_run_with_a_damaged_config(tmp_path):
    assert run_dlnd("run", "tiny", "--epochs", "1", "--out", str(tmp_path)).returncode == 0
    (run_dir,) = run_folders(tmp_path, "tiny")
    (run_dir / "config.json").write_text('{"recipe": "tiny", "epo')
    result = run_dlnd("run", "tiny", "--resume", str(run_dir))
    one_line_error(result, "config.json is damaged", "cannot be continued")


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--weight-decay", "nan"], "argument --weight-decay: expected a number >= 0, got 'nan'"),
        (["--clip-grad", "-1"], "argument --clip-grad: expected a number >= 0"),
        (["--momentum", "5"], "argument --momentum: expected a number in [0, 1)"),
        (["--hidden-size", "0"], "argument --hidden-size: expected a positive whole number"),
        (["--points-per-class", "2.5"], "expected a positive whole number, got '2.5'"),
    ],
)
def test_bad_option_values_are_refused_before_a_run_folder_exists(tmp_path, flags, fragment):
    result = run_dlnd("run", "spirals", *flags, "--out", str(tmp_path))
    one_line_error(result, fragment)
    assert run_folders(tmp_path, "spirals") == []


def test_bad_values_from_python_are_refused_too(tmp_path):
    import dlnd

    with pytest.raises(UserError, match="--weight-decay: expected a number >= 0, got nan"):
        dlnd.run_recipe("spirals", weight_decay=float("nan"), out=str(tmp_path))
    assert run_folders(tmp_path, "spirals") == []


def test_runs_started_at_once_never_share_a_folder(tmp_path):
    made: list[Path] = []
    threads = [
        threading.Thread(target=lambda: made.append(new_run_dir(tmp_path, "r"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 8 and all(p.is_dir() for p in made)


def test_resume_picks_the_newest_run_by_number_not_by_text(tmp_path):
    for name in (
        "20261124-101500",
        "20261124-101500-2",
        "20261124-101500-10",
        "20261123-235959-99",
    ):
        (tmp_path / "r" / name).mkdir(parents=True)
        (tmp_path / "r" / name / "config.json").write_text("{}")
    assert latest_run_dir(tmp_path, "r").name == "20261124-101500-10"


def interrupt_when(process, ready) -> tuple[int, str]:
    """Send Ctrl-C once ``ready()`` is true; return the exit status and stderr."""
    deadline = time.time() + 120
    while time.time() < deadline and not ready():
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


def test_ctrl_c_before_the_first_epoch_leaves_nothing_and_says_so(tmp_path):
    process = start_dlnd(
        "run", "tiny", "--epochs", "3", "--epoch-sleep", "20", "--out", str(tmp_path)
    )
    code, err = interrupt_when(process, lambda: bool(run_folders(tmp_path, "tiny")))
    assert code == 130 and "Traceback" not in err
    assert "interrupted before anything was saved" in err
    assert "checkpoint is kept" not in err
    assert run_folders(tmp_path, "tiny") == []


def test_ctrl_c_after_an_epoch_keeps_the_checkpoint(tmp_path):
    process = start_dlnd(
        "run", "tiny", "--epochs", "5", "--epoch-sleep", "2", "--out", str(tmp_path)
    )

    def one_epoch_saved() -> bool:
        return any((p / STATE_FILE).exists() for p in run_folders(tmp_path, "tiny"))

    code, err = interrupt_when(process, one_epoch_saved)
    assert code == 130 and "the last checkpoint in" in err and "continue with --resume" in err


def test_resume_applies_the_flags_that_may_change(spirals_run, tmp_path):
    result = run_dlnd("run", "spirals", "--resume", str(spirals_run), "--epochs", "4")
    assert result.returncode == 0, result.stderr
    assert "on resume: --epochs 2 -> 4" in result.stdout
    assert "resuming" in result.stdout and "after epoch 2" in result.stdout
    rows = (spirals_run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3, 4]
    assert json.loads((spirals_run / "config.json").read_text())["epochs"] == 4


def test_resume_refuses_flags_that_cannot_change(spirals_run):
    result = run_dlnd("run", "spirals", "--resume", str(spirals_run), "--lr", "0.5")
    one_line_error(result, "--lr cannot change on --resume", "start a new run")


def test_resume_keeps_the_epochs_a_schedule_was_planned_for(tmp_path):
    args = ["run", "tiny", "--epochs", "2", "--schedule", "onecycle", "--out", str(tmp_path)]
    assert run_dlnd(*args).returncode == 0
    result = run_dlnd("run", "tiny", "--resume", "--epochs", "5", "--out", str(tmp_path))
    one_line_error(result, "onecycle learning-rate schedule was planned for 2 epochs")


def test_numpy_recipes_refuse_resume_and_keep_their_metrics(tmp_path):
    args = ["run", "perceptron", "--embedded", "--epochs", "3", "--out", str(tmp_path)]
    assert run_dlnd(*args).returncode == 0
    (run_dir,) = run_folders(tmp_path, "perceptron")
    before = (run_dir / "metrics.jsonl").read_text()
    result = run_dlnd("run", "perceptron", "--embedded", "--resume", "--out", str(tmp_path))
    one_line_error(result, "perceptron cannot be resumed", "it trains in NumPy")
    assert (run_dir / "metrics.jsonl").read_text() == before
    assert len(run_folders(tmp_path, "perceptron")) == 1


def test_a_resume_state_of_another_format_is_a_clear_error(tmp_path):
    assert run_dlnd("run", "tiny", "--epochs", "1", "--out", str(tmp_path)).returncode == 0
    (run_dir,) = run_folders(tmp_path, "tiny")
    rewrite_header(run_dir / STATE_FILE, run_dir / STATE_FILE, without("format"))
    result = run_dlnd("run", "tiny", "--resume", "--epochs", "1", "--out", str(tmp_path))
    one_line_error(result, "--resume cannot continue it")


def test_conv_filters_says_it_ran_on_the_cpu_with_pytorch(tmp_path):
    assert run_dlnd("run", "conv-filters", "--embedded", "--out", str(tmp_path)).returncode == 0
    (run_dir,) = run_folders(tmp_path, "conv-filters")
    assert json.loads((run_dir / "final.json").read_text())["device"] == "cpu"


def test_the_resume_header_does_not_hold_the_history(tmp_path):
    assert run_dlnd("run", "tiny", "--epochs", "3", "--out", str(tmp_path)).returncode == 0
    (run_dir,) = run_folders(tmp_path, "tiny")
    _, meta = read_header(run_dir / STATE_FILE)
    assert "history" not in meta and meta["epoch"] == 3


def recipe_with(**fields) -> Recipe:
    base = {
        "name": "checked",
        "summary": "",
        "dataset": "",
        "target": "",
        "run": lambda ctx: {},
        "options": (Option("--hidden-size", positive_int, 4, "units"),),
    }
    return Recipe(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        (
            {"defaults": {"epoch": 3}},
            "defaults['epoch'] is not an option of this recipe (did you mean 'epochs'?)",
        ),
        ({"defaults": {"lr": "fast"}}, "--lr: expected a positive number, got 'fast'"),
        ({"quick": {"hidden_size": 0}}, "--hidden-size: expected a positive whole number"),
        ({"defaults": {"channels_last": 1}}, "must be bool, got 1"),
        ({"framework": "jax"}, "framework must be one of"),
    ],
)
def test_registering_a_recipe_checks_its_defaults(fields, fragment):
    with pytest.raises(ValueError) as raised:
        register(recipe_with(**fields))
    assert fragment in str(raised.value)
