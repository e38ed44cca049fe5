"""The model card of an exported folder: its file name, version, and the facts every card
carries. Free of PyTorch, so serving exported models never imports it.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from dlnd.data.checksums import hash_file

CARD_FILE = "model_card.json"
CARD_VERSION = 1
# Config entries that say where a run read and wrote on its machine, not what the model is.
MACHINE_KEYS = ("data_dir", "out", "resume")


def file_facts(path: Path) -> dict[str, Any]:
    """The card's description of the model file: name, SHA-256 and size."""
    return {
        "file": path.name,
        "sha256": hash_file(path, "sha256"),
        "size_bytes": path.stat().st_size,
    }


def portable_config(config: dict[str, Any]) -> dict[str, Any]:
    """A run's settings without the paths of the machine it ran on."""
    return {k: v for k, v in config.items() if k not in MACHINE_KEYS}


def read_final_metrics(run_dir: Path) -> dict[str, float]:
    """The numeric metrics in a run's ``final.json`` (test scores), or ``{}`` if it has none."""
    with contextlib.suppress(OSError, ValueError, KeyError, AttributeError):
        final = json.loads((Path(run_dir) / "final.json").read_text(encoding="utf-8"))["metrics"]
        return {k: v for k, v in final.items() if isinstance(v, int | float)}
    return {}


def utc_stamp() -> str:
    """Now, as the card's ``exported`` time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
