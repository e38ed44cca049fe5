"""Training speed of the NumPy engine against PyTorch on the CPU, in one process.

An MLP 784-256-128-10 (relu, softmax + cross-entropy), float32, plain SGD, mini-batches of
128, one epoch over 10,000 samples, trained by ``dlnd.scratch.MLP`` and by the equivalent
``torch.nn`` model with the same number of threads (OpenBLAS for NumPy, intra-op threads for
PyTorch). The table shows the median epoch time of each engine.

    python benchmarks/scratch_vs_torch.py [--threads N] [--repeats R] [--rounds K]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

SIZES = [784, 256, 128, 10]
SAMPLES, BATCH, LR = 10_000, 128, 0.05


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="BLAS / torch threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per block")
    parser.add_argument("--rounds", type=int, default=2, help="blocks per engine")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # The BLAS reads its thread count when NumPy is first imported.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)
    import numpy as np
    import torch

    from dlnd.scratch import MLP

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(SAMPLES, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], SAMPLES)

    net = MLP(SIZES, activation="relu", output="softmax", seed=0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(0)

    def numpy_epoch() -> float:
        start = time.perf_counter()
        net.fit(X, y, epochs=1, lr=LR, batch_size=BATCH, optimizer="sgd")
        return time.perf_counter() - start

    def torch_epoch() -> float:
        start = time.perf_counter()
        order = torch.randperm(SAMPLES, generator=generator)
        for begin in range(0, SAMPLES, BATCH):
            index = order[begin : begin + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X_t[index]), y_t[index])
            loss.backward()
            optimizer.step()
        return time.perf_counter() - start

    # Blocks of epochs per engine, alternating (numpy, torch, numpy, torch): a block starts
    # after the other engine's worker threads have gone idle, so neither steals the other's
    # cores, and a slow drift of the machine's load affects both alike.
    numpy_times, torch_times = [], []
    for _ in range(args.rounds):
        for epoch, times in ((numpy_epoch, numpy_times), (torch_epoch, torch_times)):
            epoch()  # warm-up: buffers, thread pools, kernels
            times += [epoch() for _ in range(args.repeats)]
    numpy_rate = SAMPLES / statistics.median(numpy_times)
    torch_rate = SAMPLES / statistics.median(torch_times)

    print(
        f"MLP {'-'.join(map(str, SIZES))}, float32, batch {BATCH}, {SAMPLES} samples/epoch, "
        f"{args.threads} thread(s); numpy {np.__version__}, torch {torch.__version__}, "
        f"python {platform.python_version()} on {platform.machine()}"
    )
    print("| engine | samples/s | epoch (ms) | ratio vs torch |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| dlnd.scratch (NumPy) | {numpy_rate:,.0f} | {1000 * SAMPLES / numpy_rate:.1f} "
        f"| {numpy_rate / torch_rate:.2f}x |"
    )
    print(f"| PyTorch (CPU) | {torch_rate:,.0f} | {1000 * SAMPLES / torch_rate:.1f} | 1.00x |")


if __name__ == "__main__":
    sys.exit(main())
