"""The tabular tasks: named feature values in, a value (regression) or class probabilities
(classification) out, for the NumPy networks exported by :mod:`dlnd.serve.tabular_export`.

``POST /v1/models/{name}/predict`` takes ``{"features": {"hr": 8, "season": "summer", ...}}``
or ``{"rows": [{...}, {...}]}`` (at most :data:`MAX_ROWS`). Every feature of the card must
be given and no other; a missing, unknown, mistyped or out-of-range value is a 422 that names
the feature and what it accepts.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    create_model,
    model_validator,
)

from dlnd.scratch.features import Feature, FeatureError, Target, encode, parse_rows
from dlnd.serve.batching import MicroBatcher
from dlnd.serve.errors import InputError
from dlnd.serve.runtime import OnnxModel
from dlnd.serve.task import (
    Endpoint,
    ParsePool,
    ServedModel,
    ServeSettings,
    TaskPage,
    check_value_count,
    parse_json,
)

MAX_ROWS = 1000
MAX_TEXT = 100  # longest text value (category names are short)
# A JSON value as it is: true stays a boolean, "8" stays a text (never read as 8).
FeatureValue = (
    StrictBool | StrictInt | StrictFloat | Annotated[str, Field(strict=True, max_length=MAX_TEXT)]
)


class TabularPredictRequest(BaseModel):
    """One row of feature values, or several."""

    model_config = ConfigDict(extra="forbid", strict=True)

    features: dict[str, FeatureValue] | None = Field(
        None, description="One row: each feature's name and value (see the model's card)."
    )
    rows: list[dict[str, FeatureValue]] | None = Field(
        None, min_length=1, max_length=MAX_ROWS, description="Several rows, answered in order."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> TabularPredictRequest:
        if (self.features is None) == (self.rows is None):
            raise ValueError("give exactly one of features or rows")
        return self


@functools.cache
def tabular_request_model(feature_count: int) -> type[TabularPredictRequest]:
    """:class:`TabularPredictRequest` with rows of at most ``feature_count`` (+ a few, so
    that an unknown name is reported by name) values."""
    row = Annotated[dict[str, FeatureValue], Field(max_length=feature_count + 8)]
    return create_model(
        f"TabularPredictRequest{feature_count}",
        __base__=TabularPredictRequest,
        features=(row | None, TabularPredictRequest.model_fields["features"]),
        rows=(list[row] | None, TabularPredictRequest.model_fields["rows"]),
    )


class TargetInfo(BaseModel):
    name: str
    label: str
    unit: str


class RegressionValue(BaseModel):
    value: float


class RegressionResponse(BaseModel):
    """The predicted value of each row, in the target's unit."""

    model: str
    target: TargetInfo
    predictions: list[RegressionValue]


class ClassPrediction(BaseModel):
    label: str
    probability: float
    probabilities: dict[str, float]


class ClassificationResponse(BaseModel):
    """The most probable class of each row, with every class's probability."""

    model: str
    predictions: list[ClassPrediction]


TABULAR_PAGE = TaskPage(tab="tables", title="Tables", html="tabular.html", script="tabular.js")


class TabularModel(ServedModel):
    """An exported NumPy network run by ONNX Runtime behind a micro-batcher."""

    page = TABULAR_PAGE

    def __init__(
        self,
        name: str,
        card: dict[str, Any],
        folder: Path,
        settings: ServeSettings,
        parse_pool: ParsePool,
    ) -> None:
        super().__init__(name, card, folder, settings, parse_pool)
        self.features = [Feature.from_json(f) for f in card["features"]]
        self.target = Target.from_json(card["target"])
        self.request_model = tabular_request_model(len(self.features))
        # Commas between the values of the largest valid body, plus a few fields.
        self.max_json_values = MAX_ROWS * (len(self.features) + 9) + 8
        model = OnnxModel(folder / card["file"], threads=settings.threads)
        width = len(card["input"]["columns"])
        model(np.zeros((settings.max_batch, width), np.float32))  # warm up
        self.batcher = MicroBatcher(model, settings.max_batch, settings.max_wait_ms, name)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "features": self.card["features"],
            "target": self.card["target"],
            "chart_over": self.card.get("chart_over"),
        }

    def request_schema(self, endpoint: str) -> dict[str, Any]:
        """Each feature with its type and range or categories: generated requests (and
        the documentation) know exactly what the model takes."""
        row = {
            "type": "object",
            "properties": {f.name: f.json_schema() for f in self.features},
            "required": [f.name for f in self.features],
            "additionalProperties": False,
        }
        return {
            "title": f"{self.name} request",
            "type": "object",
            "properties": {
                "features": row,
                "rows": {"type": "array", "items": row, "minItems": 1, "maxItems": MAX_ROWS},
            },
            "additionalProperties": False,
            "oneOf": [{"required": ["features"]}, {"required": ["rows"]}],
        }

    async def answer_json(self, endpoint: str, body: bytes) -> dict[str, Any]:
        check_value_count(body, self.max_json_values, f"{MAX_ROWS} rows of this model's features")
        x = await self.parse_pool.run(self.json_to_input, body)
        return self.answer(await self.batcher.run_many(x))

    def json_to_input(self, body: bytes) -> np.ndarray:
        """A JSON body -> the encoded rows ``(N, input columns)``; runs in the parse pool."""
        request = parse_json(self.request_model, body)
        batch = request.rows is not None
        rows = request.rows if batch else [request.features]
        try:
            return encode(self.features, parse_rows(self.features, rows, batch))
        except FeatureError as err:
            raise InputError(str(err)) from err

    @abstractmethod
    def answer(self, outputs: np.ndarray) -> dict[str, Any]:
        """The response for the network's outputs, one row per request row."""

    def close(self) -> None:
        self.batcher.close()


class TabularRegressor(TabularModel):
    task = "tabular-regression"
    endpoints = (
        Endpoint("predict", "The predicted value of each row of features.", RegressionResponse),
    )

    def answer(self, outputs: np.ndarray) -> dict[str, Any]:
        """``outputs: (N, 1)`` in the target's unit -> the response."""
        target = {"name": self.target.name, "label": self.target.label, "unit": self.target.unit}
        values = outputs[:, 0].astype(float).tolist()
        return {"model": self.name, "target": target, "predictions": [{"value": v} for v in values]}


class TabularClassifier(TabularModel):
    task = "tabular-classification"
    endpoints = (
        Endpoint(
            "predict",
            "The most probable class of each row of features.",
            ClassificationResponse,
        ),
    )

    def answer(self, outputs: np.ndarray) -> dict[str, Any]:
        """``outputs: (N, classes)`` probabilities -> the response."""
        classes = self.target.classes
        predictions = []
        for row in outputs.astype(float).tolist():
            best = int(np.argmax(row))
            predictions.append(
                {
                    "label": classes[best],
                    "probability": row[best],
                    "probabilities": dict(zip(classes, row, strict=True)),
                }
            )
        return {"model": self.name, "predictions": predictions}
