"""The model server: a REST API over the model registry, plus the web page at ``/``.

Endpoints::

    GET  /healthz                      liveness and the number of models
    GET  /v1/models                    every model: name, task, input, classes, metrics
    GET  /v1/models/{name}             one model
    POST /v1/models/{name}/predict     JSON (base64 image or pixel array) or a multipart upload
    GET  /docs, /openapi.json          the API description

Client mistakes get a 4xx with ``{"detail": "..."}``: unknown model 404, body too large 413,
content type other than JSON or multipart 415, anything that cannot become a model input
422. A server error is a 500 and affects only its own request.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from dlnd import __version__
from dlnd.serve.limits import BodyLimit, BodyTooLarge
from dlnd.serve.preprocess import InputError
from dlnd.serve.registry import (
    ModelRegistry,
    ServedModel,
    ServeSettings,
    UnknownModel,
    UnsupportedInput,
    load_models,
)

STATIC = Path(__file__).parent / "static"
# Big enough for a phone photo; the pixel array of a 32x32 RGB image is about 40 kB.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
JSON_TYPE, MULTIPART_TYPE = "application/json", "multipart/form-data"

router = APIRouter()


class ErrorBody(BaseModel):
    detail: str


class Health(BaseModel):
    status: str
    models: int


ERRORS = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        404: "No model of that name.",
        413: "The body is over the size limit.",
        415: "The body is neither JSON nor a multipart upload.",
        422: "The body cannot become a model input (undecodable image, wrong shape, NaN...).",
    }.items()
}


async def index_page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


def registry_of(request: Request) -> ModelRegistry:
    return request.app.state.registry


@router.get("/healthz", response_model=Health)
async def healthz(request: Request) -> dict[str, Any]:
    return {"status": "ok", "models": len(registry_of(request))}


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    return {"models": [model.describe() for model in registry_of(request)]}


# The model name is read from the path here (not declared as an argument) so that the API
# description can list the served names instead of "any string" (see name_parameter).
async def get_model(request: Request) -> dict[str, Any]:
    return registry_of(request).get(request.path_params["name"]).describe()


async def predict(request: Request) -> JSONResponse:
    """Predict with one model: JSON or a multipart upload (see the model's request schema).

    The answer is sent as built: the task's response model documents it, and re-validating
    it on every request would only cost time.
    """
    model = registry_of(request).get(request.path_params["name"])
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == JSON_TYPE:
        return JSONResponse(await model.predict_json(await request.body()))
    if media_type == MULTIPART_TYPE:
        return JSONResponse(await model.predict_form(await read_form(request)))
    raise UnsupportedInput(
        f"Content type {media_type or 'none'!r} is not accepted; send {JSON_TYPE} or "
        f"{MULTIPART_TYPE} (an image file in the field 'file')."
    )


async def read_form(request: Request):
    """The multipart form of ``request``, with a 422 (not a 400) for a malformed one."""
    try:
        return await request.form(max_files=1, max_fields=8)
    except HTTPException as err:
        raise InputError(f"The multipart body is malformed: {err.detail}") from err


def name_parameter(models: Sequence[ServedModel]) -> dict[str, Any]:
    """The ``{name}`` path parameter, documented with the names this server serves."""
    return {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "model name",
        "schema": {"type": "string", "enum": [model.name for model in models]},
    }


def served_tasks(models: Sequence[ServedModel]) -> list[type[ServedModel]]:
    """The task classes of ``models``, each once, in order of first appearance."""
    return list(dict.fromkeys(type(model) for model in models))


def request_body_schema(models: Sequence[ServedModel]) -> dict[str, Any]:
    """The OpenAPI request body of ``predict``: each served task's JSON and form schemas."""
    tasks = served_tasks(models)
    json_schemas = [task.request_model.model_json_schema() for task in tasks]
    form_schemas = [
        {"type": "object", "properties": task.form_fields, "required": ["file"]}
        for task in tasks
        if task.form_fields
    ]
    content = {JSON_TYPE: {"schema": one_of(json_schemas)}}
    if form_schemas:
        content[MULTIPART_TYPE] = {"schema": one_of(form_schemas)}
    return {"required": True, "content": content}


def response_model(models: Sequence[ServedModel]) -> Any:
    """The union of the served tasks' response models (for the API description)."""
    return functools.reduce(operator.or_, [task.response_model for task in served_tasks(models)])


def one_of(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    return schemas[0] if len(schemas) == 1 else {"oneOf": schemas}


def error_handlers() -> dict[type[Exception], Any]:
    """Each client mistake -> its status code, with the message as ``detail``."""

    def answer(status: int):
        async def handle(request: Request, err: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(err)}, status_code=status)

        return handle

    return {
        UnknownModel: answer(404),
        BodyTooLarge: answer(413),
        UnsupportedInput: answer(415),
        InputError: answer(422),
    }


def create_app(
    model_dirs: Sequence[Path] = (),
    *,
    max_batch: int = 64,
    max_wait_ms: float = 2.0,
    threads: int = 1,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The server application for ``model_dirs`` (run folders or exported folders; the
    demo models when empty). Models load now, so a bad folder fails before serving."""
    registry = load_models(model_dirs, ServeSettings(max_batch, max_wait_ms, threads))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        registry.close()

    app = FastAPI(
        title="dlnd model server",
        version=__version__,
        lifespan=lifespan,
        exception_handlers=error_handlers(),
        description="Predictions from models trained with dlnd. The page at / lets you "
        "draw a digit or drop an image.",
    )
    app.state.registry = registry
    app.include_router(router)
    models = list(registry)
    app.add_api_route(
        "/v1/models/{name}",
        get_model,
        responses={404: ERRORS[404]},
        openapi_extra={"parameters": [name_parameter(models)]},
    )
    app.add_api_route(
        "/v1/models/{name}/predict",
        predict,
        methods=["POST"],
        response_model=response_model(models),
        responses=ERRORS,
        openapi_extra={
            "parameters": [name_parameter(models)],
            "requestBody": request_body_schema(models),
        },
    )
    app.add_api_route("/", index_page, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app
