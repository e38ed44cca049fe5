"""Configuration: every option a run takes, its default, and how a value is checked.

This is the one home of defaults. :class:`TrainConfig` holds the training loop's knobs;
:data:`COMMON_OPTIONS` are the flags every recipe takes (their defaults come from
``TrainConfig`` where the loop uses them); :data:`TRAINER_OPTIONS` are the loop's flags that
PyTorch recipes add. An :class:`Option` checks a value the same way whether it comes from the
command line (text), from Python (``dlnd.run_recipe(..., lr=0.1)``) or from a recipe's own
defaults, so a bad value is refused before a run folder exists.

Nothing here imports PyTorch: the command line, the registry and the server can read it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
SCHEDULES = ("none", "onecycle", "cosine")
DEVICES = ("auto", "cpu", "cuda", "mps")


# --- value parsers: text (or a Python value) -> a checked value -------------------------------


def _number(kind: type, value: Any, accept: Callable[[Any], bool], expected: str) -> Any:
    """``value`` as an int or a finite float if ``accept`` says yes; otherwise an
    ``ArgumentTypeError`` saying what was ``expected``."""
    number = None
    if not isinstance(value, bool) and not (kind is int and isinstance(value, float)):
        try:
            number = kind(value)
        except (TypeError, ValueError):
            number = None
    if number is None or (kind is float and not math.isfinite(number)) or not accept(number):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")
    return number


def positive_int(value: Any) -> int:
    """A whole number >= 1."""
    return _number(int, value, lambda n: n >= 1, "a positive whole number")


def non_negative_int(value: Any) -> int:
    """A whole number >= 0."""
    return _number(int, value, lambda n: n >= 0, "a whole number >= 0")


def any_int(value: Any) -> int:
    """Any whole number (e.g. a seed)."""
    return _number(int, value, lambda n: True, "a whole number")


def finite_float(value: Any) -> float:
    """Any finite number."""
    return _number(float, value, lambda x: True, "a finite number")


def positive_float(value: Any) -> float:
    """A finite number > 0."""
    return _number(float, value, lambda x: x > 0, "a positive number")


def non_negative_float(value: Any) -> float:
    """A finite number >= 0."""
    return _number(float, value, lambda x: x >= 0, "a number >= 0")


def unit_interval(value: Any) -> float:
    """A number in [0, 1) (a probability of dropping, a momentum)."""
    return _number(float, value, lambda x: 0 <= x < 1, "a number in [0, 1)")


def text(value: Any) -> str:
    """Any text."""
    if not isinstance(value, str):
        raise argparse.ArgumentTypeError(f"expected text, got {value!r}")
    return value


def positive_int_list(value: Any) -> tuple[int, ...]:
    """ "3,4,5" (or a sequence of numbers) -> (3, 4, 5): one or more whole numbers >= 1,
    in the order given."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        numbers = tuple(positive_int(str(part).strip()) for part in parts)
    except (argparse.ArgumentTypeError, TypeError):
        numbers = ()
    if not numbers:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive whole numbers, got {value!r}"
        )
    return numbers


@dataclass(frozen=True)
class Option:
    """A command-line flag of a recipe, e.g. ``Option("--hidden-size", positive_int, 128, "...")``.

    ``type`` turns the flag's text into a checked value (raising ``ArgumentTypeError`` with
    a sentence otherwise); ``bool`` makes an on/off flag (``--bf16/--no-bf16``). A default
    of ``None`` means "not given". ``resumable`` says whether ``--resume`` may change it.
    """

    flag: str
    type: Callable[[Any], Any]
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    resumable: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def check(self, value: Any) -> Any:
        """``value`` (text or a Python value) checked and converted; ``ValueError`` if wrong."""
        if value is None and self.default is None:
            return None
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{self.flag} is on or off (True/False), got {value!r}")
            return value
        try:
            checked = self.type(value)
        except argparse.ArgumentTypeError as err:
            raise ValueError(f"{self.flag}: {err}") from None
        except (TypeError, ValueError):
            kind = getattr(self.type, "__name__", "value")
            raise ValueError(f"{self.flag}: expected a {kind} value, got {value!r}") from None
        if self.choices is not None and checked not in self.choices:
            choices = ", ".join(map(str, self.choices))
            raise ValueError(f"{self.flag} must be one of {choices}, got {value!r}")
        return checked


# --- the training loop's configuration ---------------------------------------------------------


@dataclass
class TrainConfig:
    """Every knob of the training loop, with its default. Built from a run's config by
    :meth:`from_cfg`, which ignores the entries that are not the loop's."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    clip_grad: float = 0.0  # max global gradient norm; 0 = no clipping
    patience: int = 0  # early stopping after this many epochs without improvement; 0 = off
    bf16: bool = False
    channels_last: bool = False
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 1000

    @classmethod
    def from_cfg(cls, cfg: dict[str, Any], **overrides: Any) -> TrainConfig:
        """Take the fields present in a run's ``cfg`` dict, then ``overrides``."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in cfg.items() if k in known and v is not None}
        values.update(overrides)
        return cls(**values)


def config_field_types() -> dict[str, type]:
    """The Python type of each :class:`TrainConfig` field (for checking recipe defaults)."""
    kinds = {"int": int, "float": float, "str": str, "bool": bool}
    return {f.name: kinds[str(f.type)] for f in fields(TrainConfig)}


_DEFAULT = TrainConfig()

COMMON_OPTIONS = (
    Option("--epochs", positive_int, _DEFAULT.epochs, "training epochs", resumable=True),
    Option("--batch-size", positive_int, _DEFAULT.batch_size, "examples per step"),
    Option("--lr", positive_float, _DEFAULT.lr, "learning rate"),
    Option("--seed", any_int, _DEFAULT.seed, "random seed"),
    Option("--device", text, _DEFAULT.device, "where to train", choices=DEVICES, resumable=True),
    Option(
        "--data-dir",
        text,
        None,
        "folder with the data set (default: $DLND_DATA, then the user cache)",
        resumable=True,
    ),
    Option("--out", text, "runs", "folder for run directories", resumable=True),
)
# Flags of every recipe that are not values of the run itself.
RUN_FLAGS: dict[str, Any] = {"quick": False, "embedded": False, "resume": None}
COMMON_DEFAULTS: dict[str, Any] = {o.dest: o.default for o in COMMON_OPTIONS} | RUN_FLAGS

TRAINER_OPTIONS = (
    Option("--optimizer", text, _DEFAULT.optimizer, "optimiser", choices=OPTIMIZERS),
    Option("--momentum", unit_interval, _DEFAULT.momentum, "momentum for sgd-style optimisers"),
    Option("--weight-decay", non_negative_float, _DEFAULT.weight_decay, "L2 weight decay"),
    Option("--schedule", text, _DEFAULT.schedule, "learning-rate schedule", choices=SCHEDULES),
    Option(
        "--clip-grad",
        non_negative_float,
        _DEFAULT.clip_grad,
        "clip the global gradient norm (0 = off)",
    ),
    Option(
        "--patience",
        non_negative_int,
        _DEFAULT.patience,
        "early-stopping patience in epochs (0 = off)",
        resumable=True,
    ),
    Option(
        "--bf16", bool, _DEFAULT.bf16, "bf16 autocast (fast on CPUs with AVX-512 bf16 and on GPUs)"
    ),
)


def resume_refusal(dest: str, saved: dict[str, Any], new: Any) -> str | None:
    """Why ``--resume`` cannot change ``dest`` to ``new`` even though the option allows it.

    A learning-rate schedule is planned over every step of the run, so a run with one keeps
    its number of epochs.
    """
    schedule = saved.get("schedule", "none")
    if dest == "epochs" and schedule not in (None, "none"):
        return (
            f"--epochs cannot change on --resume: the {schedule} learning-rate schedule was "
            f"planned for {saved['epochs']} epochs; start a new run for {new} epochs."
        )
    return None
