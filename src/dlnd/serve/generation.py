"""The image-generation task: a seed in, images from a GAN's generator out (PNG, base64).

``POST /v1/models/{name}/generate`` takes ``{"n": 8, "seed": 42}`` (``n`` images of seed 42,
the images ``dlnd sample --n 8 --seed 42`` gives) or ``{"interpolate": [3, 7], "steps": 8}``
(a walk on the straight line between the latent vectors of seeds 3 and 7, each drawn as the
first and only vector of its seed: the end images are those of ``{"n": 1, "seed": 3}`` and
``{"n": 1, "seed": 7}``). The latent vectors are drawn with NumPy
(:func:`dlnd.generative.latent.seeded_latent`, as ``dlnd sample`` draws them) and the network
runs in ONNX Runtime: no PyTorch in the server.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dlnd.generative.latent import seeded_latent
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

MAX_IMAGES = 64  # one page of digits; a PNG of 28x28 is about 300 bytes, of 64x64x3 ~10 kB
MAX_STEPS = 32
MAX_REQUEST_VALUES = 8  # a valid body holds at most 3 fields, one of them 2 seeds
MAX_SEED = 2**63 - 1  # the seeds of torch.Generator.manual_seed that dlnd sample takes
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class GenerateRequest(BaseModel):
    """``n`` images of ``seed``, or ``steps`` images on the line between two seeds' vectors.

    Strict: numbers must be JSON integers (``"3"`` or ``3.0`` are refused)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    seed: Seed | None = Field(None, description="The seed of the latent vectors.")
    n: int = Field(8, ge=1, le=MAX_IMAGES, description="How many images (with seed).")
    interpolate: tuple[Seed, Seed] | None = Field(
        None, description="Two seeds: walk from the first image of one to that of the other."
    )
    steps: int = Field(
        8, ge=2, le=MAX_STEPS, description="Images on the walk, ends included (with interpolate)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> GenerateRequest:
        if (self.seed is None) == (self.interpolate is None):
            raise ValueError("give exactly one of seed (with n) or interpolate (with steps)")
        given = self.model_fields_set
        if self.seed is not None and "steps" in given:
            raise ValueError("steps goes with interpolate; with seed, give n")
        if self.interpolate is not None and "n" in given:
            raise ValueError("n goes with seed; with interpolate, give steps")
        return self


class GenerateResponse(BaseModel):
    """The images, in order, as base64 PNG files of the model's image size."""

    model: str
    images: list[str]
    width: int
    height: int


def latent_walk(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
    """``(steps, latent_size)``: z_t = (1 - t) start + t end for t evenly spaced in [0, 1],
    as :func:`dlnd.generative.models.latent_path`."""
    t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
    return ((1 - t) * start + t * end).astype(np.float32)


def to_pixels(images: np.ndarray) -> np.ndarray:
    """Generator output ``(N, C, H, W)`` in [-1, 1] -> uint8 ``(N, C, H, W)``:
    p = round((x + 1) * 127.5) clipped to 0..255 (as :func:`dlnd.generative.models.to_uint8`)."""
    return np.clip(np.round((images.astype(np.float32) + 1) * 127.5), 0, 255).astype(np.uint8)


def png_base64(pixels: np.ndarray) -> str:
    """One image ``(C, H, W)`` uint8 (C = 1 or 3) as a base64 PNG file."""
    picture = Image.fromarray(pixels[0] if len(pixels) == 1 else pixels.transpose(1, 2, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


GENERATION_PAGE = TaskPage(
    tab="generation",
    title="Generated images",
    html="image-generation.html",
    script="image-generation.js",
)


class ImageGenerator(ServedModel):
    """An exported GAN generator run by ONNX Runtime; requests run in the parse pool (each
    is one forward pass of at most :data:`MAX_IMAGES` vectors)."""

    task = "image-generation"
    endpoints = (Endpoint("generate", "Images from the generator, by seed.", GenerateResponse),)
    page = GENERATION_PAGE

    def __init__(
        self,
        name: str,
        card: dict[str, Any],
        folder: Path,
        settings: ServeSettings,
        parse_pool: ParsePool,
    ) -> None:
        super().__init__(name, card, folder, settings, parse_pool)
        self.latent_size = int(card["input"]["latent_size"])
        self.distribution = card["input"]["distribution"]
        self.image = {key: int(card["output"][key]) for key in ("channels", "height", "width")}
        self.model = OnnxModel(folder / card["file"], threads=settings.threads)
        self.model(np.zeros((1, self.latent_size), np.float32))  # warm up

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "image": self.image,
            "limits": {"n": MAX_IMAGES, "steps": MAX_STEPS, "seed": MAX_SEED},
        }

    def request_schema(self, endpoint: str) -> dict[str, Any]:
        return GenerateRequest.model_json_schema()

    async def answer_json(self, endpoint: str, body: bytes) -> dict[str, Any]:
        check_value_count(body, MAX_REQUEST_VALUES, "a generate request")
        images = await self.parse_pool.run(self.generate, body)
        return {"model": self.name, "images": images, **self.image_size()}

    def image_size(self) -> dict[str, int]:
        return {"width": self.image["width"], "height": self.image["height"]}

    def generate(self, body: bytes) -> list[str]:
        """A JSON body -> the base64 PNG images it asks for; runs in the parse pool."""
        request = parse_json(GenerateRequest, body)
        return [png_base64(image) for image in to_pixels(self.model(self.latent_of(request)))]

    def latent_of(self, request: GenerateRequest) -> np.ndarray:
        """The latent vectors ``(n, latent_size)`` a request asks for."""
        if request.seed is not None:
            return seeded_latent(request.n, self.latent_size, self.distribution, request.seed)
        start, end = (
            seeded_latent(1, self.latent_size, self.distribution, seed)
            for seed in request.interpolate
        )
        return latent_walk(start, end, request.steps)

    def close(self) -> None:
        """Nothing to release: requests run in the registry's parse pool."""
