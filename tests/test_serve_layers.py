"""How the server is put together: tasks registered by an explicit table (no import cycle,
no side effects), a task's own endpoints, and no PyTorch when serving exported models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from serve_fixtures import tiny_exports

from dlnd.errors import UserError
from dlnd.serve.app import create_app
from dlnd.serve.card import CARD_FILE, CARD_VERSION
from dlnd.serve.registry import TASKS
from dlnd.serve.task import Endpoint, ServedModel, parse_json


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return result.stdout.strip()


def test_serving_exported_models_never_imports_pytorch(tmp_path_factory):
    """The demo models and an exported model, asked with an upload and a pixel array."""
    exported = tiny_exports(tmp_path_factory)["digits"]
    code = f"""
import io, sys
from PIL import Image
import pytest
from fastapi.testclient import TestClient
from dlnd.errors import UserError
from dlnd.serve.app import create_app
from dlnd.serve.registry import demo_model_dirs
app = create_app([*demo_model_dirs(), {str(exported)!r}])
with TestClient(app) as client:
    png = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(png, "PNG")
    files = {{"file": ("a.png", png.getvalue())}}
    upload = client.post("/v1/models/cifar10-cnn/predict", files=files)
    pixels = client.post("/v1/models/tiny-digits/predict", json={{"pixels": [[0.5] * 28] * 28}})
    page = client.get("/")
print(upload.status_code, pixels.status_code, page.status_code, "torch" in sys.modules)
"""
    assert run_python(code) == "200 200 200 False"


def test_task_modules_do_not_import_the_registry():
    """Layers point one way: the registry imports the tasks, never the other way round."""
    code = (
        "import sys, dlnd.serve.classifier, dlnd.serve.task;"
        "print('dlnd.serve.registry' in sys.modules)"
    )
    assert run_python(code) == "False"


class EchoRequest(BaseModel):
    text: str


class EchoResponse(BaseModel):
    model: str
    text: str


class EchoTask(ServedModel):
    """A toy task with an endpoint besides ``predict``, as text generation will have."""

    task = "echo"
    endpoints = (
        Endpoint("predict", "The text as it is.", EchoResponse),
        Endpoint("reverse", "The text backwards.", EchoResponse),
    )

    def request_schema(self, endpoint: str) -> dict[str, Any]:
        return EchoRequest.model_json_schema()

    async def answer_json(self, endpoint: str, body: bytes) -> dict[str, Any]:
        text = parse_json(EchoRequest, body).text
        return {"model": self.name, "text": text[::-1] if endpoint == "reverse" else text}

    def close(self) -> None:
        pass


def echo_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"not needed by the echo task")
    card = {"card_version": CARD_VERSION, "format": "onnx", "task": "echo", "name": "echo"}
    (folder / CARD_FILE).write_text(json.dumps({**card, "file": "model.onnx"}))
    return folder


def test_a_task_from_the_table_brings_its_own_endpoints(tmp_path, tmp_path_factory):
    tasks = {**TASKS, "echo": EchoTask}
    digits = tiny_exports(tmp_path_factory)["digits"]
    app = create_app([echo_folder(tmp_path / "echo"), digits], tasks=tasks)
    with TestClient(app) as client:
        reverse = client.post("/v1/models/echo/reverse", json={"text": "abc"})
        assert reverse.json() == {"model": "echo", "text": "cba"}
        assert client.post("/v1/models/echo/predict", json={"text": "abc"}).json()["text"] == "abc"
        wrong = client.post("/v1/models/tiny-digits/reverse", json={"text": "abc"})
        assert wrong.status_code == 404
        assert "has no 'reverse' endpoint; it has: predict" in wrong.json()["detail"]
        upload = client.post("/v1/models/echo/predict", files={"file": ("a.png", b"x")})
        assert upload.status_code == 415
        described = client.get("/v1/models/echo").json()
        assert described["endpoints"] == ["predict", "reverse"]
        spec = client.get("/openapi.json").json()
        reverse_op = spec["paths"]["/v1/models/{name}/reverse"]["post"]
        assert reverse_op["parameters"][0]["schema"]["enum"] == ["echo"]
    # Without the table entry, the same folder is refused with the tasks that are known.
    with pytest.raises(UserError, match="this server serves image-classification"):
        create_app([tmp_path / "echo"])
