"""The models a server serves, by name, and the task types it knows how to serve.

A served model is an exported folder (``model.onnx`` + ``model_card.json``). Its card names
its task; :data:`TASKS` maps each task to the class that serves it. Image classification
is the first; a text-generation or image-generation task joins by subclassing
:class:`ServedModel` (its own request schema and ``predict_*`` methods) and calling
:func:`register_task`; the HTTP layer does not change.

Requests name models only through the registry, never through a path on the server.
"""

from __future__ import annotations

import json
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel
from starlette.datastructures import FormData

from dlnd.checkpoint import MODEL_FILE
from dlnd.errors import UserError
from dlnd.serve.export import CARD_FILE, CARD_VERSION, export_run

DEMO_MODELS = Path(__file__).parent / "demo_models"


class UnknownModel(LookupError):
    """A request named a model the server does not serve (answered with HTTP 404)."""


class UnsupportedInput(ValueError):
    """A model cannot take this kind of body, e.g. an upload for a text model (HTTP 415)."""


@dataclass(frozen=True)
class ServeSettings:
    """How models run: batch size and wait of the micro-batcher, threads per forward pass."""

    max_batch: int = 64
    max_wait_ms: float = 2.0
    threads: int = 1


class ServedModel(ABC):
    """One model behind the API; each subclass serves one task type.

    ``request_model`` is the JSON body a prediction takes and ``response_model`` its
    answer (both document the API); ``form_fields`` the multipart fields, as JSON-schema
    properties, or ``{}`` when the task takes no uploads.
    """

    task: ClassVar[str]
    request_model: ClassVar[type[BaseModel]]
    response_model: ClassVar[type[BaseModel]]
    form_fields: ClassVar[dict[str, Any]] = {}

    def __init__(self, name: str, card: dict[str, Any], folder: Path, settings: ServeSettings):
        """Load the model of the exported ``folder`` (described by ``card``) as ``name``."""
        self.name = name
        self.card = card

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models`` shows: name, task, input, outputs and metrics."""
        return {
            "name": self.name,
            "task": self.task,
            "recipe": self.card.get("recipe"),
            "input": self.card.get("input"),
            "metrics": self.card.get("metrics", {}),
        }

    @abstractmethod
    async def predict_json(self, body: bytes) -> dict[str, Any]:
        """Answer a JSON request body (raises ``InputError`` for a malformed one)."""

    async def predict_form(self, form: FormData) -> dict[str, Any]:
        """Answer a multipart upload; tasks that take no uploads keep this refusal."""
        raise UnsupportedInput(f"Model {self.name!r} takes JSON only; send application/json.")

    @abstractmethod
    def close(self) -> None:
        """Release the model's worker threads."""


TASKS: dict[str, type[ServedModel]] = {}


def register_task(served_model: type[ServedModel]) -> type[ServedModel]:
    """Make the server able to load models whose card says ``task == served_model.task``."""
    TASKS[served_model.task] = served_model
    return served_model


class ModelRegistry:
    """Served models by name; :meth:`get` is the only way a request reaches a model."""

    def __init__(self) -> None:
        self._models: dict[str, ServedModel] = {}
        self._scratch: list[tempfile.TemporaryDirectory] = []

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

    def __iter__(self):
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
        for folder in self._scratch:
            folder.cleanup()
        self._scratch.clear()


def demo_model_dirs() -> list[Path]:
    """The exported models that ship with dlnd."""
    return sorted(p.parent for p in DEMO_MODELS.glob(f"*/{CARD_FILE}"))


def read_card(folder: Path) -> dict[str, Any]:
    """The model card of an exported folder, checked to be servable."""
    try:
        card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(
            f"{folder / CARD_FILE} is unreadable ({err}); export the model again."
        ) from err
    if card.get("card_version") != CARD_VERSION or card.get("format") != "onnx":
        raise UserError(
            f"{folder} holds a {card.get('format')!r} model card of version "
            f"{card.get('card_version')!r}; serving needs an ONNX export "
            f"(dlnd export RUN_DIR --format onnx)."
        )
    if card.get("task") not in TASKS:
        raise UserError(
            f"{folder} holds a {card.get('task')!r} model; this server serves "
            f"{', '.join(TASKS)} models."
        )
    file = str(card.get("file", ""))
    if Path(file).name != file or not (folder / file).is_file():
        raise UserError(f"{folder} lacks the model file {card.get('file')!r}; export it again.")
    return card


def load_models(paths: Iterable[Path], settings: ServeSettings) -> ModelRegistry:
    """Load every folder in ``paths`` (exported folders or training runs, which are
    exported to ONNX first); with no paths, the demo models."""
    import dlnd.serve.classifier  # noqa: F401  (registers the image-classification task)

    paths = [Path(p) for p in paths] or demo_model_dirs()
    if not paths:
        raise UserError("No demo models are installed; give run directories: dlnd serve RUN_DIR.")
    registry = ModelRegistry()
    try:
        for path in paths:
            folder = servable_folder(path, registry)
            card = read_card(folder)
            name = registry.unique_name(card["name"])
            registry.add(TASKS[card["task"]](name, card, folder, settings))
    except BaseException:
        registry.close()
        raise
    return registry


def servable_folder(path: Path, registry: ModelRegistry) -> Path:
    """``path`` if it is an exported folder; a fresh ONNX export if it is a training run."""
    if (path / CARD_FILE).is_file():
        return path
    if (path / MODEL_FILE).is_file():
        return export_run(path, "onnx", registry.scratch_dir())
    raise UserError(
        f"{path} is neither a training run (no {MODEL_FILE}) nor an exported model "
        f"(no {CARD_FILE}); give a run directory from 'dlnd runs' or an export folder."
    )
