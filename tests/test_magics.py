"""The IPython magics in a real IPython shell: ``%load_ext dlnd``, ``%dlnd ...`` and
``%%dlnd_fit``, with the test recipes of tests/support (``tiny``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("IPython")
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

from dlnd.notebook import magics  # noqa: E402

DATA_CELL = """
import torch
from torch.utils.data import TensorDataset
generator = torch.Generator().manual_seed(0)
x = torch.randn(240, 4, generator=generator)
y = (x[:, 0] + x[:, 1] > 0).long()
train_set, val_set = TensorDataset(x[:200], y[:200]), TensorDataset(x[200:], y[200:])
"""
MODEL_CELL = """
from torch import nn
model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
"""


@pytest.fixture(scope="module")
def shell():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "dlnd")
    yield shell
    InteractiveShell.clear_instance()


def images(captured) -> int:
    return sum("image/png" in output.data for output in captured.outputs)


def test_import_dlnd_stays_light():
    """``import dlnd`` (which holds the extension's entry point) imports neither IPython nor
    PyTorch; the magics load them when used."""
    code = "import sys, dlnd; print(sorted({'IPython', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_dlnd_run_returns_the_final_metrics_and_shows_the_figures(shell, tmp_path):
    with capture_output() as captured:
        result = shell.run_line_magic("dlnd", f"run tiny --epochs 2 --out {tmp_path}")
    final = json.loads((result.run_dir / "final.json").read_text())
    assert isinstance(result, dict) and dict(result) == final["metrics"]
    assert result.run_dir.parent == tmp_path / "tiny"
    assert "epoch   2" in captured.stdout
    assert images(captured) == len(list((result.run_dir / "plots").glob("*.png"))) >= 1


def test_dlnd_run_reports_a_user_error_in_one_sentence(shell, tmp_path):
    with capture_output() as captured:
        assert shell.run_line_magic("dlnd", "run no-such-recipe") is None
    assert captured.stderr.startswith("dlnd: error: Unknown recipe 'no-such-recipe'.")
    with capture_output() as captured:
        assert shell.run_line_magic("dlnd", f"run tiny --epochs zero --out {tmp_path}") is None
    assert "expected a positive whole number" in captured.stderr
    assert not (tmp_path / "tiny").exists()


def test_dlnd_runs_any_other_command(shell):
    with capture_output() as captured:
        assert shell.run_line_magic("dlnd", "list") is None
    assert "spirals" in captured.stdout and "mnist-cnn" in captured.stdout
    with capture_output() as captured:
        shell.run_line_magic("dlnd", "data --no-such-flag")
    assert "error" in captured.stderr


def test_dlnd_fit_trains_the_model_the_cell_defines(shell, tmp_path):
    shell.run_cell(DATA_CELL)
    line = f"--epochs 8 --lr 0.05 --out {tmp_path}"
    with capture_output() as captured:
        result = shell.run_cell_magic("dlnd_fit", line, MODEL_CELL)
    assert result["val_accuracy"] > 0.85 and 1 <= result["best_epoch"] <= 8
    assert (result.run_dir / "model.safetensors").exists()
    assert images(captured) == 1  # the learning curves
    # the trained module is the notebook's own `model`, holding the kept (best) weights
    model, x_val, y_val = (shell.user_ns[k] for k in ("model", "x", "y"))
    accuracy = (model(x_val[200:]).argmax(1) == y_val[200:]).float().mean().item()
    assert accuracy == pytest.approx(result["val_accuracy"])


def test_dlnd_fit_is_reproducible_from_its_seed(shell, tmp_path):
    shell.run_cell(DATA_CELL)
    line = f"--epochs 3 --seed 5 --out {tmp_path}"
    with capture_output():
        first = shell.run_cell_magic("dlnd_fit", line, MODEL_CELL)
        second = shell.run_cell_magic("dlnd_fit", line, MODEL_CELL)
    assert dict(first) == dict(second)


def test_dlnd_fit_names_a_missing_variable_and_leaves_no_run(shell, tmp_path):
    shell.run_cell(DATA_CELL)
    with capture_output() as captured:
        result = shell.run_cell_magic("dlnd_fit", f"--val no_such --out {tmp_path}", MODEL_CELL)
    assert result is None
    assert "no variable 'no_such' (--val)" in captured.stderr
    assert not (tmp_path / "notebook").exists()


def test_progress_bars_are_widgets_only_in_a_notebook_kernel(shell):
    from tqdm import notebook, std

    import dlnd.loop

    assert magics.progress_bar_class() is std.tqdm  # a terminal IPython
    original = dlnd.loop.tqdm
    shell.config.IPKernelApp.connection_file = "kernel.json"  # what a Jupyter kernel has
    try:
        pytest.importorskip("ipywidgets")
        assert magics.progress_bar_class() is notebook.tqdm
        with magics.notebook_progress():
            assert dlnd.loop.tqdm is notebook.tqdm
        assert dlnd.loop.tqdm is original
    finally:
        del shell.config["IPKernelApp"]


def test_figures_show_as_images(shell):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    figure.subplots().plot([0, 1], [1, 0])
    data, _ = shell.display_formatter.format(figure)
    assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_the_magics_are_registered(shell):
    assert "dlnd" in shell.magics_manager.magics["line"]
    assert "dlnd_fit" in shell.magics_manager.magics["cell"]
