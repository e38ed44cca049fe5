"""Tabular inputs described for people and for machines.

A NumPy network takes a row of numbers ``x: (n_in,)``; a person thinks in features: hour 8,
season "summer", 21 °C. A :class:`Feature` says what values one feature takes (its type,
unit, range or categories) and how they become columns of ``x``:

    scale:    one column,  x_j = value * scale + shift
              (standardisation is scale = 1 / std, shift = -mean / std)
    one-hot:  one column per allowed value, 1 where the value is, 0 elsewhere

Features are listed in column order, so encoding a row concatenates their columns. A
:class:`Target` says what the network's output means: a value in real units (regression;
``value = output * scale + shift`` undoes the target's standardisation) or class
probabilities (classification).

The descriptions travel as JSON in a run's checkpoint header and in a served model's card;
the server checks requests against them (:func:`parse_rows`) with messages that name the
feature and what it accepts.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

KINDS = ("number", "integer", "category", "boolean")
ENCODINGS = ("scale", "one-hot")
# Messages about a request list at most this many problems.
SHOWN_PROBLEMS = 5


class FeatureError(ValueError):
    """A value a feature does not accept; the message names the feature and what it takes."""


@dataclass(frozen=True)
class Feature:
    """One input feature: what it takes and how it is encoded (see the module docstring).

    ``minimum``/``maximum`` bound a number or integer (both given, or neither; an integer
    encoded one-hot needs them: one column per whole number between). A category lists its
    ``categories`` (names) and may give the data set's ``codes`` for them (season 1-4);
    either is accepted. Encoded by ``scale``, a category contributes its code (or its index
    when it has no codes), a boolean 0 or 1.
    """

    name: str
    kind: str
    label: str = ""
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()
    codes: tuple[int, ...] = ()
    encoding: str = "scale"
    scale: float = 1.0
    shift: float = 0.0
    default: Any = None

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"feature {self.name!r}: {problem}")

    def _problem(self) -> str | None:
        if self.kind not in KINDS:
            return f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}"
        if self.encoding not in ENCODINGS:
            return f"encoding must be one of {', '.join(ENCODINGS)}, not {self.encoding!r}"
        if (self.minimum is None) != (self.maximum is None):
            return "give both minimum and maximum, or neither"
        if self.minimum is not None and not self.minimum <= self.maximum:
            return "minimum must not exceed maximum"
        if self.kind == "category" and not self.categories:
            return "a category needs its categories"
        if self.codes and len(self.codes) != len(self.categories):
            return "give one code per category"
        if self.encoding == "one-hot" and self.kind in ("number", "boolean"):
            return f"a {self.kind} is encoded by scale, not one-hot"
        one_hot_integer = self.encoding == "one-hot" and self.kind == "integer"
        if one_hot_integer and (self.minimum is None or self.maximum - self.minimum > 10_000):
            return "a one-hot integer needs a minimum and maximum at most 10,000 apart"
        if not (math.isfinite(self.scale) and math.isfinite(self.shift)):
            return "scale and shift must be finite"
        return None

    # ---- description -------------------------------------------------------------------

    @property
    def width(self) -> int:
        """How many input columns this feature takes."""
        if self.encoding == "scale":
            return 1
        if self.kind == "category":
            return len(self.categories)
        return int(self.maximum - self.minimum) + 1

    def column_names(self) -> list[str]:
        """Names of this feature's input columns (``hr_0`` ... ``hr_23`` for one-hot)."""
        if self.encoding == "scale":
            return [self.name]
        if self.kind == "category":
            values = self.codes or self.categories
            return [f"{self.name}_{v}" for v in values]
        return [f"{self.name}_{v}" for v in range(int(self.minimum), int(self.maximum) + 1)]

    def accepts(self) -> str:
        """What this feature takes, in words: ``a whole number from 0 to 23``."""
        unit = f" ({self.unit})" if self.unit else ""
        span = f" from {self.minimum:g} to {self.maximum:g}" if self.minimum is not None else ""
        if self.kind == "number":
            return f"a number{span}{unit}"
        if self.kind == "integer":
            return f"a whole number{span}{unit}"
        if self.kind == "boolean":
            return "true or false"
        names = ", ".join(json.dumps(c, ensure_ascii=False) for c in self.categories)
        codes = f" (or its code: {', '.join(map(str, self.codes))})" if self.codes else ""
        return f"one of {names}{codes}"

    def to_json(self) -> dict[str, Any]:
        """The description as JSON (empty and default fields left out)."""
        described = {k: v for k, v in asdict(self).items() if v not in (None, "", ())}
        described["categories"] = list(self.categories) or None
        described["codes"] = list(self.codes) or None
        return {k: v for k, v in described.items() if v is not None}

    @classmethod
    def from_json(cls, described: dict[str, Any]) -> Feature:
        """The feature a :meth:`to_json` description stands for (a ``ValueError`` if bad)."""
        if not isinstance(described, dict):
            raise ValueError("a feature description must be a JSON object")
        known = {k: v for k, v in described.items() if k in cls.__dataclass_fields__}
        known["categories"] = tuple(known.get("categories", ()))
        known["codes"] = tuple(known.get("codes", ()))
        return cls(**known)

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of one value (for the API description)."""
        if self.kind == "category":
            return {"enum": [*self.categories, *self.codes], "description": self.label}
        if self.kind == "boolean":
            return {"type": "boolean", "description": self.label}
        unit = f" ({self.unit})" if self.unit else ""
        schema: dict[str, Any] = {
            "type": "number" if self.kind == "number" else "integer",
            "description": self.label + unit,
        }
        if self.minimum is not None:
            schema |= {"minimum": self.minimum, "maximum": self.maximum}
        return schema

    # ---- values --------------------------------------------------------------------------

    def value(self, given: Any) -> float:
        """The number that stands for ``given``: the value itself (number, integer), 0/1
        (boolean) or the category's index. A :class:`FeatureError` if not accepted."""
        if self.kind == "category":
            return float(self._category_index(given))
        if self.kind == "boolean":
            if isinstance(given, bool) or (isinstance(given, int) and given in (0, 1)):
                return float(given)
            raise self._refusal(given)
        if isinstance(given, bool) or not isinstance(given, int | float):
            raise self._refusal(given)
        try:
            number = float(given)
        except OverflowError:  # an integer beyond any float
            raise self._refusal(given) from None
        if not math.isfinite(number) or (self.kind == "integer" and not number.is_integer()):
            raise self._refusal(given)
        if self.minimum is not None and not self.minimum <= number <= self.maximum:
            raise self._refusal(given)
        return number

    def _category_index(self, given: Any) -> int:
        if isinstance(given, str):
            folded = [c.casefold() for c in self.categories]
            if given.casefold() in folded:
                return folded.index(given.casefold())
        elif isinstance(given, int) and not isinstance(given, bool) and given in self.codes:
            return self.codes.index(given)
        raise self._refusal(given)

    def _refusal(self, given: Any) -> FeatureError:
        text = json.dumps(given, ensure_ascii=False)
        shown = text if len(text) <= 40 else text[:37] + "..."
        return FeatureError(f"{self.name} must be {self.accepts()}, got {shown}")

    def encode(self, values: np.ndarray) -> np.ndarray:
        """``values: (N,)`` from :meth:`value` -> this feature's columns ``(N, width)``."""
        if self.encoding == "one-hot":
            offset = 0 if self.kind == "category" else self.minimum
            index = (values - offset).astype(np.int64)
            return np.eye(self.width)[index]
        if self.kind == "category" and self.codes:
            values = np.asarray(self.codes, np.float64)[values.astype(np.int64)]
        return (values * self.scale + self.shift)[:, None]


@dataclass(frozen=True)
class Target:
    """What the network's output means.

    ``kind="regression"``: one output, ``value = output * scale + shift`` in ``unit``.
    ``kind="classification"``: ``classes``; a single sigmoid output is the probability of
    the second class (``classes[1]``), a softmax output one probability per class.
    """

    kind: str
    name: str
    label: str = ""
    unit: str = ""
    scale: float = 1.0
    shift: float = 0.0
    classes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in ("regression", "classification"):
            raise ValueError(f"target kind must be regression or classification, not {self.kind!r}")
        if self.kind == "classification" and len(self.classes) < 2:
            raise ValueError("a classification target needs at least two classes")

    def to_json(self) -> dict[str, Any]:
        described = asdict(self)
        described["classes"] = list(self.classes)
        if self.kind == "regression":
            del described["classes"]
        return described

    @classmethod
    def from_json(cls, described: dict[str, Any]) -> Target:
        if not isinstance(described, dict):
            raise ValueError("a target description must be a JSON object")
        known = {k: v for k, v in described.items() if k in cls.__dataclass_fields__}
        known["classes"] = tuple(known.get("classes", ()))
        return cls(**known)


def input_width(features: list[Feature]) -> int:
    """Columns of the encoded input: the sum of the features' widths."""
    return sum(feature.width for feature in features)


def column_names(features: list[Feature]) -> list[str]:
    return [name for feature in features for name in feature.column_names()]


def parse_rows(features: list[Feature], rows: list[dict[str, Any]], batch: bool) -> np.ndarray:
    """Check every row (feature name -> value) and turn it into numbers ``(N, n_features)``.

    Every feature must be given, none other; problems are collected (the first few are
    reported, prefixed with ``rows[i]`` for a ``batch``) and raised as one
    :class:`FeatureError`.
    """
    by_name = {feature.name: feature for feature in features}
    values = np.empty((len(rows), len(features)), np.float64)
    problems: list[str] = []
    for i, row in enumerate(rows):
        where = f"rows[{i}]: " if batch else ""
        for name in row:
            if name not in by_name:
                problems.append(where + unknown_feature(name, by_name))
        for j, feature in enumerate(features):
            if feature.name not in row:
                problems.append(f"{where}{feature.name} is missing; it takes {feature.accepts()}")
                continue
            try:
                values[i, j] = feature.value(row[feature.name])
            except FeatureError as err:
                problems.append(where + str(err))
        if len(problems) >= SHOWN_PROBLEMS:
            break
    if problems:
        shown = "; ".join(problems[:SHOWN_PROBLEMS])
        more = " (and more)" if len(problems) > SHOWN_PROBLEMS else ""
        raise FeatureError(f"{shown}{more}.")
    return values


def unknown_feature(name: str, by_name: dict[str, Feature]) -> str:
    close = difflib.get_close_matches(name, by_name, n=1)
    hint = f" (did you mean {json.dumps(close[0])}?)" if close else ""
    shown = json.dumps(name if len(name) <= 40 else name[:40] + "...", ensure_ascii=False)
    return f"{shown} is not a feature of this model{hint}; its features are {', '.join(by_name)}"


def encode(features: list[Feature], values: np.ndarray) -> np.ndarray:
    """Numbers ``(N, n_features)`` from :func:`parse_rows` -> the network's input
    ``(N, input_width)`` float32."""
    columns = [feature.encode(values[:, j]) for j, feature in enumerate(features)]
    return np.concatenate(columns, axis=1).astype(np.float32)
