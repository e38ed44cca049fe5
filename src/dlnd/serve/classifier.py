"""The image-classification task: an image in, the top-k classes with probabilities out."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from starlette.datastructures import FormData, UploadFile

from dlnd.serve.batching import MicroBatcher
from dlnd.serve.errors import InputError
from dlnd.serve.preprocess import (
    decode_base64_image,
    decode_image,
    input_shape,
    pixels_to_input,
)
from dlnd.serve.runtime import OnnxModel
from dlnd.serve.task import (
    Endpoint,
    ParsePool,
    ServedModel,
    ServeSettings,
    TaskPage,
    check_value_count,
    parse_json,
)

DEFAULT_TOP_K = 5
MAX_TOP_K = 1000


class ImagePredictRequest(BaseModel):
    """A JSON prediction request: one image, as base64 or as a pixel array.

    Strict: ``top_k`` must be a JSON integer and pixel values JSON numbers (``true`` or
    ``"3"`` are refused, not read as 1 or 3). Each model narrows ``pixels`` to its own input
    shape (:func:`image_request_model`), so an over-long array fails at its length.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    image_base64: str | None = Field(
        None,
        description="An encoded image file (PNG, JPEG, GIF, BMP or WebP) in base64; a "
        "'data:image/png;base64,' prefix is allowed. It is resized as the model card says.",
    )
    pixels: list[list[float]] | list[list[list[float]]] | None = Field(
        None,
        description="The model input itself: (height, width) or (height, width, "
        "channels) values in [0, 1], no resizing.",
    )
    top_k: int = Field(DEFAULT_TOP_K, ge=1, le=MAX_TOP_K, description="How many classes to return.")

    @model_validator(mode="after")
    def _one_image(self) -> ImagePredictRequest:
        if (self.image_base64 is None) == (self.pixels is None):
            raise ValueError("give exactly one of image_base64 or pixels")
        return self


def bounded_list(item: Any, length: int) -> Any:
    return Annotated[list[item], Field(max_length=length)]


@functools.cache
def image_request_model(channels: int, height: int, width: int) -> type[ImagePredictRequest]:
    """:class:`ImagePredictRequest` whose ``pixels`` are at most ``height`` rows of ``width``
    values (or of ``channels``-value pixels): the shape is checked while parsing, not after."""
    grid = bounded_list(bounded_list(bounded_list(float, channels), width), height)
    if channels == 1:
        grid = bounded_list(bounded_list(float, width), height) | grid
    return create_model(
        f"ImagePredictRequest{height}x{width}x{channels}",
        __base__=ImagePredictRequest,
        pixels=(grid | None, ImagePredictRequest.model_fields["pixels"]),
    )


def max_json_values(channels: int, height: int, width: int) -> int:
    """The most commas a valid JSON request can hold: those between the pixel values, the
    pixels and the rows of a ``(height, width, channels)`` array, plus a few fields."""
    return channels * height * width + height * width + height + 8


class Prediction(BaseModel):
    label: str
    index: int
    probability: float


class ImagePredictResponse(BaseModel):
    """The ``top_k`` most probable classes, most probable first."""

    model: str
    predictions: list[Prediction]


def form_top_k(form: FormData) -> int:
    """The ``top_k`` field of a multipart form (default :data:`DEFAULT_TOP_K`): digits only
    (``int()`` alone would also take " 5", "5_0" or other scripts' digits)."""
    text = form.get("top_k", str(DEFAULT_TOP_K))
    top_k = int(text) if isinstance(text, str) and re.fullmatch(r"[0-9]{1,4}", text) else 0
    if not 1 <= top_k <= MAX_TOP_K:
        raise InputError(f"top_k must be a whole number from 1 to {MAX_TOP_K}.")
    return top_k


def softmax(logits: np.ndarray) -> np.ndarray:
    """``exp(z - max z) / sum exp(z - max z)``: the same as softmax(z), without overflow."""
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


IMAGE_FORM_FIELDS = {
    "file": {"type": "string", "format": "binary", "description": "The image file."},
    "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": DEFAULT_TOP_K},
}
IMAGE_PAGE = TaskPage(
    tab="images",
    title="Images",
    html="image-classification.html",
    script="image-classification.js",
)


class ImageClassifier(ServedModel):
    """An exported image classifier run by ONNX Runtime behind a micro-batcher."""

    task = "image-classification"
    endpoints = (
        Endpoint(
            "predict",
            "The most probable classes of one image.",
            ImagePredictResponse,
            form_fields=IMAGE_FORM_FIELDS,
        ),
    )
    page = IMAGE_PAGE

    def __init__(
        self,
        name: str,
        card: dict[str, Any],
        folder: Path,
        settings: ServeSettings,
        parse_pool: ParsePool,
    ) -> None:
        super().__init__(name, card, folder, settings, parse_pool)
        self.classes = list(card["classes"])
        self.input_spec = card["input"]
        self.request_model = image_request_model(*input_shape(self.input_spec))
        self.max_json_values = max_json_values(*input_shape(self.input_spec))
        model = OnnxModel(folder / card["file"], threads=settings.threads)
        model(np.zeros((settings.max_batch, *input_shape(self.input_spec)), np.float32))  # warm up
        self.batcher = MicroBatcher(model, settings.max_batch, settings.max_wait_ms, name)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "classes": self.classes}

    def request_schema(self, endpoint: str) -> dict[str, Any]:
        # One description for every image model; each model's input shape is in its card.
        return ImagePredictRequest.model_json_schema()

    async def answer_json(self, endpoint: str, body: bytes) -> dict[str, Any]:
        check_value_count(body, self.max_json_values, "this model's input")
        x, top_k = await self.parse_pool.run(self.json_to_input, body)
        return await self.classify(x, top_k)

    def json_to_input(self, body: bytes) -> tuple[np.ndarray, int]:
        """A JSON body -> (model input ``(C, H, W)``, top_k); runs in the parse pool."""
        request = parse_json(self.request_model, body)
        if request.pixels is not None:
            return pixels_to_input(request.pixels, self.input_spec), request.top_k
        return decode_base64_image(request.image_base64, self.input_spec), request.top_k

    async def answer_form(self, endpoint: str, form: FormData) -> dict[str, Any]:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InputError("Send the image as a file in the multipart form field 'file'.")
        top_k = form_top_k(form)
        data = await upload.read()
        x = await self.parse_pool.run(decode_image, data, self.input_spec)
        return await self.classify(x, top_k)

    async def classify(self, x: np.ndarray, top_k: int) -> dict[str, Any]:
        """The ``top_k`` most probable classes for one input ``x: (C, H, W)``."""
        probabilities = softmax(await self.batcher.run(x))
        best = np.argsort(-probabilities, kind="stable")[:top_k]
        return {
            "model": self.name,
            "predictions": [
                {"label": self.classes[i], "index": int(i), "probability": float(probabilities[i])}
                for i in best
            ],
        }

    def close(self) -> None:
        self.batcher.close()
