"""The micro-batcher: requests share forward passes, and each caller gets its own answer."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnd.serve.batching import MicroBatcher


class RecordingModel:
    """``x -> 2x`` per example, remembering the size of every batch it was given."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.batch_sizes: list[int] = []
        self.delay_s = delay_s

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(batch))
        time.sleep(self.delay_s)
        return 2 * batch


def example(value: float) -> np.ndarray:
    return np.array([value, -value], np.float32)


async def ask(batcher: MicroBatcher, values) -> list[np.ndarray]:
    return await asyncio.gather(*(batcher.run(example(v)) for v in values))


async def until_a_pass_started(model: RecordingModel) -> None:
    while not model.batch_sizes:
        await asyncio.sleep(0.001)


def test_requests_arriving_together_share_one_forward_pass():
    model = RecordingModel()
    batcher = MicroBatcher(model, max_batch=64, max_wait_ms=50)
    results = asyncio.run(ask(batcher, range(10)))
    batcher.close()
    assert model.batch_sizes == [10]
    assert [r.tolist() for r in results] == [[2 * v, -2 * v] for v in range(10)]


def test_batches_never_exceed_max_batch():
    model = RecordingModel(delay_s=0.01)
    batcher = MicroBatcher(model, max_batch=4, max_wait_ms=50)
    results = asyncio.run(ask(batcher, range(10)))
    batcher.close()
    assert model.batch_sizes == [4, 4, 2]
    assert [r[0] for r in results] == [2 * v for v in range(10)]


def test_a_lone_request_waits_about_max_wait():
    batcher = MicroBatcher(RecordingModel(), max_batch=64, max_wait_ms=30)
    started = time.perf_counter()
    asyncio.run(ask(batcher, [1.0]))
    waited = time.perf_counter() - started
    batcher.close()
    assert 0.025 <= waited < 1.0


def test_requests_made_during_a_forward_pass_form_the_next_batch():
    """With no wait at all, batches grow from requests arriving while the model is busy."""
    model = RecordingModel(delay_s=0.1)
    batcher = MicroBatcher(model, max_batch=64, max_wait_ms=0)

    async def traffic() -> None:
        first = asyncio.ensure_future(batcher.run(example(0)))
        await until_a_pass_started(model)
        await ask(batcher, range(1, 21))
        await first

    asyncio.run(traffic())
    batcher.close()
    assert model.batch_sizes == [1, 20]


def test_a_failing_forward_pass_fails_its_callers_and_the_batcher_keeps_working():
    def fragile(batch: np.ndarray) -> np.ndarray:
        if np.isnan(batch).any():
            raise FloatingPointError("NaN in the batch")
        return batch + 1

    batcher = MicroBatcher(fragile, max_batch=8, max_wait_ms=20)

    async def traffic() -> None:
        outcomes = await asyncio.gather(
            batcher.run(example(1.0)), batcher.run(example(np.nan)), return_exceptions=True
        )
        assert all(isinstance(o, FloatingPointError) for o in outcomes)
        assert (await batcher.run(example(1.0)))[0] == 2.0

    asyncio.run(traffic())
    batcher.close()


def test_a_forward_pass_returning_the_wrong_number_of_rows_is_an_error():
    batcher = MicroBatcher(lambda batch: batch[:1], max_batch=8, max_wait_ms=20)
    with pytest.raises(RuntimeError, match="1 rows for 3 inputs"):
        asyncio.run(ask(batcher, [1, 2, 3]))
    batcher.close()


def test_callers_that_gave_up_are_left_out_of_the_batch():
    model = RecordingModel(delay_s=0.1)
    batcher = MicroBatcher(model, max_batch=64, max_wait_ms=0)

    async def traffic() -> None:
        first = asyncio.ensure_future(batcher.run(example(0)))
        await until_a_pass_started(model)
        gone = asyncio.ensure_future(batcher.run(example(1)))
        kept = asyncio.ensure_future(batcher.run(example(2)))
        await asyncio.sleep(0)  # both are waiting now
        gone.cancel()
        assert (await kept)[0] == 4.0
        await first

    asyncio.run(traffic())
    batcher.close()
    assert model.batch_sizes == [1, 1]


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        MicroBatcher(RecordingModel(), max_batch=0)
    with pytest.raises(ValueError):
        MicroBatcher(RecordingModel(), max_wait_ms=-1)


@settings(max_examples=25, deadline=None)
@given(
    waves=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    max_batch=st.integers(1, 9),
    max_wait_ms=st.sampled_from([0.0, 1.0, 5.0]),
)
def test_any_traffic_pattern_answers_every_caller_correctly(waves, max_batch, max_wait_ms):
    """Waves of simultaneous requests, a millisecond apart: every caller gets 2x its own
    input, no batch is over ``max_batch``, and every request is run exactly once."""
    model = RecordingModel()
    batcher = MicroBatcher(model, max_batch=max_batch, max_wait_ms=max_wait_ms)

    async def traffic() -> list[tuple[float, np.ndarray]]:
        tasks, value = [], 0
        for size in waves:
            for _ in range(size):
                value += 1
                tasks.append((value, asyncio.ensure_future(batcher.run(example(value)))))
            await asyncio.sleep(0.001)
        return [(v, await task) for v, task in tasks]

    answers = asyncio.run(traffic())
    batcher.close()
    assert all(out.tolist() == [2 * v, -2 * v] for v, out in answers)
    assert sum(model.batch_sizes) == sum(waves) == len(answers)
    assert max(model.batch_sizes) <= max_batch


def test_the_server_keeps_the_garbage_collector_out_of_the_request_path():
    import gc

    from dlnd.serve.commands import quiet_garbage_collector

    threshold = gc.get_threshold()
    try:
        quiet_garbage_collector()
        assert gc.get_freeze_count() > 0  # start-up objects are out of the collector's sight
        assert gc.get_threshold()[0] == 100_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 20), min_size=1, max_size=8),
    max_batch=st.integers(1, 9),
)
def test_requests_of_several_examples_are_split_and_answered_in_order(sizes, max_batch):
    """Blocks of rows (tabular requests) of any size: each caller gets 2x its own rows in
    order, no batch is over ``max_batch``, every row is run exactly once."""
    model = RecordingModel()
    batcher = MicroBatcher(model, max_batch=max_batch, max_wait_ms=1.0)
    blocks, start = [], 0
    for size in sizes:
        blocks.append(np.arange(start, start + size, dtype=np.float32)[:, None])
        start += size

    async def traffic() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.run_many(block) for block in blocks))

    answers = asyncio.run(traffic())
    batcher.close()
    for block, answer in zip(blocks, answers, strict=True):
        np.testing.assert_array_equal(answer, 2 * block)
    assert sum(model.batch_sizes) == sum(sizes)
    assert max(model.batch_sizes) <= max_batch


def test_every_batch_size_is_reported():
    sizes = []
    batcher = MicroBatcher(RecordingModel(), max_batch=4, max_wait_ms=20, on_batch=sizes.append)
    asyncio.run(ask(batcher, range(6)))
    batcher.close()
    assert sizes == [4, 2]
