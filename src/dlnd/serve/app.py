"""The model server: a REST API over the model registry, plus the web page at ``/``.

Endpoints::

    GET  /healthz                      liveness and the number of models
    GET  /v1/models                    every model: name, task, endpoints, input, metrics
    GET  /v1/models/{name}             one model
    POST /v1/models/{name}/predict     JSON, or a multipart upload for image models
    POST /v1/models/{name}/{endpoint}  a task's other endpoints (e.g. ``generate``)
    GET  /docs, /openapi.json          the API description
    GET  /metrics                      Prometheus metrics (see dlnd.serve.observe)

Client mistakes get a 4xx with ``{"detail": "..."}`` (see :mod:`dlnd.serve.errors`). A
server error is a 500 and affects only its own request.
"""

from __future__ import annotations

import functools
import html
import operator
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from dlnd import __version__
from dlnd.serve import defaults
from dlnd.serve.errors import CLIENT_ERRORS, InputError, UnknownModel, UnsupportedInput
from dlnd.serve.extras import import_extra
from dlnd.serve.limits import BodyLimit
from dlnd.serve.observe import Observer, ServerMetrics
from dlnd.serve.registry import TASKS, ModelRegistry, load_models
from dlnd.serve.security import Guard
from dlnd.serve.task import Endpoint, ServedModel, ServeSettings, TaskPage

STATIC = Path(__file__).parent / "static"
JSON_TYPE, MULTIPART_TYPE = "application/json", "multipart/form-data"
# The status logged for a request whose client left before its answer (as nginx does).
CLIENT_LEFT = 499

router = APIRouter()


class ErrorBody(BaseModel):
    detail: str


class Health(BaseModel):
    status: str
    models: int


ERRORS = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        404: "No model of that name, or the model has no such endpoint.",
        408: "The body did not arrive in time.",
        413: "The body is over the size limit.",
        415: "The body is neither JSON nor (where accepted) a multipart upload.",
        422: "The body cannot become a model input (undecodable image, wrong shape, "
        "unknown feature, NaN...).",
    }.items()
}


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


def endpoint_route(path: str):
    """The handler of ``POST /v1/models/{name}/{path}``: JSON, or a multipart upload where
    the model's endpoint takes one. The answer is sent as built: the task's response model
    documents it, and re-validating it on every request would only cost time."""

    async def answer(request: Request) -> Response:
        model = registry_of(request).get(request.path_params["name"])
        endpoint = model.endpoint(path)
        if endpoint is None:
            offered = ", ".join(e.path for e in model.endpoints)
            raise UnknownModel(
                f"Model {model.name!r} ({model.task}) has no {path!r} endpoint; it has: {offered}."
            )
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type == JSON_TYPE:
            answer = await model.answer_json(path, await request.body())
            return answer if isinstance(answer, Response) else JSONResponse(answer)
        if media_type == MULTIPART_TYPE and endpoint.form_fields:
            return JSONResponse(await model.answer_form(path, await read_form(request)))
        accepted = JSON_TYPE + (
            f" or {MULTIPART_TYPE} (a file in the field 'file')" if endpoint.form_fields else ""
        )
        raise UnsupportedInput(
            f"Content type {media_type or 'none'!r} is not accepted; send {accepted}."
        )

    answer.__name__ = path
    return answer


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


def one_of(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    unique = list({repr(schema): schema for schema in schemas}.values())
    return unique[0] if len(unique) == 1 else {"oneOf": unique}


def request_body_schema(path: str, models: Sequence[ServedModel]) -> dict[str, Any]:
    """The OpenAPI request body of endpoint ``path``: each model's JSON and form schemas."""
    content = {JSON_TYPE: {"schema": one_of([m.request_schema(path) for m in models])}}
    form_schemas = [
        {"type": "object", "properties": fields, "required": ["file"]}
        for fields in (m.endpoint(path).form_fields for m in models)
        if fields
    ]
    if form_schemas:
        content[MULTIPART_TYPE] = {"schema": one_of(form_schemas)}
    return {"required": True, "content": content}


def served_endpoints(models: Sequence[ServedModel]) -> dict[str, list[ServedModel]]:
    """Each endpoint path of the served tasks -> the models that have it."""
    by_path: dict[str, list[ServedModel]] = {}
    for model in models:
        for endpoint in model.endpoints:
            by_path.setdefault(endpoint.path, []).append(model)
    return by_path


def add_endpoint_routes(app: FastAPI, models: Sequence[ServedModel]) -> None:
    """``POST /v1/models/{name}/{path}`` for every endpoint some served model has."""
    for path, having in served_endpoints(models).items():
        endpoints: list[Endpoint] = [model.endpoint(path) for model in having]
        app.add_api_route(
            f"/v1/models/{{name}}/{path}",
            endpoint_route(path),
            methods=["POST"],
            summary=endpoints[0].summary,
            response_model=functools.reduce(
                operator.or_, dict.fromkeys(e.response_model for e in endpoints)
            ),
            responses=ERRORS,
            openapi_extra={
                "parameters": [name_parameter(having)],
                "requestBody": request_body_schema(path, having),
            },
        )


def served_pages(models: Sequence[ServedModel]) -> list[TaskPage]:
    """The page tabs of the served tasks, each once, in order of first appearance."""
    return list(dict.fromkeys(type(m).page for m in models if type(m).page is not None))


def index_html(pages: Sequence[TaskPage]) -> str:
    """The web page with one tab per served kind of model (see ``static/tasks/``)."""
    tabs, panels, scripts = [], [], []
    for page in pages:
        tab = html.escape(page.tab)
        tabs.append(
            f'<button type="button" role="tab" id="tab-{tab}" data-tab="{tab}" '
            f'aria-controls="panel-{tab}">{html.escape(page.title)}</button>'
        )
        fragment = (STATIC / "tasks" / page.html).read_text(encoding="utf-8")
        panels.append(
            f'    <section id="panel-{tab}" class="tab-panel" role="tabpanel" '
            f'aria-labelledby="tab-{tab}" hidden>\n{fragment}    </section>'
        )
        scripts.append(f'  <script src="/static/tasks/{html.escape(page.script)}" defer></script>')
    template = (STATIC / "index.html").read_text(encoding="utf-8")
    return (
        template.replace("<!-- tabs -->", "".join(tabs))
        .replace("<!-- panels -->", "\n".join(panels))
        .replace("<!-- scripts -->", "\n".join(scripts))
    )


def error_handlers() -> dict[type[Exception], Any]:
    """Each client mistake -> its status code, with the message as ``detail``; a client
    that left mid-request -> nothing to answer (and no traceback in the log)."""

    def answer(status: int):
        async def handle(request: Request, err: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(err)}, status_code=status)

        return handle

    async def client_left(request: Request, err: Exception) -> Response:
        return Response(status_code=CLIENT_LEFT)

    return {
        **{error: answer(status) for error, status in CLIENT_ERRORS.items()},
        ClientDisconnect: client_left,
    }


def add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI served from the ``fastapi-offline`` package's files, so the
    page needs no CDN (and works offline)."""
    assets = Path(import_extra("fastapi_offline").__file__).parent / "static"

    async def docs_page() -> FileResponse:
        return FileResponse(STATIC / "docs.html")

    app.add_api_route("/docs", docs_page, include_in_schema=False)
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")


def create_app(
    model_dirs: Sequence[Path] = (),
    *,
    max_batch: int = defaults.MAX_BATCH,
    max_wait_ms: float = defaults.MAX_WAIT_MS,
    threads: int = defaults.FORWARD_THREADS,
    parse_threads: int = defaults.PARSE_THREADS,
    max_body_bytes: int = defaults.MAX_BODY_BYTES,
    body_timeout_s: float = defaults.BODY_TIMEOUT_S,
    allowed_hosts: Sequence[str] | None = None,
    api_key: str | None = None,
    access_log: bool = True,
    tasks: Mapping[str, type[ServedModel]] = TASKS,
) -> FastAPI:
    """The server application for ``model_dirs`` (run folders or exported folders; the
    demo models when empty). Models load now, so a bad folder fails before serving.

    ``parse_threads`` bound how many requests are parsed or decoded at once; a body must
    arrive within ``body_timeout_s``. ``allowed_hosts`` (``None``: any) are the names the
    server answers to, ``api_key`` the key the API requires (``None``: none; see
    :mod:`dlnd.serve.security`). Every request is counted in ``GET /metrics`` and, with
    ``access_log``, logged as one JSON line (see :mod:`dlnd.serve.observe`). ``tasks`` is
    the table of servable tasks (:data:`dlnd.serve.registry.TASKS`)."""
    settings = ServeSettings(max_batch, max_wait_ms, threads, parse_threads)
    registry = load_models(model_dirs, settings, tasks)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        registry.close()

    app = FastAPI(
        title="dlnd model server",
        version=__version__,
        lifespan=lifespan,
        exception_handlers=error_handlers(),
        docs_url=None,
        redoc_url=None,
        description="Predictions from models trained with dlnd. The page at / lets you "
        "draw a digit, drop an image or fill in a model's input form.",
    )
    app.state.registry = registry
    app.include_router(router)
    models = list(registry)
    metrics = ServerMetrics(max_batch)
    for model in models:
        model.observe_batches(metrics.batch_observer(model.name))
    app.add_api_route("/metrics", metrics.endpoint, include_in_schema=False)
    app.add_api_route(
        "/v1/models/{name}",
        get_model,
        responses={404: ERRORS[404]},
        openapi_extra={"parameters": [name_parameter(models)]},
    )
    add_endpoint_routes(app, models)
    page = index_html(served_pages(models))

    async def index_page() -> HTMLResponse:
        return HTMLResponse(page)

    app.add_api_route("/", index_page, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_docs(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, timeout_s=body_timeout_s)
    app.add_middleware(Guard, allowed_hosts=allowed_hosts, api_key=api_key)
    app.add_middleware(Observer, metrics=metrics, log=access_log)
    return app
