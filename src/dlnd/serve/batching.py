"""Micro-batching: many concurrent single-example requests share one forward pass.

A forward pass on 64 images costs far less than 64 passes on one image (the weights are
read once, the matrix products are larger, the per-call overhead is paid once). Requests
wait in a list on the server's event loop; a batch leaves when ``max_batch`` examples are
waiting or the first of them has waited ``max_wait_ms``, and while the model is busy with
one batch the next one keeps growing. The forward pass itself runs in a worker thread
(ONNX Runtime releases Python's lock while it computes), so the event loop keeps reading
requests meanwhile.

Everything else happens on the event loop: no lock is handed between threads per request,
only once per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class MicroBatcher:
    """Run ``forward`` on batches gathered from concurrent :meth:`run` calls.

    ``forward``: ``(batch, *example_shape) -> (batch, *output_shape)`` numpy arrays; it runs
    in one worker thread, one batch at a time, so it need not be thread-safe. ``on_batch``
    is told the size of every batch run (for the server's metrics).

    Requests of several examples (:meth:`run_many`, e.g. rows of a table) join batches in
    pieces of at most ``max_batch`` examples, so no batch is ever larger than that.
    """

    def __init__(
        self,
        forward: Callable[[np.ndarray], np.ndarray],
        max_batch: int = 64,
        max_wait_ms: float = 2.0,
        name: str = "model",
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_ms >= 0")
        self.forward = forward
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.on_batch = on_batch
        self.batches_run = 0
        self.examples_run = 0
        self._waiting: list[tuple[np.ndarray, asyncio.Future]] = []  # (block (k, ...), its future)
        self._waiting_rows = 0
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"forward-{name}")

    async def run(self, example: np.ndarray) -> np.ndarray:
        """The output ``(*output_shape)`` for one example ``(*example_shape)``."""
        return (await self._submit(example[None]))[0]

    async def run_many(self, examples: np.ndarray) -> np.ndarray:
        """The outputs ``(k, *output_shape)`` for ``examples: (k, *example_shape)``."""
        pieces = [examples[i : i + self.max_batch] for i in range(0, len(examples), self.max_batch)]
        return np.concatenate(await asyncio.gather(*(self._submit(p) for p in pieces)))

    async def _submit(self, block: np.ndarray) -> np.ndarray:
        """Queue ``block: (k, ...)``, ``k <= max_batch``; its outputs ``(k, ...)``."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((block, future))
        self._waiting_rows += len(block)
        if not self._busy:
            if self._waiting_rows >= self.max_batch:
                self._start_batch()
            elif self._timer is None:
                self._timer = loop.call_later(self.max_wait_s, self._start_batch)
        return await future

    def close(self) -> None:
        """Stop the worker thread (after the batch it is running, if any)."""
        if self._timer is not None:
            self._timer.cancel()
        self._worker.shutdown(wait=True)

    def _take_batch(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        """The waiting blocks that fit in one batch, in order of arrival."""
        taken, rows = 0, 0
        while taken < len(self._waiting) and rows + len(self._waiting[taken][0]) <= self.max_batch:
            rows += len(self._waiting[taken][0])
            taken += 1
        batch = self._waiting[:taken]
        del self._waiting[:taken]
        self._waiting_rows -= rows
        return batch

    def _start_batch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # A caller that gave up (client disconnected) is dropped before the forward pass.
        batch = [(x, future) for x, future in self._take_batch() if not future.cancelled()]
        if batch:
            self._busy = True
            asyncio.ensure_future(self._run_batch(batch))
        elif self._waiting:
            self._start_batch()

    async def _run_batch(self, batch: list[tuple[np.ndarray, asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        sizes = [len(block) for block, _ in batch]
        try:
            inputs = np.concatenate([block for block, _ in batch])
            outputs = await loop.run_in_executor(self._worker, self.forward, inputs)
            if len(outputs) != len(inputs):
                raise RuntimeError(f"forward returned {len(outputs)} rows for {len(inputs)} inputs")
        except Exception as err:  # every caller of this batch learns about the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
        else:
            self.batches_run += 1
            self.examples_run += len(inputs)
            if self.on_batch is not None:
                self.on_batch(len(inputs))
            ends = np.cumsum(sizes)
            for (_, future), end, size in zip(batch, ends, sizes, strict=True):
                if not future.done():
                    future.set_result(outputs[end - size : end])
        finally:
            self._busy = False
            # Requests that arrived during the pass have waited as long as it took: go now.
            if self._waiting:
                self._start_batch()
