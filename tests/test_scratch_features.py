"""Feature descriptions: what each feature accepts, how it becomes input columns, and that the
recipes' descriptions reproduce their own data pipelines column for column."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnd.scratch import synthetic
from dlnd.scratch.admissions import admissions_data
from dlnd.scratch.bike_sharing import feature_names, prepare
from dlnd.scratch.features import (
    Feature,
    FeatureError,
    Target,
    column_names,
    encode,
    input_width,
    parse_rows,
)

HOUR = Feature("hr", "integer", "hour of day", "", 0, 23, encoding="one-hot", default=8)
SEASON = Feature(
    "season",
    "category",
    "season",
    categories=("spring", "summer", "fall", "winter"),
    codes=(1, 2, 3, 4),
    encoding="one-hot",
)
TEMP = Feature("temp", "number", "temperature", "°C", 0, 41, scale=0.5, shift=-1.0)
HOLIDAY = Feature("holiday", "boolean", "public holiday")
FEATURES = [TEMP, HOLIDAY, SEASON, HOUR]


def test_values_are_encoded_into_their_columns():
    values = parse_rows(FEATURES, [{"temp": 10, "holiday": True, "season": "fall", "hr": 2}], False)
    x = encode(FEATURES, values)
    assert x.shape == (1, input_width(FEATURES)) == (1, 1 + 1 + 4 + 24)
    assert x[0, 0] == 10 * 0.5 - 1.0
    assert x[0, 1] == 1.0
    np.testing.assert_array_equal(x[0, 2:6], [0, 0, 1, 0])
    assert x[0, 6 + 2] == 1.0 and x[0, 6:].sum() == 1.0
    names = ["temp", "holiday", "season_1", "season_2", "season_3", "season_4", "hr_0"]
    assert column_names(FEATURES)[:7] == names


def test_a_category_is_taken_by_name_in_any_case_or_by_code():
    rows = [{"season": "Summer"}, {"season": "summer"}, {"season": 2}]
    values = parse_rows([SEASON], rows, True)
    assert values[:, 0].tolist() == [1.0, 1.0, 1.0]


GOOD_ROW = {"temp": 1, "holiday": True, "season": "fall", "hr": 2}
REFUSALS = {  # id: (changes to GOOD_ROW, None = leave the feature out; expected message)
    "missing": ({"temp": None}, "temp is missing; it takes a number from 0 to 41 (°C)"),
    "unknown": ({"hour": 3}, '"hour" is not a feature of this model (did you mean "hr"?)'),
    "string-number": ({"temp": "20"}, 'temp must be a number from 0 to 41 (°C), got "20"'),
    "out-of-range": ({"temp": 42}, "temp must be a number from 0 to 41 (°C), got 42"),
    "bad-boolean": ({"holiday": "yes"}, 'holiday must be true or false, got "yes"'),
    "bad-category": (
        {"season": "autumn"},
        'season must be one of "spring", "summer", "fall", "winter" (or its code: 1, 2, 3, 4), '
        'got "autumn"',
    ),
    "bad-code": ({"season": 5}, "got 5"),
    "fraction": ({"hr": 8.5}, "hr must be a whole number from 0 to 23, got 8.5"),
    "bool-as-int": ({"hr": True}, "hr must be a whole number from 0 to 23, got true"),
    "nan": ({"temp": float("nan")}, "temp must be a number"),
}


@pytest.mark.parametrize(("changes", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_every_refusal_names_the_feature_and_what_it_accepts(changes, message):
    row = {k: v for k, v in {**GOOD_ROW, **changes}.items() if v is not None}
    with pytest.raises(FeatureError) as err:
        parse_rows(FEATURES, [row], False)
    assert message in str(err.value)


def test_problems_of_several_rows_are_reported_with_their_row_and_capped():
    rows = [{"temp": 100, "holiday": 1, "season": "x", "hr": 99}] * 50
    with pytest.raises(FeatureError) as err:
        parse_rows(FEATURES, rows, True)
    message = str(err.value)
    assert message.startswith("rows[0]: temp must be")
    assert message.count(";") == 4 and message.endswith("(and more).")


def test_whole_floats_and_zero_one_are_accepted_where_they_mean_the_same():
    values = parse_rows([HOUR, HOLIDAY], [{"hr": 8.0, "holiday": 1}], False)
    assert values.tolist() == [[8.0, 1.0]]


def test_a_description_survives_json():
    for feature in FEATURES:
        text = json.dumps(feature.to_json())
        assert Feature.from_json(json.loads(text)) == feature
    target = Target("classification", "admit", classes=("no", "yes"))
    assert Target.from_json(json.loads(json.dumps(target.to_json()))) == target


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"kind": "text"}, "kind must be one of"),
        ({"kind": "category"}, "needs its categories"),
        ({"kind": "number", "minimum": 1}, "both minimum and maximum"),
        ({"kind": "number", "encoding": "one-hot"}, "encoded by scale"),
        ({"kind": "integer", "encoding": "one-hot"}, "one-hot integer needs"),
        ({"kind": "category", "categories": ("a", "b"), "codes": (1,)}, "one code per category"),
    ],
)
def test_inconsistent_descriptions_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        Feature("x", **arguments)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers()
    | st.integers(min_value=10**308, max_value=10**400)
    | st.booleans()
    | st.text()
)
def test_a_number_feature_accepts_exactly_finite_numbers_in_range(value):
    accepted = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and abs(value) < 10**308  # an integer beyond this is no float
        and math.isfinite(value)
        and 0 <= value <= 41
    )
    if accepted:
        assert TEMP.value(value) == float(value)
    else:
        with pytest.raises(FeatureError, match="temp must be a number from 0 to 41"):
            TEMP.value(value)


def hour_rows(table: dict[str, np.ndarray]) -> list[dict]:
    """The hours of a ``hour.csv``-like table as a person would give them: degrees, percent,
    names of the season, weather, month and weekday."""
    data = prepare(table)
    by_name = {f.name: f for f in data.features}

    def category(name: str, code: float) -> str:
        feature = by_name[name]
        return feature.categories[feature.codes.index(int(code))]

    return [
        {
            "yr": category("yr", table["yr"][i]),
            "holiday": bool(table["holiday"][i]),
            "temp": float(table["temp"][i]) * 41,
            "hum": float(table["hum"][i]) * 100,
            "windspeed": float(table["windspeed"][i]) * 67,
            "season": category("season", table["season"][i]),
            "weathersit": category("weathersit", table["weathersit"][i]),
            "mnth": category("mnth", table["mnth"][i]),
            "hr": int(table["hr"][i]),
            "weekday": category("weekday", table["weekday"][i]),
        }
        for i in range(len(table["hr"]))
    ]


def test_the_bike_features_reproduce_the_56_columns_of_the_pipeline():
    """Every hour of the table, described in real units and names, encodes to exactly the
    row the training pipeline (:func:`prepare`) made of it."""
    table = synthetic.bike_sharing_table(days=120, seed=3)
    data = prepare(table)
    assert column_names(data.features) == feature_names()
    x = encode(data.features, parse_rows(data.features, hour_rows(table), True))
    dates = np.asarray(table["dteday"]).astype(str)
    test_days = np.isin(dates, np.unique(data.test.dates))
    np.testing.assert_allclose(x[test_days], data.test.X, atol=2e-6)
    assert data.target.scale == data.cnt_std and data.target.shift == data.cnt_mean


def test_the_bike_features_describe_units_ranges_and_names():
    data = prepare(synthetic.bike_sharing_table(days=120, seed=0))
    by_name = {f.name: f for f in data.features}
    assert (by_name["hr"].minimum, by_name["hr"].maximum) == (0, 23)
    assert by_name["season"].categories == ("spring", "summer", "fall", "winter")
    assert by_name["weathersit"].codes == (1, 2, 3, 4)
    assert by_name["temp"].unit == "°C" and by_name["hum"].unit == "%"
    assert data.target.unit == "bikes per hour"


def test_the_admissions_features_reproduce_the_pipeline():
    table = synthetic.admissions_table(n=200, seed=1)
    data = admissions_data(table, seed=2)
    rows = [
        {"gre": float(g), "gpa": float(a), "rank": int(r)}
        for g, a, r in zip(table["gre"], table["gpa"], table["rank"], strict=True)
    ]
    x = encode(data.features, parse_rows(data.features, rows, True))
    order = np.random.default_rng(2).permutation(200)
    np.testing.assert_allclose(x[order[:20]], data.X_test, atol=1e-5)
