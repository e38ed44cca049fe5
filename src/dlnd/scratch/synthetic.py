"""Data generated in code, so every recipe runs without a data folder (``--embedded``).

Each generator imitates the shape of a real data set closely enough that the same pipeline
runs on both: two point clouds for the intro lessons, an admissions table, an hourly
bike-sharing table with the columns of UCI ``hour.csv``, and small image-like classes.
"""

from __future__ import annotations

import datetime as dt

import numpy as np


def two_blobs(n_per_class: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clouds in the unit square, almost linearly separable.

    Returns ``X: (2 n, 2)`` float64 and ``y: (2 n,)`` int64 (0 lower right, 1 upper left).
    """
    rng = np.random.default_rng(seed)
    negatives = rng.normal([0.65, 0.35], 0.12, size=(n_per_class, 2))
    positives = rng.normal([0.35, 0.65], 0.12, size=(n_per_class, 2))
    X = np.concatenate([negatives, positives])
    y = np.repeat(np.array([0, 1]), n_per_class)
    order = rng.permutation(len(X))
    return X[order], y[order]


def admissions_table(n: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    """Columns ``admit, gre, gpa, rank`` like ``student_data.csv``, with a logistic ground truth.

    P(admit) = sigmoid(0.004 (gre - 580) + 1.2 (gpa - 3.4) - 0.6 (rank - 2.5) - 0.8).
    """
    rng = np.random.default_rng(seed)
    gre = np.clip(np.round(rng.normal(580, 115, n) / 20) * 20, 220, 800)
    gpa = np.clip(np.round(rng.normal(3.39, 0.38, n), 2), 2.26, 4.0)
    rank = rng.choice([1, 2, 3, 4], size=n, p=[0.15, 0.38, 0.30, 0.17]).astype(np.float64)
    logit = 0.004 * (gre - 580) + 1.2 * (gpa - 3.4) - 0.6 * (rank - 2.5) - 0.8
    admit = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    return {"admit": admit, "gre": gre, "gpa": gpa, "rank": rank}


def bike_sharing_table(days: int = 120, seed: int = 0) -> dict[str, np.ndarray]:
    """An hourly table with every column of UCI ``hour.csv``, starting on 2011-01-01.

    Rentals follow the patterns of the real data: commuting peaks at 8:00 and 17:00-18:00 on
    working days, an afternoon hump at weekends, more bikes when it is warm, fewer in rain,
    and growth in the second year; counts are Poisson around that rate.
    """
    rng = np.random.default_rng(seed)
    start = dt.date(2011, 1, 1)
    dates = [start + dt.timedelta(days=d) for d in range(days)]
    day = np.repeat(np.arange(days), 24)
    hr = np.tile(np.arange(24), days).astype(np.float64)
    month = np.array([d.month for d in dates], dtype=np.float64)[day]
    weekday = np.array([(d.weekday() + 1) % 7 for d in dates], dtype=np.float64)[day]  # 0 = Sunday
    holiday = np.array(
        [d.month == 1 and d.day == 1 or d.month == 12 and d.day == 25 for d in dates]
    )
    holiday = holiday.astype(np.float64)[day]
    workingday = ((weekday >= 1) & (weekday <= 5) & (holiday == 0)).astype(np.float64)
    season = np.array([(d.month % 12) // 3 + 1 for d in dates], dtype=np.float64)[day]
    year = np.array([d.year - 2011 for d in dates], dtype=np.float64)[day]

    # Temperature: a yearly cycle peaking in July, a daily one peaking at 15:00, weather noise.
    day_of_year = np.array([d.timetuple().tm_yday for d in dates])[day]
    temp = (
        0.5
        - 0.25 * np.cos(2 * np.pi * (day_of_year - 15) / 365)
        + 0.06 * np.sin(2 * np.pi * (hr - 9) / 24)
    )
    temp = np.clip(temp + rng.normal(0, 0.04, days)[day], 0.02, 1.0)
    weathersit = rng.choice([1, 2, 3, 4], size=days, p=[0.64, 0.27, 0.085, 0.005]).astype(
        np.float64
    )[day]
    hum = np.clip(0.55 + 0.12 * (weathersit - 1) + rng.normal(0, 0.1, day.size), 0.0, 1.0)
    windspeed = np.clip(rng.gamma(2.0, 0.09, day.size), 0.0, 0.85)

    commute = np.exp(-0.5 * ((hr - 8) / 1.0) ** 2) + 1.2 * np.exp(-0.5 * ((hr - 17.5) / 1.3) ** 2)
    leisure = np.exp(-0.5 * ((hr - 14) / 3.0) ** 2)
    night = 0.05 + 0.25 * np.exp(-0.5 * ((hr - 12) / 5.0) ** 2)
    weather = np.array([1.0, 0.85, 0.45, 0.2])[weathersit.astype(int) - 1]
    warmth = 0.4 + 1.2 * temp
    growth = 1.0 + 0.6 * year
    registered_rate = 400 * (workingday * commute + (1 - workingday) * 0.5 * leisure + night)
    casual_rate = 120 * ((1 - workingday) * leisure + 0.2 * leisure + 0.05)
    scale = weather * warmth * growth
    registered = rng.poisson(registered_rate * scale).astype(np.float64)
    casual = rng.poisson(casual_rate * scale * warmth).astype(np.float64)
    return {
        "instant": np.arange(1, day.size + 1, dtype=np.float64),
        "dteday": np.array([d.isoformat() for d in dates])[day],
        "season": season,
        "yr": year,
        "mnth": month,
        "hr": hr,
        "holiday": holiday,
        "weekday": weekday,
        "workingday": workingday,
        "weathersit": weathersit,
        "temp": temp,
        "atemp": np.clip(temp * 0.95 + 0.02, 0, 1),
        "hum": hum,
        "windspeed": windspeed,
        "casual": casual,
        "registered": registered,
        "cnt": casual + registered,
    }


def image_classes(
    n: int = 1200, n_classes: int = 10, side: int = 8, noise: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Small grey images, one smooth random template per class, shifted and noisy.

    Returns ``X: (n, side * side)`` float32 in [0, 1] (flattened images) and ``y: (n,)`` int64.
    Few examples and strong noise make a wide network overfit, as on a slice of MNIST.
    """
    rng = np.random.default_rng(seed)
    # A template is a random pattern blurred by averaging neighbours, so pixels correlate as in
    # real images; the same templates are drawn for every n (they depend on the seed only).
    templates = rng.random((n_classes, side + 2, side + 2))
    templates = (templates + np.roll(templates, 1, 1) + np.roll(templates, 1, 2)) / 3
    y = rng.integers(0, n_classes, n)
    shift_rows, shift_cols = rng.integers(0, 2, n), rng.integers(0, 2, n)
    images = np.empty((n, side, side))
    for k in range(n):
        r, c = shift_rows[k], shift_cols[k]
        images[k] = templates[y[k], r : r + side, c : c + side]
    images += rng.normal(0, noise, images.shape)
    images = np.clip(images, 0, 1)
    return images.reshape(n, side * side).astype(np.float32), y
