"""The bike-sharing project: predict hourly rentals from the UCI ``hour.csv`` table.

Feature pipeline (the classic one):

* one-hot encode season, weathersit, mnth, hr, weekday (fixed categories, so a table that
  lacks some months still yields the same 56 features);
* drop instant, dteday, atemp, workingday;
* standardise cnt, casual, registered, temp, hum, windspeed: x' = (x - mean) / std, with the
  mean and std of the training days only, so no statistic peeks at validation or test days;
* split by day: the last 21 days are the test set, the 60 days before them the validation
  set, everything earlier the training set.

The target is standardised ``cnt``; casual and registered are removed from the features
(they add up to cnt, so using them would be cheating).

:func:`bike_features` describes the ten features a person gives (hour, season, weather,
temperature in °C, ...) and how each becomes the 56 columns, for the served model's form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlnd.scratch.features import Feature, Target

CATEGORIES = {
    "season": range(1, 5),
    "weathersit": range(1, 5),
    "mnth": range(1, 13),
    "hr": range(24),
    "weekday": range(7),
}
DROPPED = ("instant", "dteday", "atemp", "workingday")
STANDARDISED = ("cnt", "casual", "registered", "temp", "hum", "windspeed")
TARGETS = ("cnt", "casual", "registered")
NUMERIC_FEATURES = ("yr", "holiday", "temp", "hum", "windspeed")
TEST_DAYS, VAL_DAYS = 21, 60
# hour.csv stores temp / 41 (degrees Celsius), hum / 100 (percent), windspeed / 67 (Readme.txt).
PUBLISHED_DIVISORS = {"temp": 41.0, "hum": 100.0, "windspeed": 67.0}
SEASONS = ("spring", "summer", "fall", "winter")
WEATHER = ("clear", "mist", "light rain or snow", "heavy rain or snow")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


@dataclass
class BikeSplit:
    """Features ``(N, 56)`` float32 and standardised cnt ``(N, 1)`` for one part of the split."""

    X: np.ndarray
    y: np.ndarray
    dates: np.ndarray  # (N,) "YYYY-MM-DD" of each row
    hours: np.ndarray  # (N,) hour of day of each row


@dataclass
class BikeData:
    train: BikeSplit
    val: BikeSplit
    test: BikeSplit
    feature_names: list[str]
    cnt_mean: float
    cnt_std: float
    stats: dict[str, tuple[float, float]]  # (mean, std) of each standardised column

    def to_rentals(self, standardised: np.ndarray) -> np.ndarray:
        """Undo the standardisation of cnt: bikes per hour."""
        return standardised * self.cnt_std + self.cnt_mean

    @property
    def features(self) -> list[Feature]:
        return bike_features(self.stats)

    @property
    def target(self) -> Target:
        """The network's output: standardised cnt, turned back into bikes per hour."""
        return Target(
            "regression", "cnt", "bike rentals", "bikes per hour", self.cnt_std, self.cnt_mean
        )


def bike_features(stats: dict[str, tuple[float, float]]) -> list[Feature]:
    """The features of one hour as a person gives them, in the order of the 56 columns,
    with the training days' ``(mean, std)`` of temp, hum and windspeed."""

    def measured(name: str, label: str, unit: str, default: float) -> Feature:
        # column = (value / divisor - mean) / std = value * scale + shift
        mean, std = stats[name]
        divisor = PUBLISHED_DIVISORS[name]
        return Feature(
            name,
            "number",
            label,
            unit,
            minimum=0.0,
            maximum=divisor,
            scale=1 / (divisor * std),
            shift=-mean / std,
            default=default,
        )

    def named(name: str, label: str, names, codes, default: str) -> Feature:
        return Feature(
            name,
            "category",
            label,
            categories=tuple(names),
            codes=tuple(codes),
            encoding="one-hot",
            default=default,
        )

    return [
        Feature(
            "yr", "category", "year", categories=("2011", "2012"), codes=(0, 1), default="2012"
        ),
        Feature("holiday", "boolean", "public holiday", default=False),
        measured("temp", "temperature", "°C", 20.0),
        measured("hum", "humidity", "%", 60.0),
        measured("windspeed", "wind speed", "km/h", 13.0),
        named("season", "season", SEASONS, CATEGORIES["season"], "summer"),
        named("weathersit", "weather", WEATHER, CATEGORIES["weathersit"], "clear"),
        named("mnth", "month", MONTHS, CATEGORIES["mnth"], "June"),
        Feature("hr", "integer", "hour of day", "", 0, 23, encoding="one-hot", default=8),
        named("weekday", "day of the week", WEEKDAYS, CATEGORIES["weekday"], "Wednesday"),
    ]


def feature_names() -> list[str]:
    """The 56 feature columns, in order: the numeric ones, then each one-hot group."""
    names = list(NUMERIC_FEATURES)
    for column, values in CATEGORIES.items():
        names += [f"{column}_{v}" for v in values]
    return names


def split_days(dates: np.ndarray, test_days: int = TEST_DAYS, val_days: int = VAL_DAYS):
    """Boolean row masks ``(train, val, test)`` from each row's date: test = last ``test_days``."""
    days = np.unique(dates)  # ISO dates sort chronologically
    if len(days) <= test_days + val_days:
        raise ValueError(
            f"the table covers {len(days)} days; the split needs more than {test_days + val_days}."
        )
    test = np.isin(dates, days[-test_days:])
    val = np.isin(dates, days[-(test_days + val_days) : -test_days])
    return ~(test | val), val, test


def prepare(table: dict[str, np.ndarray]) -> BikeData:
    """Turn the columns of ``hour.csv`` into standardised features and targets, split by day."""
    missing = [
        c for c in (*CATEGORIES, *DROPPED, *STANDARDISED, *NUMERIC_FEATURES) if c not in table
    ]
    if missing:
        raise ValueError(f"the bike-sharing table lacks the columns {missing}; expected hour.csv.")
    dates = np.asarray(table["dteday"]).astype(str)
    train, val, test = split_days(dates)
    columns = {name: np.asarray(table[name], dtype=np.float64) for name in STANDARDISED}
    stats = {
        name: (columns[name][train].mean(), columns[name][train].std()) for name in STANDARDISED
    }
    for name, (mean, std) in stats.items():
        columns[name] = (columns[name] - mean) / std
    features = [
        columns.get(name, np.asarray(table[name], dtype=np.float64)) for name in NUMERIC_FEATURES
    ]
    for column, values in CATEGORIES.items():
        codes = np.asarray(table[column], dtype=np.float64)
        features += [(codes == v).astype(np.float64) for v in values]
    X = np.stack(features, axis=1).astype(np.float32)
    y = columns["cnt"].astype(np.float32)[:, None]
    hours = np.asarray(table["hr"]).astype(np.int64)

    def part(mask: np.ndarray) -> BikeSplit:
        return BikeSplit(X[mask], y[mask], dates[mask], hours[mask])

    stats = {name: (float(mean), float(std)) for name, (mean, std) in stats.items()}
    return BikeData(part(train), part(val), part(test), feature_names(), *stats["cnt"], stats)
