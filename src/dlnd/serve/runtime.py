"""An exported ONNX model as a plain function on numpy arrays, run by ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnd.serve.extras import import_extra


class OnnxModel:
    """``model(x)`` runs the ONNX graph at ``path`` (or given as serialised bytes) on its
    single input.

    ``threads`` is the number of threads one forward pass may use; a server that batches
    requests usually wants 1 (the batch already keeps the core busy).
    """

    def __init__(self, path: Path | bytes, threads: int = 1) -> None:
        ort = import_extra("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            path if isinstance(path, bytes) else str(path),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x: (batch, *input_shape)`` float32 -> the first output ``(batch, *output_shape)``."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)})[0]
