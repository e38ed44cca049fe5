"""The from-scratch recipes: ``dlnd run perceptron | gradient-descent | admissions |
bike-sharing | regularization | gd-variants``.

Each ``run(ctx)`` loads its data (generated in code under ``--embedded``, read from the data
folder otherwise), trains a NumPy model, logs one record per epoch, saves its figures and
learned parameters, and returns its final metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dlnd.config import non_negative_float, non_negative_int, positive_int, text, unit_interval
from dlnd.io import atomic_write, atomic_write_text
from dlnd.recipes import Option, Recipe, register
from dlnd.runs import RunContext
from dlnd.scratch import plots, synthetic
from dlnd.scratch.admissions import ADMISSION_TARGET, admissions_data
from dlnd.scratch.bike_sharing import prepare
from dlnd.scratch.features import Feature, Target, column_names
from dlnd.scratch.logistic import LogisticRegression
from dlnd.scratch.mlp import MLP, History
from dlnd.scratch.perceptron import Perceptron

# ------------------------------------------------------------------------------ shared steps


def save_params(ctx: RunContext, params: dict[str, np.ndarray], info: dict) -> None:
    """Write the learned arrays to ``model.safetensors`` with ``info`` as JSON metadata."""
    from safetensors.numpy import save_file

    arrays = {name: np.ascontiguousarray(value) for name, value in params.items()}
    meta = {
        "recipe": ctx.recipe.name,
        "framework": "numpy",
        "dataset": ctx.recipe.dataset,
        "config": ctx.cfg,
    }
    header = {"dlnd": json.dumps({**meta, "info": info}, default=str)}
    if ctx.is_main:
        atomic_write(
            ctx.run_dir / "model.safetensors",
            lambda tmp: save_file(arrays, str(tmp), metadata=header),
        )


def save_network(
    ctx: RunContext,
    net: MLP,
    features: list[Feature],
    target: Target,
    chart_over: str | None = None,
) -> None:
    """Save ``net`` with the description of what it takes and gives, so that ``dlnd export``
    and ``dlnd serve`` can turn it into a model behind a form. ``chart_over`` names a
    feature the page charts the prediction across (bike rentals over the hours of a day)."""
    info = {
        "sizes": net.sizes,
        "activation": net.activation,
        "output": net.output,
        "features": [feature.to_json() for feature in features],
        "columns": column_names(features),
        "target": target.to_json(),
    }
    save_params(ctx, net.params, info | ({"chart_over": chart_over} if chart_over else {}))


def log_history(ctx: RunContext, history: History | list[dict]) -> None:
    for row in history.rows if isinstance(history, History) else history:
        ctx.log_epoch({k: float(v) for k, v in row.items()} | {"epoch": int(row["epoch"])})


def log_side_by_side(ctx: RunContext, histories: dict[str, History]) -> None:
    """One record per epoch holding every setting's values, each key prefixed by the setting."""
    for epoch in range(1, max(len(h.rows) for h in histories.values()) + 1):
        row = {"epoch": epoch}
        for name, history in histories.items():
            if epoch <= len(history.rows):
                values = history.rows[epoch - 1].items()
                row |= {f"{name}_{k}": float(v) for k, v in values if k != "epoch"}
        ctx.log_epoch(row)


def data_file(ctx: RunContext, dataset: str, name: str) -> Path:
    """Path of file ``name`` of catalogue data set ``dataset`` (verified, downloaded if needed)."""
    from dlnd.data import resolve

    return resolve(dataset, ctx.cfg["data_dir"]) / name


def read_table(path: Path) -> dict[str, np.ndarray]:
    """The columns of a CSV file with a header (numeric columns as float64)."""
    from dlnd.data.readers import read_table as read_csv_table

    return read_csv_table(path)


def pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images ``(N, H, W)`` -> float32 rows ``(N, H * W)`` in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255)


def intro_points(ctx: RunContext) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D points of the intro lessons: ``X: (N, 2)``, ``y: (N,)`` in {0, 1}."""
    if ctx.cfg["embedded"]:
        return synthetic.two_blobs(seed=ctx.cfg["seed"])
    rows = np.loadtxt(data_file(ctx, "intro", "gradient_descent_data.csv"), delimiter=",", ndmin=2)
    return rows[:, :2], rows[:, 2].astype(np.int64)


def image_data(ctx: RunContext, train_size: int) -> tuple[np.ndarray, ...]:
    """``(X_train, y_train, X_val, y_val)``: flattened images in [0, 1] and integer labels.

    Embedded: generated 8x8 image classes. Otherwise ``train_size`` MNIST training images
    (chosen with the seed) and the MNIST held-out images as the validation set.
    """
    seed = ctx.cfg["seed"]
    if ctx.cfg["embedded"]:
        X, y = synthetic.image_classes(n=train_size + 1000, seed=seed)
        return X[:train_size], y[:train_size], X[train_size:], y[train_size:]
    from dlnd.data.readers import load_mnist

    mnist = load_mnist(ctx.cfg["data_dir"], seed=seed)
    ctx.info(mnist.source)
    chosen = np.random.default_rng(seed).permutation(len(mnist.train_labels))[:train_size]
    return (
        pixels(mnist.train_images[chosen]),
        mnist.train_labels[chosen],
        pixels(mnist.test_images),
        mnist.test_labels,
    )


# ------------------------------------------------------------------------------ perceptron


def run_perceptron(ctx: RunContext) -> dict[str, float]:
    X, y = intro_points(ctx)
    model = Perceptron(n_features=2, seed=ctx.cfg["seed"])
    history = model.fit(X, y, epochs=ctx.cfg["epochs"], lr=ctx.cfg["lr"])
    log_history(ctx, history)
    ctx.save_figure(
        plots.decision_boundaries(
            X,
            y,
            [*model.trajectory, (model.weights, model.bias)],  # ending with the pocket line
            [r["errors"] for r in history],
            "misclassified points",
            "Perceptron: boundary after each epoch",
        ),
        "decision_boundary",
    )
    save_params(ctx, {"weights": model.weights, "bias": np.array([model.bias])}, {"n_features": 2})
    errors = model.errors(X, y)  # of the pocket line: the best epoch's
    return {
        "errors": float(errors),
        "accuracy": 1.0 - errors / len(X),
        "epochs_run": float(len(history)),
    }


# ------------------------------------------------------------------------------ gradient descent


def run_gradient_descent(ctx: RunContext) -> dict[str, float]:
    X, y = intro_points(ctx)
    model = LogisticRegression(n_features=2, seed=ctx.cfg["seed"])
    boundaries = []

    def remember(row: dict) -> None:
        boundaries.append((model.weights.copy(), model.bias))
        row["train_accuracy"] = float(np.mean(model.predict(X) == y))

    batch = ctx.cfg["batch_size"] if ctx.cfg["batch_size"] < len(X) else None
    history = model.fit(
        X, y, epochs=ctx.cfg["epochs"], lr=ctx.cfg["lr"], batch_size=batch, on_epoch=remember
    )
    log_history(ctx, history)
    shown = boundaries[:: max(1, len(boundaries) // 10)] + boundaries[-1:]
    ctx.save_figure(
        plots.decision_boundaries(
            X,
            y,
            shown,
            history["train_loss"],
            "log-loss",
            "Gradient descent: boundary over the epochs (light to dark)",
        ),
        "decision_boundary",
    )
    save_params(ctx, model.params, {"sizes": model.sizes, "output": "sigmoid"})
    return {
        "train_loss": model.evaluate(X, y)["loss"],
        "train_accuracy": history["train_accuracy"][-1],
    }


# ------------------------------------------------------------------------------ admissions


def run_admissions(ctx: RunContext) -> dict[str, float]:
    cfg = ctx.cfg
    if cfg["embedded"]:
        table = synthetic.admissions_table(seed=cfg["seed"])
    else:
        table = read_table(data_file(ctx, "intro", "student_data.csv"))
    data = admissions_data(table, seed=cfg["seed"])
    X_train, y_train, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
    hidden = cfg["hidden_size"]
    if hidden:
        model = MLP(
            [X_train.shape[1], hidden, 1],
            activation="sigmoid",
            output="sigmoid",
            seed=cfg["seed"],
            dtype=np.float64,
        )
    else:
        model = LogisticRegression(X_train.shape[1], seed=cfg["seed"])
    history = model.fit(
        X_train,
        y_train,
        epochs=cfg["epochs"],
        lr=cfg["lr"],
        batch_size=cfg["batch_size"],
        X_val=X_test,
        y_val=y_test,
    )
    log_history(ctx, history)
    from dlnd.plots import learning_curves

    ctx.save_figure(learning_curves(history.rows, "Student admissions"), "learning_curves")
    save_network(ctx, model, data.features, ADMISSION_TARGET)
    train = model.evaluate(X_train, y_train)
    test = model.evaluate(X_test, y_test)
    return {
        "train_accuracy": train["accuracy"],
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
    }


# ------------------------------------------------------------------------------ bike sharing


def run_bike_sharing(ctx: RunContext) -> dict[str, float]:
    cfg = ctx.cfg
    if cfg["embedded"]:
        table = synthetic.bike_sharing_table(days=cfg["synthetic_days"], seed=cfg["seed"])
    else:
        table = read_table(data_file(ctx, "bike-sharing", "hour.csv"))
    data = prepare(table)
    net = MLP(
        [data.train.X.shape[1], cfg["hidden_size"], 1],
        activation="sigmoid",
        output="linear",
        seed=cfg["seed"],
    )
    history = net.fit(
        data.train.X,
        data.train.y,
        epochs=cfg["epochs"],
        lr=cfg["lr"],
        batch_size=cfg["batch_size"],
        optimizer=cfg["optimizer"],
        X_val=data.val.X,
        y_val=data.val.y,
        early_stopping=cfg["patience"] or None,
    )
    log_history(ctx, history)
    from dlnd.plots import learning_curves

    ctx.save_figure(learning_curves(history.rows, "Bike sharing: MSE on standardised cnt"), "loss")
    predicted = data.to_rentals(net.forward(data.test.X)[:, 0])
    actual = data.to_rentals(data.test.y[:, 0])
    ctx.save_figure(
        plots.predictions_vs_actual(data.test.dates, data.test.hours, predicted, actual),
        "predictions",
    )
    save_network(ctx, net, data.features, data.target, chart_over="hr")
    mse = {
        f"{name}_mse": net.evaluate(part.X, part.y)["loss"]
        for name, part in (("train", data.train), ("val", data.val), ("test", data.test))
    }
    mse["test_rmse_bikes"] = float(np.sqrt(np.mean((predicted - actual) ** 2)))
    mse["best_epoch"] = float(history.best_epoch)
    return mse


# ------------------------------------------------------------------------------ regularization


def regularization_settings(cfg: dict) -> dict[str, dict]:
    """Each setting of the study: MLP keyword arguments plus the early-stopping patience."""
    return {
        "none": {},
        "l2": {"l2": cfg["l2"]},
        "l1": {"l1": cfg["l1"]},
        "dropout": {"dropout": cfg["dropout"]},
        "early-stopping": {"patience": cfg["patience"]},
    }


def run_regularization(ctx: RunContext) -> dict[str, float]:
    """Train the same wide MLP once per setting; the gap is validation loss - training loss.

    The loss gap is what regularisation acts on (the accuracy gap is also shown: on MNIST it
    barely moves while the network still fits every training image).
    """
    cfg = ctx.cfg
    X_train, y_train, X_val, y_val = image_data(ctx, cfg["train_size"])
    width, classes = cfg["hidden_size"], int(max(y_train.max(), y_val.max())) + 1
    histories, metrics, lines = {}, {}, []
    for name, setting in regularization_settings(cfg).items():
        settings = dict(setting)
        patience = settings.pop("patience", None)
        net = MLP(
            [X_train.shape[1], width, width, classes],
            activation="relu",
            output="softmax",
            seed=cfg["seed"],
            **settings,
        )

        def add_train_metrics(row: dict, net: MLP = net) -> None:
            row.update(net.evaluate(X_train, y_train, prefix="train_"))

        history = net.fit(
            X_train,
            y_train,
            epochs=cfg["epochs"],
            lr=cfg["lr"],
            batch_size=cfg["batch_size"],
            X_val=X_val,
            y_val=y_val,
            early_stopping=patience,
            on_epoch=add_train_metrics,
        )
        histories[name] = history
        train, val = net.evaluate(X_train, y_train), net.evaluate(X_val, y_val)
        result = {
            "train_accuracy": train["accuracy"],
            "val_accuracy": val["accuracy"],
            "accuracy_gap": train["accuracy"] - val["accuracy"],
            "train_loss": train["loss"],
            "val_loss": val["loss"],
            "gap": val["loss"] - train["loss"],
        }
        metrics |= {f"{name}_{k}": v for k, v in result.items()}
        lines.append(
            f"| {name} | {result['train_accuracy']:.3f} | {result['val_accuracy']:.3f} | "
            f"{result['accuracy_gap']:.3f} | {result['train_loss']:.3f} | "
            f"{result['val_loss']:.3f} | {result['gap']:.3f} | {history.best_epoch} |"
        )
        ctx.info(lines[-1])
    log_side_by_side(ctx, histories)
    table = (
        "| setting | train acc | val acc | acc gap | train loss | val loss | loss gap "
        "| epochs kept |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        + "\n".join(lines)
        + "\n"
    )
    if ctx.is_main:
        atomic_write_text(ctx.run_dir / "regularization.md", table)
    ctx.save_figure(plots.learning_curves_by_setting(histories), "learning_curves")
    return metrics


# ------------------------------------------------------------------------------ gd variants


def run_gd_variants(ctx: RunContext) -> dict[str, float]:
    cfg = ctx.cfg
    X, y, X_val, y_val = image_data(ctx, cfg["train_size"])
    variants = {"batch": None, "mini-batch": cfg["batch_size"], "stochastic": 1}
    histories, metrics = {}, {}
    for name, batch_size in variants.items():
        net = MLP(
            [X.shape[1], cfg["hidden_size"], int(y.max()) + 1],
            activation="relu",
            output="softmax",
            seed=cfg["seed"],
        )
        histories[name] = net.fit(
            X,
            y,
            epochs=cfg["epochs"],
            lr=cfg["lr"],
            batch_size=batch_size,
            X_val=X_val,
            y_val=y_val,
            on_epoch=lambda row, net=net: row.update(full_train_loss=net.evaluate(X, y)["loss"]),
        )
        last = histories[name].rows[-1]
        metrics |= {
            f"{name}_train_loss": last["full_train_loss"],
            f"{name}_val_accuracy": last["val_accuracy"],
            f"{name}_seconds": last["time_s"],
        }
        ctx.info(
            f"{name:>10}: loss {last['full_train_loss']:.4f}, val accuracy "
            f"{last['val_accuracy']:.3f}, {last['time_s']:.2f} s"
        )
    log_side_by_side(ctx, histories)
    ctx.save_figure(plots.loss_by_epoch_and_time(histories), "loss_by_epoch_and_time")
    return metrics


# ------------------------------------------------------------------------------ registry

TRAIN_SIZE = Option(
    "--train-size", positive_int, 2000, "training images (MNIST) or generated examples"
)

PERCEPTRON = register(
    Recipe(
        name="perceptron",
        summary="The perceptron trick (pocket variant) on 2-D points, boundary per epoch.",
        dataset="intro",
        target="zero or few misclassified points",
        framework="numpy",
        run=run_perceptron,
        defaults={"epochs": 50, "lr": 0.01, "batch_size": 1},
        quick={"epochs": 20},
    )
)

GRADIENT_DESCENT = register(
    Recipe(
        name="gradient-descent",
        summary="Logistic regression by gradient descent, boundary and log-loss per epoch.",
        dataset="intro",
        target="log-loss below 0.25",
        framework="numpy",
        run=run_gradient_descent,
        defaults={"epochs": 200, "lr": 3.0, "batch_size": 100},
        quick={"epochs": 60},
    )
)

ADMISSIONS = register(
    Recipe(
        name="admissions",
        summary="Student admissions: logistic regression (or --hidden-size N) on gre, gpa, rank.",
        dataset="intro",
        target="held-out accuracy about 0.7",
        framework="numpy",
        run=run_admissions,
        options=(
            Option("--hidden-size", non_negative_int, 0, "hidden units; 0 = logistic regression"),
        ),
        defaults={"epochs": 200, "lr": 0.1, "batch_size": 32},
        quick={"epochs": 40},
    )
)

BIKE_SHARING = register(
    Recipe(
        name="bike-sharing",
        summary="Predict hourly bike rentals with a one-hidden-layer NumPy network.",
        dataset="bike-sharing",
        target="train MSE < 0.09, validation MSE < 0.18 (standardised cnt)",
        framework="numpy",
        run=run_bike_sharing,
        options=(
            Option("--hidden-size", positive_int, 32, "hidden units"),
            Option(
                "--optimizer", text, "momentum", "update rule", choices=("sgd", "momentum", "adam")
            ),
            Option(
                "--patience", non_negative_int, 15, "early-stopping patience in epochs (0 = off)"
            ),
            Option(
                "--synthetic-days", positive_int, 730, "days of generated data under --embedded"
            ),
        ),
        defaults={"epochs": 60, "lr": 0.02, "batch_size": 128},
        quick={"epochs": 30},
    )
)

REGULARIZATION = register(
    Recipe(
        name="regularization",
        summary="A wide MLP overfits; L2, L1, dropout and early stopping close the gap.",
        dataset="mnist",
        target="every technique shrinks the gap between validation and training loss",
        framework="numpy",
        run=run_regularization,
        options=(
            TRAIN_SIZE,
            Option("--hidden-size", positive_int, 256, "units in each of the two hidden layers"),
            Option("--l2", non_negative_float, 3e-3, "L2 penalty strength"),
            Option("--l1", non_negative_float, 3e-4, "L1 penalty strength"),
            Option("--dropout", unit_interval, 0.5, "dropout probability of hidden units"),
            Option("--patience", non_negative_int, 3, "early-stopping patience in epochs"),
        ),
        defaults={"epochs": 40, "lr": 0.1, "batch_size": 32},
        quick={
            "epochs": 30,
            "train_size": 300,
            "hidden_size": 128,
            "l2": 1e-2,
            "l1": 3e-3,
            "patience": 2,
        },
    )
)

GD_VARIANTS = register(
    Recipe(
        name="gd-variants",
        summary="Batch vs stochastic vs mini-batch gradient descent, per epoch and per second.",
        dataset="mnist",
        target="each variant lowers the loss; compare them per epoch and per second",
        framework="numpy",
        run=run_gd_variants,
        options=(TRAIN_SIZE, Option("--hidden-size", positive_int, 64, "hidden units")),
        defaults={"epochs": 10, "lr": 0.05, "batch_size": 32},
        quick={"epochs": 6, "train_size": 500},
    )
)
