"""Student admissions: predict ``admit`` from a GRE score, a GPA and the school's rank.

Rank is a category (1 = most prestigious), not a quantity, so it is one-hot encoded; gre
and gpa are standardised with the training rows' mean and std. A fixed random 10% of the
students is held out to measure accuracy on applicants the model never saw.
"""

from __future__ import annotations

import numpy as np

RANKS = (1, 2, 3, 4)


def admissions_split(
    table: dict[str, np.ndarray], test_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, y_train, X_test, y_test)``.

    X: ``(N, 6)`` = [gre, gpa, rank_1, rank_2, rank_3, rank_4]; y: ``(N,)`` in {0, 1}.
    """
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
    columns = []
    for values in (gre, gpa):
        mean, std = values[train].mean(), values[train].std()
        columns.append((values - mean) / std)
    columns += [(rank == r).astype(np.float64) for r in RANKS]
    X = np.stack(columns, axis=1)
    y = admit[keep].astype(np.int64)
    return X[train], y[train], X[test], y[test]
