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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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

    def to_rentals(self, standardised: np.ndarray) -> np.ndarray:
        """Undo the standardisation of cnt: bikes per hour."""
        return standardised * self.cnt_std + self.cnt_mean


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

    return BikeData(part(train), part(val), part(test), feature_names(), *map(float, stats["cnt"]))
