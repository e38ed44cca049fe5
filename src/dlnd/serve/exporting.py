"""``dlnd export RUN_DIR``: which exporter a run goes to, by what its model does.

An image classifier goes to :func:`dlnd.serve.export.export_model` (ONNX or TorchScript),
a NumPy network to :mod:`dlnd.serve.tabular_export`, a language model or sentence classifier
to :mod:`dlnd.serve.text_export`, a GAN's generator to :mod:`dlnd.serve.generation_export`,
a style-transfer run to :mod:`dlnd.serve.style_export` and a chatbot to
:mod:`dlnd.serve.chat_export`. The exporters share :mod:`dlnd.serve.export`'s helpers, so
this dispatch lives above them all (no import cycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlnd.checkpoint import load_model
from dlnd.errors import UserError
from dlnd.recipes import get_recipe
from dlnd.serve.card import read_final_metrics
from dlnd.serve.chat_export import export_chat_run
from dlnd.serve.export import export_model
from dlnd.serve.generation_export import export_generator
from dlnd.serve.style_export import export_style
from dlnd.serve.tabular_export import export_numpy_run, is_numpy_run, read_run_meta
from dlnd.serve.text_export import export_text_model
from dlnd.store import MODEL_FILE


def is_text_model(meta: dict[str, Any]) -> bool:
    """Whether a checkpoint holds a language model or a sentence classifier (exported by
    :mod:`dlnd.serve.text_export`)."""
    return (meta.get("info") or {}).get("task") in ("language-model", "text-classification")


def export_run(
    run_dir: Path, fmt: str = "onnx", out: Path | None = None, name: str | None = None
) -> Path:
    """Export the model of a training run; returns the folder written (default
    ``RUN_DIR/export-FORMAT``). A NumPy network goes to ONNX through
    :func:`dlnd.serve.tabular_export.export_numpy_run`, a text model through
    :func:`dlnd.serve.text_export.export_text_model`, a GAN's generator through
    :func:`dlnd.serve.generation_export.export_generator`, a style transfer's artwork and
    settings through :func:`dlnd.serve.style_export.export_style`."""
    run_dir = Path(run_dir)
    if (run_dir / MODEL_FILE).is_file() and is_numpy_run(read_run_meta(run_dir)):
        if fmt != "onnx":
            raise UserError("A NumPy network exports to ONNX only; use --format onnx.")
        return export_numpy_run(run_dir, out, name)
    model, meta = load_model(run_dir)
    if meta.get("info", {}).get("task") == "chat" and fmt == "onnx":  # two graphs: chat_export
        return export_chat_run(run_dir, out, name)
    out_dir = Path(out) if out is not None else run_dir / f"export-{fmt}"
    if is_text_model(meta):
        if fmt != "onnx":
            raise UserError("A text model exports to ONNX only; use --format onnx.")
        recipe = get_recipe(meta["recipe"])
        export_text_model(
            model,
            meta,
            out_dir,
            name=name or recipe.name,
            final_metrics=read_final_metrics(run_dir),
            dataset=recipe.dataset,
        )
        return out_dir
    exporter = export_model
    task = (meta.get("info") or {}).get("task")
    if task == "image-generation":
        exporter = export_generator
    elif task == "style-transfer":
        exporter = export_style
    exporter(
        model,
        meta,
        fmt,
        out_dir,
        name=name,
        final_metrics=read_final_metrics(run_dir),
        dataset=get_recipe(meta["recipe"]).dataset,
    )
    return out_dir
