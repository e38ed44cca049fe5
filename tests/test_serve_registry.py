"""Loading models to serve: exported folders, training runs, the demo models, bad folders;
and the ``dlnd serve`` command's own checks."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from serve_fixtures import tiny_exports, tiny_runs

from dlnd.cli import main
from dlnd.errors import UserError
from dlnd.serve.export import CARD_FILE
from dlnd.serve.registry import (
    ServeSettings,
    UnknownModel,
    demo_model_dirs,
    load_models,
)

SETTINGS = ServeSettings(max_batch=4, max_wait_ms=1)


@pytest.fixture
def exports(tmp_path_factory):
    return tiny_exports(tmp_path_factory)


def scratch_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("dlnd-serve-*"))


def copy_with_card(source, target, **changes):
    shutil.copytree(source, target)
    card = json.loads((target / CARD_FILE).read_text())
    (target / CARD_FILE).write_text(json.dumps({**card, **changes}))
    return target


def test_exported_folders_are_served_under_their_card_names(exports):
    registry = load_models([exports["digits"], exports["colour"]], SETTINGS)
    try:
        assert [m.name for m in registry] == ["tiny-digits", "tiny-colour"]
        with pytest.raises(UnknownModel, match="serves: tiny-digits, tiny-colour"):
            registry.get("tiny")
    finally:
        registry.close()


def test_a_training_run_is_exported_on_the_fly_and_cleaned_up(tmp_path_factory):
    run_dir = tiny_runs(tmp_path_factory)["digits"]
    before = scratch_folders()
    registry = load_models([run_dir], SETTINGS)
    model = registry.get("tiny-test-classifier")
    assert len(scratch_folders() - before) == 1
    x = np.random.default_rng(0).random((1, 28, 28)).astype(np.float32)
    assert asyncio.run(model.batcher.run(x)).shape == (10,)
    registry.close()
    assert scratch_folders() - before == set()
    assert not (run_dir / "export-onnx").exists()  # nothing is written into the run


def test_two_models_with_one_name_get_distinct_names(exports):
    registry = load_models([exports["digits"], exports["digits"]], SETTINGS)
    assert [m.name for m in registry] == ["tiny-digits", "tiny-digits-2"]
    registry.close()


def test_no_folders_means_the_demo_models():
    registry = load_models([], SETTINGS)
    assert sorted(m.name for m in registry) == sorted(p.name for p in demo_model_dirs())
    registry.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "torchscript"}, "serving needs an ONNX export"),
        ({"card_version": 99}, "version 99"),
        ({"task": "speech-recognition"}, "serves image-classification"),
        ({"file": "../../model.onnx"}, "lacks the model file"),
        ({"file": "missing.onnx"}, "lacks the model file"),
    ],
)
def test_unservable_cards_are_user_errors(exports, tmp_path, changes, message):
    folder = copy_with_card(exports["digits"], tmp_path / "model", **changes)
    with pytest.raises(UserError, match=message):
        load_models([folder], SETTINGS)


def test_a_folder_that_is_neither_a_run_nor_an_export_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="neither a training run"):
        load_models([tmp_path], SETTINGS)


def test_an_unreadable_card_is_a_user_error(exports, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(exports["digits"], folder)
    (folder / CARD_FILE).write_text("{broken")
    with pytest.raises(UserError, match="unreadable"):
        load_models([folder], SETTINGS)


def test_serve_refuses_a_missing_folder(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags", [["--max-batch", "0"], ["--max-wait-ms", "-1"], ["--port", "http"]]
)
def test_serve_refuses_bad_settings(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", *flags])
    assert exit_info.value.code == 2
