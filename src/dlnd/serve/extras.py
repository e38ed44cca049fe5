"""The ``serve`` extra (FastAPI, uvicorn, ONNX Runtime) is optional: import it on demand."""

from __future__ import annotations

import importlib
from types import ModuleType

from dlnd.errors import UserError


def import_extra(module: str) -> ModuleType:
    """Import ``module`` from the ``serve`` extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise UserError(
            f"Exporting and serving need {module.split('.')[0]!r}, which is not installed; "
            "install it with: pip install 'dlnd[serve]'."
        ) from err
