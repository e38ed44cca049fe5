"""Student admissions: predict ``admit`` from a GRE score, a GPA and the school's rank.

Rank is a category (1 = most prestigious), not a quantity, so it is one-hot encoded; gre
and gpa are standardised with the training rows' mean and std. A fixed random 10% of the
students is held out to measure accuracy on applicants the model never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlnd.scratch.features import Feature, Target

RANKS = (1, 2, 3, 4)
ADMISSION_TARGET = Target("classification", "admit", "admission", classes=("rejected", "admitted"))


@dataclass
class AdmissionsData:
    """X: ``(N, 6)`` = [gre, gpa, rank_1, rank_2, rank_3, rank_4]; y: ``(N,)`` in {0, 1};
    ``stats``: the training rows' ``(mean, std)`` of gre and gpa."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    stats: dict[str, tuple[float, float]]

    @property
    def features(self) -> list[Feature]:
        return admissions_features(self.stats)


def admissions_features(stats: dict[str, tuple[float, float]]) -> list[Feature]:
    """gre, gpa and rank as an applicant gives them, in the order of the 6 columns."""
    gre_mean, gre_std = stats["gre"]
    gpa_mean, gpa_std = stats["gpa"]
    return [
        Feature(
            "gre", "number", "GRE score", "points", 200, 800,
            scale=1 / gre_std, shift=-gre_mean / gre_std, default=600,
        ),
        Feature(
            "gpa", "number", "grade point average", "", 0, 4,
            scale=1 / gpa_std, shift=-gpa_mean / gpa_std, default=3.4,
        ),
        Feature(
            "rank", "integer", "rank of the undergraduate school (1 = most prestigious)", "",
            1, 4, encoding="one-hot", default=2,
        ),
    ]  # fmt: skip


def admissions_data(
    table: dict[str, np.ndarray], test_fraction: float = 0.1, seed: int = 0
) -> AdmissionsData:
    """Split ``table`` (columns admit, gre, gpa, rank) into standardised, one-hot features."""
    missing = [c for c in ("admit", "gre", "gpa", "rank") if c not in table]
    if missing:
        raise ValueError(
            f"the admissions table lacks the columns {missing}; expected admit, gre, gpa, rank."
        )
    admit = np.asarray(table["admit"], dtype=np.float64)
    keep = np.isfinite(admit) & np.isfinite(table["gre"]) & np.isfinite(table["gpa"])
    gre, gpa = (
        np.asarray(table["gre"], np.float64)[keep],
        np.asarray(table["gpa"], np.float64)[keep],
    )
    rank = np.asarray(table["rank"], np.float64)[keep]
    order = np.random.default_rng(seed).permutation(int(keep.sum()))
    n_test = max(1, round(test_fraction * len(order)))
    test, train = order[:n_test], order[n_test:]
    columns, stats = [], {}
    for name, values in (("gre", gre), ("gpa", gpa)):
        mean, std = values[train].mean(), values[train].std()
        columns.append((values - mean) / std)
        stats[name] = (float(mean), float(std))
    columns += [(rank == r).astype(np.float64) for r in RANKS]
    X = np.stack(columns, axis=1)
    y = admit[keep].astype(np.int64)
    return AdmissionsData(X[train], y[train], X[test], y[test], stats)


def admissions_split(
    table: dict[str, np.ndarray], test_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, y_train, X_test, y_test)`` of :func:`admissions_data`.

    X: ``(N, 6)`` = [gre, gpa, rank_1, rank_2, rank_3, rank_4]; y: ``(N,)`` in {0, 1}.
    """
    data = admissions_data(table, test_fraction, seed)
    return data.X_train, data.y_train, data.X_test, data.y_test
