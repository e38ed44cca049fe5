"""Running the real ``dlnd`` command line in a subprocess, as a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

SUPPORT = Path(__file__).parent / "support"


def dlnd_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SUPPORT), env.get("PYTHONPATH")]))
    env["DLND_RECIPE_MODULES"] = "tiny_recipes,toy_tasks"
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def run_dlnd(*args: str, cwd: Path | None = None, timeout: float = 300, **env: str):
    """``python -m dlnd ARGS``; returns the CompletedProcess with text output."""
    return subprocess.run(
        [sys.executable, "-m", "dlnd", *args],
        cwd=cwd,
        env=dlnd_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ctrl_c_as_in_a_terminal() -> None:
    """In the child, before it starts: SIGINT back to its default. A shell starts the
    commands of a background job (``pytest &`` in a script) with SIGINT ignored, which
    Python then keeps ignoring, and the Ctrl-C tests would send it to a deaf process."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_dlnd(*args: str, cwd: Path | None = None, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dlnd", *args],
        cwd=cwd,
        env=dlnd_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
