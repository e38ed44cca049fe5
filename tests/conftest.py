"""Shared test fixtures.

Real data sets live outside the repository (``$DLND_DATA``, e.g. ``../shared/data``). When
they are missing a test is skipped on a developer machine but fails under ``CI=true``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# One thread per process unless told otherwise (set before NumPy and PyTorch start their
# pools): the tests' matrices are small, and on a shared 2-core machine two busy-waiting
# OpenMP threads make a step 10-20x slower (a quick sentiment-cnn run: 88 s -> 3.4 s under
# load, the same figures). Subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Test-only recipes (e.g. ``tiny``) live in tests/support; subprocesses get the same
# through DLND_RECIPE_MODULES (see helpers.dlnd_env).
sys.path.insert(0, str(Path(__file__).parent / "support"))
import tiny_recipes  # noqa: E402,F401  (registers the recipes)
import toy_tasks  # noqa: E402,F401


def require_shared_data(*relative: str) -> Path:
    """The ``$DLND_DATA`` folder, checked to contain ``relative`` paths; skip or fail if not."""
    root = os.environ.get("DLND_DATA")
    missing = [r for r in relative if not root or not (Path(root) / r).exists()]
    if root and Path(root).is_dir() and not missing:
        return Path(root)
    message = (
        f"shared data missing: DLND_DATA={root!r} lacks {missing or 'the folder'}; "
        "point DLND_DATA at the offline data folder (../shared/data)."
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def shared_data() -> Path:
    """Root of the offline data sets (``$DLND_DATA``)."""
    return require_shared_data()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep the user cache of every test inside a temporary folder shared by the session,
    and forbid downloads: a test that needs the network must serve it on 127.0.0.1 itself."""
    cache = tmp_path_factory.getbasetemp() / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("DLND_OFFLINE", "1")
