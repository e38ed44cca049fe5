"""The style-transfer task: a photo in, the photo painted in a run's artwork's style out.

Each request optimises the photo's pixels (Gatys et al.; :mod:`dlnd.pretrained.style`), which
takes seconds, so it runs as a job::

    POST /v1/models/{name}/stylise   a photo (multipart 'file', or JSON image_base64), with
                                     steps and size -> {"job": ID, "state": "queued", ...}
    POST /v1/models/{name}/job       {"job": ID} -> its state, step / steps, a preview of
                                     the image so far, and the image when done

Jobs run one at a time in a worker thread of their own; at most :data:`MAX_JOBS` are queued
or running per model and more are refused with a 503. The last :data:`KEPT_JOBS` jobs can be
asked about. The served setting is small on purpose (at most :data:`MAX_SIZE` pixels a side
and :data:`MAX_STEPS` updates): a result in seconds on a laptop's CPU.
"""

from __future__ import annotations

import base64
import io
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData, UploadFile

from dlnd.serve.errors import Busy, InputError, UnknownModel
from dlnd.serve.preprocess import base64_bytes, open_image
from dlnd.serve.task import (
    Endpoint,
    ParsePool,
    ServedModel,
    ServeSettings,
    TaskPage,
    check_value_count,
    parse_json,
)

LOG = logging.getLogger(__name__)
DEFAULT_SIZE, MIN_SIZE, MAX_SIZE = 192, 32, 256  # longer side of the result, in pixels
DEFAULT_STEPS, MAX_STEPS = 30, 100
MAX_JOBS = 2  # queued or running, per model: one painted, one waiting
KEPT_JOBS = 32  # finished jobs whose result can still be fetched
PREVIEW_EVERY = 5  # steps between two previews of the image being optimised
THUMBNAIL_SIDE = 96
MAX_REQUEST_VALUES = 8  # a valid JSON body holds at most 3 fields


class StyliseRequest(BaseModel):
    """A photo (base64) to paint, and how: ``steps`` updates at ``size`` pixels."""

    model_config = ConfigDict(extra="forbid", strict=True)

    image_base64: str = Field(
        description="The photo (PNG, JPEG, GIF, BMP or WebP) in base64; a "
        "'data:image/jpeg;base64,' prefix is allowed."
    )
    steps: int = Field(DEFAULT_STEPS, ge=1, le=MAX_STEPS, description="Updates of the image.")
    size: int = Field(
        DEFAULT_SIZE, ge=MIN_SIZE, le=MAX_SIZE, description="Longer side of the result (pixels)."
    )


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    job: str = Field(max_length=64, description="The job id that stylise answered.")


class JobResponse(BaseModel):
    """A job's state (``queued``, ``running``, ``done`` or ``failed``) and progress; the
    images are base64 PNG files."""

    model: str
    job: str
    state: str
    step: int
    steps: int
    width: int
    height: int
    seconds: float
    preview: str | None
    image: str | None
    detail: str | None


STYLE_FORM_FIELDS = {
    "file": {"type": "string", "format": "binary", "description": "The photo."},
    "steps": {"type": "integer", "minimum": 1, "maximum": MAX_STEPS, "default": DEFAULT_STEPS},
    "size": {"type": "integer", "minimum": MIN_SIZE, "maximum": MAX_SIZE, "default": DEFAULT_SIZE},
}
STYLE_PAGE = TaskPage(
    tab="style",
    title="Style transfer",
    html="style-transfer.html",
    script="style-transfer.js",
)


def png_base64(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def form_number(form: FormData, field: str, default: int, low: int, high: int) -> int:
    """A whole-number field of a multipart form, digits only, within [low, high]."""
    text = form.get(field, str(default))
    value = int(text) if isinstance(text, str) and re.fullmatch(r"[0-9]{1,6}", text) else -1
    if not low <= value <= high:
        raise InputError(f"{field} must be a whole number from {low} to {high}.")
    return value


class ServerStopping(Exception):
    """Raised in a running job when the server closes the model."""


@dataclass
class Job:
    """One photo being painted; the worker thread updates it, requests read it."""

    id: str
    steps: int
    width: int
    height: int
    state: str = "queued"
    step: int = 0
    preview: str | None = None
    image: str | None = None
    detail: str | None = None
    started: float = 0.0
    finished: float = 0.0

    def status(self, model: str) -> dict[str, Any]:
        end = self.finished or time.monotonic()
        return {
            "model": model,
            "job": self.id,
            "state": self.state,
            "step": self.step,
            "steps": self.steps,
            "width": self.width,
            "height": self.height,
            "seconds": round(end - self.started, 3) if self.started else 0.0,
            "preview": self.preview,
            "image": self.image,
            "detail": self.detail,
        }


class StyleTransfer(ServedModel):
    """A style-transfer run's artwork and settings (:mod:`dlnd.serve.style_export`) with its
    ImageNet backbone in PyTorch; each photo is optimised in a job."""

    task = "style-transfer"
    model_format = "pytorch"
    endpoints = (
        Endpoint(
            "stylise",
            "Start painting a photo in this model's style; answers a job to poll.",
            JobResponse,
            form_fields=STYLE_FORM_FIELDS,
        ),
        Endpoint("job", "The state, progress and result of a style-transfer job.", JobResponse),
    )
    page = STYLE_PAGE

    def __init__(
        self,
        name: str,
        card: dict[str, Any],
        folder: Path,
        settings: ServeSettings,
        parse_pool: ParsePool,
    ) -> None:
        super().__init__(name, card, folder, settings, parse_pool)
        from dlnd.pretrained import style
        from dlnd.pretrained.registry import get_backbone_spec, load_backbone

        chosen = card["settings"]
        self.backbone = load_backbone(chosen["backbone"])
        self.layers = replace(
            style.style_layers_for(get_backbone_spec(chosen["backbone"]).family),
            smoothing=float(chosen["smoothing"]),
            style_weight=float(chosen["style_weight"]),
        )
        self.content_weight = float(chosen["content_weight"])
        self.optimisation = style.StyleSettings(chosen["optimizer"], float(chosen["lr"]))
        with Image.open(folder / card["file"]) as picture:
            self.artwork = picture.convert("RGB")
        thumbnail = self.artwork.copy()
        thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        self.thumbnail = png_base64(thumbnail)
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.lock = threading.Lock()
        self.worker = ThreadPoolExecutor(1, thread_name_prefix=f"style-{name}")
        self.stopping = threading.Event()  # set on close: the running job stops at its next step

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "style_image": self.thumbnail,
            "style_source": self.card.get("style_source"),
            "backbone": self.card["settings"]["backbone"],
            "limits": {"size": [MIN_SIZE, MAX_SIZE], "steps": [1, MAX_STEPS], "jobs": MAX_JOBS},
            "defaults": {"size": DEFAULT_SIZE, "steps": DEFAULT_STEPS},
        }

    def request_schema(self, endpoint: str) -> dict[str, Any]:
        request = StyliseRequest if endpoint == "stylise" else JobRequest
        return request.model_json_schema()

    async def answer_json(self, endpoint: str, body: bytes) -> dict[str, Any]:
        check_value_count(body, MAX_REQUEST_VALUES, f"a {endpoint} request")
        if endpoint == "job":
            return self.job_status(parse_json(JobRequest, body).job)
        photo, steps = await self.parse_pool.run(self.json_photo, body)
        return self.start(photo, steps)

    def json_photo(self, body: bytes) -> tuple[Any, int]:
        """A JSON body -> (the photo ``(1, 3, H, W)``, steps); runs in the parse pool."""
        request = parse_json(StyliseRequest, body)
        return self.decode_photo(base64_bytes(request.image_base64), request.size), request.steps

    async def answer_form(self, endpoint: str, form: FormData) -> dict[str, Any]:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InputError("Send the photo as a file in the multipart form field 'file'.")
        steps = form_number(form, "steps", DEFAULT_STEPS, 1, MAX_STEPS)
        size = form_number(form, "size", DEFAULT_SIZE, MIN_SIZE, MAX_SIZE)
        photo = await self.parse_pool.run(self.decode_photo, await upload.read(), size)
        return self.start(photo, steps)

    @staticmethod
    def photo_spec(size: int) -> dict[str, Any]:
        return {"color": "RGB", "width": size, "height": size}

    def decode_photo(self, data: bytes, size: int) -> Any:
        """Photo bytes -> pixels ``(1, 3, H, W)`` in [0, 1], the longer side ``size``."""
        from dlnd.pretrained.style import resize_picture

        return resize_picture(open_image(data, self.photo_spec(size)), size)

    def start(self, photo: Any, steps: int) -> dict[str, Any]:
        """Queue a job for ``photo``, or refuse with :class:`Busy` when enough are waiting."""
        height, width = photo.shape[-2:]
        with self.lock:
            active = sum(job.state in ("queued", "running") for job in self.jobs.values())
            if active >= MAX_JOBS:
                raise Busy(
                    f"Model {self.name!r} is painting {active} photos already, the most it takes "
                    "at once; try again in a few seconds."
                )
            job = Job(secrets.token_urlsafe(12), steps, int(width), int(height))
            self.jobs[job.id] = job
            while len(self.jobs) > KEPT_JOBS:
                self.jobs.popitem(last=False)
        self.worker.submit(self.paint, job, photo)
        return job.status(self.name)

    def job_status(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise UnknownModel(
                f"Model {self.name!r} has no job {job_id!r}; only the last {KEPT_JOBS} jobs "
                "are kept, so start it again with stylise."
            )
        return job.status(self.name)

    def paint(self, job: Job, photo: Any) -> None:
        """Optimise ``photo`` in the worker thread, updating ``job`` as it goes."""
        from dlnd.pretrained import style

        job.state, job.started = "running", time.monotonic()
        try:
            art = style.resize_picture(self.artwork, max(job.width, job.height))
            objective = style.StyleObjective(
                self.backbone, photo, art, self.layers, self.content_weight
            )

            def progress(step: int, image: Any) -> None:
                if self.stopping.is_set():
                    raise ServerStopping
                job.step = step
                if step % PREVIEW_EVERY == 0 and step < job.steps:
                    job.preview = png_base64(style.to_pil(image))

            result = style.stylise(objective, photo, self.optimisation, job.steps, progress)
            job.image = png_base64(style.to_pil(result))
            job.state = "done"
        except ServerStopping:
            job.detail, job.state = "The server stopped before the photo was painted.", "failed"
        except Exception as err:  # the job fails, the server goes on
            LOG.exception("style-transfer job %s failed", job.id)
            job.detail = f"The optimisation failed ({type(err).__name__}); try again."
            job.state = "failed"
        finally:
            job.finished = time.monotonic()

    def close(self) -> None:
        self.stopping.set()
        self.worker.shutdown(wait=True, cancel_futures=True)
