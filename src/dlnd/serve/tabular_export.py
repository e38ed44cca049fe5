"""A NumPy network -> an ONNX graph and a model card, so it is served like any other model.

The graph is written node by node from the weights with the ``onnx`` helper API; it is the
network's forward pass (see :mod:`dlnd.scratch.mlp`) on the encoded input columns::

    features (N, n_in) --MatMul W_1, Add b_1, f--> ... --MatMul W_L, Add b_L--> z (N, n_out)
    regression:      prediction = z * scale + shift        (N, 1), in the target's units
    classification:  probabilities = [1 - s(z), s(z)]       (N, 2) for a sigmoid output,
                                     softmax(z)             (N, K) for a softmax output

The card describes every feature (name, type, unit, range or categories, encoding) and the
target, so a client (or the web page) can build the input and read the answer. The export
is checked against the NumPy network on random valid rows. Nothing here imports PyTorch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dlnd import __version__
from dlnd.errors import UserError
from dlnd.io import atomic_write, atomic_write_text
from dlnd.scratch.features import Feature, Target, column_names, encode, input_width
from dlnd.scratch.mlp import MLP
from dlnd.serve.card import (
    CARD_FILE,
    CARD_VERSION,
    file_facts,
    portable_config,
    read_final_metrics,
    utc_stamp,
)
from dlnd.serve.extras import import_extra
from dlnd.store import MODEL_FILE, read_header

ONNX_FILE = "model.onnx"
INPUT_NAME = "features"
OPSET, IR_VERSION = 17, 9  # what ONNX Runtime 1.18 and later run
HIDDEN_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}
# Largest difference from the NumPy network accepted, relative to the output's size
# (float32 round-off; the admissions network computes in float64).
TOLERANCE = 1e-4
CHECK_ROWS = 64


def task_of(target: Target) -> str:
    """The served task of a network with this target."""
    return f"tabular-{target.kind}"


def check_network(net: MLP, features: list[Feature], target: Target) -> None:
    """Refuse a network whose input, output and description do not fit together."""
    if input_width(features) != net.sizes[0]:
        raise UserError(
            f"The features describe {input_width(features)} input columns but the network "
            f"takes {net.sizes[0]}; describe every column (see dlnd.scratch.features)."
        )
    fits = {
        "linear": target.kind == "regression" and net.sizes[-1] == 1,
        "sigmoid": target.kind == "classification"
        and len(target.classes) == 2
        and net.sizes[-1] == 1,
        "softmax": target.kind == "classification" and net.sizes[-1] == len(target.classes),
    }
    if not fits.get(net.output, False):
        raise UserError(
            f"A network with a {net.output} output of {net.sizes[-1]} unit(s) cannot serve a "
            f"{target.kind} target ({len(target.classes) or 'no'} classes); use a linear output "
            "for regression, sigmoid for two classes, softmax for more."
        )


def mlp_graph(net: MLP, target: Target) -> Any:
    """The ONNX model of ``net``'s forward pass, with the target's output layer."""
    onnx = import_extra("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    nodes, weights = [], []
    x = INPUT_NAME
    for i in range(1, net.n_layers + 1):
        for name in (f"W{i}", f"b{i}"):
            weights.append(numpy_helper.from_array(net.params[name].astype(np.float32), name))
        nodes.append(helper.make_node("MatMul", [x, f"W{i}"], [f"a{i}W{i}"]))
        nodes.append(helper.make_node("Add", [f"a{i}W{i}", f"b{i}"], [f"z{i}"]))
        x = f"z{i}"
        if i < net.n_layers:  # h_i = f(z_i)
            nodes.append(helper.make_node(HIDDEN_OPS[net.activation], [x], [f"h{i}"]))
            x = f"h{i}"
    if net.output == "linear":  # undo the target's standardisation
        weights.append(numpy_helper.from_array(np.float32([target.scale]), "scale"))
        weights.append(numpy_helper.from_array(np.float32([target.shift]), "shift"))
        nodes.append(helper.make_node("Mul", [x, "scale"], ["scaled"]))
        nodes.append(helper.make_node("Add", ["scaled", "shift"], ["prediction"]))
        output, width = "prediction", 1
    elif net.output == "sigmoid":  # P(second class) = s(z); P(first) = 1 - s(z)
        weights.append(numpy_helper.from_array(np.float32([1.0]), "one"))
        nodes.append(helper.make_node("Sigmoid", [x], ["p"]))
        nodes.append(helper.make_node("Sub", ["one", "p"], ["q"]))
        nodes.append(helper.make_node("Concat", ["q", "p"], ["probabilities"], axis=1))
        output, width = "probabilities", 2
    else:
        nodes.append(helper.make_node("Softmax", [x], ["probabilities"], axis=1))
        output, width = "probabilities", net.sizes[-1]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, onnx.TensorProto.FLOAT, ["batch", net.sizes[0]]
            )
        ],
        [helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, ["batch", width])],
        initializer=weights,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dlnd"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def numpy_outputs(net: MLP, target: Target, x: np.ndarray) -> np.ndarray:
    """What the graph must compute, by the NumPy network: ``(N, 1)`` values or ``(N, K)``
    probabilities for the encoded rows ``x: (N, n_in)``."""
    outputs = net.forward(x).astype(np.float64)
    if net.output == "linear":
        return outputs * target.scale + target.shift
    if net.output == "sigmoid":
        return np.concatenate([1 - outputs, outputs], axis=1)
    return outputs


def sample_rows(features: list[Feature], count: int, seed: int = 0) -> np.ndarray:
    """``count`` random valid rows as feature values ``(count, n_features)`` (see
    :meth:`Feature.value`): uniform over a range, any category, either boolean; an
    unbounded number so that its column is standard normal."""
    rng = np.random.default_rng(seed)
    columns = []
    for f in features:
        if f.kind == "category":
            column = rng.integers(0, len(f.categories), count).astype(np.float64)
        elif f.kind == "boolean":
            column = rng.integers(0, 2, count).astype(np.float64)
        elif f.minimum is not None:
            column = rng.uniform(f.minimum, f.maximum, count)
            column = np.round(column) if f.kind == "integer" else column
        else:
            column = (rng.standard_normal(count) - f.shift) / (f.scale or 1.0)
        columns.append(column)
    return np.stack(columns, axis=1)


def export_mlp(
    net: MLP,
    features: list[Feature],
    target: Target,
    out_dir: Path,
    *,
    name: str,
    recipe: str | None = None,
    dataset: str | None = None,
    config: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    chart_over: str | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/model.onnx`` and ``model_card.json`` for a NumPy network; return the
    card. ``features`` describe its input columns in order, ``target`` its output;
    ``chart_over`` names a feature the page charts predictions across."""
    check_network(net, features, target)
    if chart_over is not None and chart_over not in {f.name for f in features}:
        raise UserError(f"chart_over names {chart_over!r}, which is not one of the features.")
    out_dir = Path(out_dir)
    path = out_dir / ONNX_FILE
    graph = mlp_graph(net, target).SerializeToString()
    difference = verification_difference(graph, net, features, target)  # before any write
    atomic_write(path, lambda tmp: tmp.write_bytes(graph))
    card = {
        "card_version": CARD_VERSION,
        "name": name,
        "task": task_of(target),
        "recipe": recipe,
        "architecture": f"MLP {'-'.join(map(str, net.sizes))}, {net.activation} hidden "
        f"units, {net.output} output",
        "dataset": dataset,
        "format": "onnx",
        **file_facts(path),
        "features": [feature.to_json() for feature in features],
        "target": target.to_json(),
        "chart_over": chart_over,
        "input": {
            "name": INPUT_NAME,
            "layout": "NF",
            "dtype": "float32",
            "columns": column_names(features),
        },
        "output": output_description(net, target),
        "preprocessing": "Each feature becomes its input columns as its encoding says "
        "(scale: value * scale + shift, with a category's code or a boolean's 0/1 as value; "
        "one-hot: one column per allowed value); the columns follow the order of features.",
        "metrics": {"final": metrics or {}, "checkpoint": {}, "epoch": None},
        "config": portable_config(config or {}),
        "versions": {"export": export_versions()},
        "verification": {
            "inputs": f"{CHECK_ROWS} random valid rows",
            "max_rel_diff_vs_numpy": difference,
            "tolerance": TOLERANCE,
        },
        "exported": utc_stamp(),
    }
    atomic_write_text(out_dir / CARD_FILE, json.dumps(card, indent=2, ensure_ascii=False))
    return card


def verification_difference(path: Path, net: MLP, features: list[Feature], target: Target) -> float:
    """Largest difference between the ONNX and the NumPy outputs on random valid rows,
    relative to the outputs' size; raises if it is over :data:`TOLERANCE`."""
    from dlnd.serve.runtime import OnnxModel

    x = encode(features, sample_rows(features, CHECK_ROWS))
    expected = numpy_outputs(net, target, x)
    exported = OnnxModel(path)(x).astype(np.float64)
    difference = float(np.max(np.abs(exported - expected) / (1 + np.abs(expected))))
    if not difference <= TOLERANCE:
        raise RuntimeError(
            f"The exported graph differs from the NumPy network by {difference:.2e} "
            f"(relative; > {TOLERANCE:g})."
        )
    return difference


def output_description(net: MLP, target: Target) -> dict[str, Any]:
    if target.kind == "regression":
        meaning = f"{target.label or target.name} in {target.unit or 'the target units'}"
        return {"name": "prediction", "layout": "N1", "dtype": "float32", "meaning": meaning}
    return {
        "name": "probabilities",
        "layout": "NC",
        "dtype": "float32",
        "meaning": "the probability of each class, in the order of target.classes",
    }


def export_versions() -> dict[str, str]:
    return {
        "dlnd": __version__,
        "numpy": np.__version__,
        "onnx": import_extra("onnx").__version__,
    }


# ---- runs of the NumPy recipes ---------------------------------------------------------------


def read_run_meta(run_dir: Path) -> dict[str, Any]:
    """The metadata in the header of a run's ``model.safetensors`` (no weights are read,
    no PyTorch is imported)."""
    return read_header(Path(run_dir) / MODEL_FILE)[1]


def read_run(run_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata of a run's ``model.safetensors``, without PyTorch."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    meta = read_run_meta(run_dir)
    path = Path(run_dir) / MODEL_FILE
    try:
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"The checkpoint {path} is unreadable or corrupt ({err}).") from err


def is_numpy_run(meta: dict[str, Any]) -> bool:
    """Whether a run's metadata is that of a NumPy recipe (see ``save_params``)."""
    info = meta.get("info")
    return meta.get("framework") == "numpy" or (isinstance(info, dict) and "sizes" in info)


def is_numpy_network_run(meta: dict[str, Any]) -> bool:
    """Whether a run's metadata describes a NumPy network with its features (runs saved
    before features were described list only column names)."""
    info = meta.get("info")
    if not isinstance(info, dict) or "sizes" not in info:
        return False
    features = info.get("features")
    return isinstance(features, list) and bool(features) and isinstance(features[0], dict)


def network_of(arrays: dict[str, np.ndarray], info: dict[str, Any]) -> MLP:
    """The NumPy network a run saved, rebuilt from its sizes and weights."""
    net = MLP(
        info["sizes"],
        activation=info.get("activation", "sigmoid"),
        output=info.get("output", "sigmoid"),
        dtype=arrays["W1"].dtype,
    )
    for name, value in net.params.items():
        if arrays[name].shape != value.shape:
            raise ValueError(f"{name} has shape {arrays[name].shape}, not {value.shape}")
        value[...] = arrays[name]
    return net


def export_numpy_run(run_dir: Path, out_dir: Path | None = None, name: str | None = None) -> Path:
    """Export the network of a NumPy recipe's run (``bike-sharing``, ``admissions``, ...);
    returns the folder written (default ``RUN_DIR/export-onnx``)."""
    run_dir = Path(run_dir)
    arrays, meta = read_run(run_dir)
    if not is_numpy_network_run(meta):
        raise UserError(
            f"The run in {run_dir} (recipe {meta.get('recipe')!r}) does not describe its input "
            "features, so it cannot be served behind a form; export its network with "
            "dlnd.serve.tabular_export.export_mlp and a description of each feature."
        )
    info = meta["info"]
    try:
        net = network_of(arrays, info)
        features = [Feature.from_json(f) for f in info["features"]]
        target = Target.from_json(info["target"])
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(
            f"The checkpoint in {run_dir} has a damaged description ({err}); train it again."
        ) from err
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "export-onnx"
    export_mlp(
        net,
        features,
        target,
        out_dir,
        name=name or meta.get("recipe") or "mlp",
        recipe=meta.get("recipe"),
        dataset=meta.get("dataset"),
        config=meta.get("config"),
        metrics=read_final_metrics(run_dir),
        chart_over=info.get("chart_over"),
    )
    return out_dir
