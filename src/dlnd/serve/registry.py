"""The models a server serves, by name, and the table of tasks it knows how to serve.

A served model is an exported folder (``model.onnx`` + ``model_card.json``). Its card names
its task; :data:`TASKS` maps each task to the class that serves it. A new task (text
generation, image generation, ...) is one module with a :class:`~dlnd.serve.task.ServedModel`
subclass and one line in :data:`TASKS`; the HTTP layer does not change.

Requests name models only through the registry, never through a path on the server.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from dlnd.errors import UserError
from dlnd.serve.card import CARD_FILE, CARD_VERSION
from dlnd.serve.chat import ChatModel
from dlnd.serve.classifier import ImageClassifier
from dlnd.serve.errors import UnknownModel, UnsupportedInput
from dlnd.serve.generation import ImageGenerator
from dlnd.serve.style_transfer import StyleTransfer
from dlnd.serve.tabular import TabularClassifier, TabularRegressor
from dlnd.serve.tabular_export import export_numpy_run, is_numpy_run, read_run_meta
from dlnd.serve.task import ParsePool, ServedModel, ServeSettings
from dlnd.serve.text_classifier import TextClassifier
from dlnd.serve.text_generation import TextGenerator
from dlnd.store import MODEL_FILE

__all__ = [
    "TASKS",
    "ModelRegistry",
    "ServeSettings",
    "UnknownModel",
    "UnsupportedInput",
    "demo_model_dirs",
    "load_models",
]

DEMO_MODELS = Path(__file__).parent / "demo_models"

# Every task this server can serve: the card's ``task`` -> the class that serves it.
TASKS: dict[str, type[ServedModel]] = {
    task_class.task: task_class
    for task_class in (
        ImageClassifier,
        TabularRegressor,
        TabularClassifier,
        ImageGenerator,
        StyleTransfer,
        TextGenerator,
        TextClassifier,
        ChatModel,
    )
}


class ModelRegistry:
    """Served models by name; :meth:`get` is the only way a request reaches a model."""

    def __init__(self, settings: ServeSettings) -> None:
        self._models: dict[str, ServedModel] = {}
        self._scratch: list[tempfile.TemporaryDirectory] = []
        self.parse_pool = ParsePool(settings.parse_threads)

    def add(self, model: ServedModel) -> None:
        self._models[model.name] = model

    def unique_name(self, name: str) -> str:
        """``name``, or ``name-2``, ``name-3``... if a model already has it."""
        candidate, n = name, 1
        while candidate in self._models:
            n += 1
            candidate = f"{name}-{n}"
        return candidate

    def get(self, name: str) -> ServedModel:
        if name not in self._models:
            served = ", ".join(self._models) or "none"
            raise UnknownModel(f"No model named {name!r}; this server serves: {served}.")
        return self._models[name]

    def __iter__(self) -> Iterator[ServedModel]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def scratch_dir(self) -> Path:
        """A temporary folder that lives as long as the registry (for exports of runs)."""
        self._scratch.append(tempfile.TemporaryDirectory(prefix="dlnd-serve-"))
        return Path(self._scratch[-1].name)

    def close(self) -> None:
        for model in self._models.values():
            model.close()
        self.parse_pool.close()
        for folder in self._scratch:
            folder.cleanup()
        self._scratch.clear()


def demo_model_dirs() -> list[Path]:
    """The exported models that ship with dlnd."""
    return sorted(p.parent for p in DEMO_MODELS.glob(f"*/{CARD_FILE}"))


def read_card(folder: Path, tasks: Mapping[str, type[ServedModel]] = TASKS) -> dict[str, Any]:
    """The model card of an exported folder, checked to be servable by one of ``tasks``."""
    try:
        card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(
            f"{folder / CARD_FILE} is unreadable ({err}); export the model again."
        ) from err
    if not isinstance(card, dict):
        raise UserError(f"{folder / CARD_FILE} is not a model card; export the model again.")
    task_class = tasks.get(str(card.get("task")))
    expected_format = task_class.model_format if task_class else "onnx"
    if card.get("card_version") != CARD_VERSION or card.get("format") != expected_format:
        raise UserError(
            f"{folder} holds a {card.get('format')!r} model card of version "
            f"{card.get('card_version')!r}; serving needs an ONNX export "
            f"(dlnd export RUN_DIR --format onnx)."
        )
    if card.get("task") not in tasks:
        raise UserError(
            f"{folder} holds a {card.get('task')!r} model; this server serves "
            f"{', '.join(tasks)} models."
        )
    file = str(card.get("file", ""))
    if Path(file).name != file or not (folder / file).is_file():
        raise UserError(f"{folder} lacks the model file {card.get('file')!r}; export it again.")
    return card


def load_models(
    paths: Iterable[Path],
    settings: ServeSettings,
    tasks: Mapping[str, type[ServedModel]] = TASKS,
) -> ModelRegistry:
    """Load every folder in ``paths`` (exported folders or training runs, which are
    exported to ONNX first); with no paths, the demo models. ``tasks``: the task table."""
    paths = [Path(p) for p in paths] or demo_model_dirs()
    if not paths:
        raise UserError("No demo models are installed; give run directories: dlnd serve RUN_DIR.")
    registry = ModelRegistry(settings)
    try:
        for path in paths:
            folder = servable_folder(path, registry)
            card = read_card(folder, tasks)
            name = registry.unique_name(card["name"])
            registry.add(tasks[card["task"]](name, card, folder, settings, registry.parse_pool))
    except BaseException:
        registry.close()
        raise
    return registry


def servable_folder(path: Path, registry: ModelRegistry) -> Path:
    """``path`` if it is an exported folder; a fresh ONNX export if it is a training run."""
    if (path / CARD_FILE).is_file():
        return path
    if (path / MODEL_FILE).is_file():
        # A NumPy network is exported without PyTorch; only a PyTorch run imports it.
        if is_numpy_run(read_run_meta(path)):
            return export_numpy_run(path, registry.scratch_dir())
        from dlnd.serve.exporting import export_run

        return export_run(path, "onnx", registry.scratch_dir())
    raise UserError(
        f"{path} is neither a training run (no {MODEL_FILE}) nor an exported model "
        f"(no {CARD_FILE}); give a run directory from 'dlnd runs' or an export folder."
    )
