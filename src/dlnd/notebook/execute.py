"""Run notebooks top to bottom in fresh Jupyter kernels and keep what they showed.

The book runs every lesson once through :func:`execute_notebooks`; the same results tell the
tests whether any cell failed and how long each notebook took. Each notebook runs in its own
working folder (the runs it starts land there, not in the checkout).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A cell may train for a while; a cell that runs longer than this has hung.
CELL_TIMEOUT_S = 600
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class NotebookRun:
    """One executed notebook: the notebook with its outputs, its wall time, and the first
    error (the failing cell's number and traceback), if any."""

    path: Path
    notebook: Any  # nbformat.NotebookNode
    seconds: float
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.stem


def kernel_environment(base: Mapping[str, str], jobs: int) -> dict[str, str]:
    """The environment of each kernel: ``base`` without a forced matplotlib backend (so that
    figures show inline), and with the CPU cores shared out when ``jobs`` kernels run at once."""
    env = {k: v for k, v in base.items() if k != "MPLBACKEND"}
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def first_error(notebook: Any) -> str | None:
    """``cell N: Name: message`` and the traceback of the first error output, or None."""
    for number, cell in enumerate(notebook.cells, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                trace = _ANSI.sub("", "\n".join(output.get("traceback", [])))
                return f"cell {number}: {output['ename']}: {output['evalue']}\n{trace}"
    return None


async def _execute(path: Path, workdir: Path, env: dict[str, str]) -> NotebookRun:
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    workdir.mkdir(parents=True, exist_ok=True)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        # The kernel talks to this process over local TCP; its warning about that is noise.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    started = time.perf_counter()
    failure = None
    try:
        await client.async_execute(env=env)
    except nbclient.exceptions.CellExecutionError:
        pass  # the error is among the outputs; first_error reads it from there
    except Exception as err:  # a dead kernel, a timeout: no error output to read
        failure = f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - started
    return NotebookRun(path, notebook, seconds, first_error(notebook) or failure)


def execute_notebooks(
    paths: list[Path], workdir: Path, env: Mapping[str, str] | None = None, jobs: int = 1
) -> list[NotebookRun]:
    """Execute each notebook in ``paths`` in a fresh kernel, ``jobs`` at a time, each in
    ``workdir/<name>``; return the runs in the order of ``paths``."""
    kernel_env = kernel_environment(os.environ if env is None else env, jobs)

    async def run_all() -> list[NotebookRun]:
        slots = asyncio.Semaphore(jobs)

        async def one(path: Path) -> NotebookRun:
            async with slots:
                return await _execute(path, workdir / path.stem, kernel_env)

        return await asyncio.gather(*(one(path) for path in paths))

    return asyncio.run(run_all())


def _last_line_state(text: str) -> str:
    """Text as a terminal would leave it: each line ends as its last carriage return left it
    (a progress bar redrawn in place becomes its final state; a cleared one disappears)."""
    kept = []
    for line in text.split("\n"):
        final = line.rsplit("\r", 1)[-1]
        if final.strip() or "\r" not in line:
            kept.append(final)
    return "\n".join(kept)


def publishable(notebook: Any) -> Any:
    """``notebook`` without what only a live kernel can show: progress widgets (and their
    saved state) are dropped, consecutive prints to one stream are joined, and text redrawn
    with carriage returns is reduced to what a terminal would finally show."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept: list[Any] = []
        for output in cell.outputs:
            if WIDGET_VIEW in output.get("data", {}):
                continue
            previous = kept[-1] if kept else None
            if (
                output.get("output_type") == "stream"
                and previous is not None
                and previous.get("output_type") == "stream"
                and previous["name"] == output["name"]
            ):
                previous["text"] += output["text"]
            else:
                kept.append(output)
        for output in kept:
            if output.get("output_type") == "stream":
                output["text"] = _last_line_state(output["text"])
        cell.outputs = [o for o in kept if o.get("output_type") != "stream" or o["text"].strip()]
    return notebook
