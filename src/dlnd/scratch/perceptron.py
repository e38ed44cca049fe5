"""The perceptron: a line that moves towards every point it misclassifies.

    y_hat = step(x . w + b),   step(t) = 1 if t >= 0 else 0

The perceptron trick, for each point in turn: if a positive point (y = 1) lies on the
negative side, move the line towards it (w += lr x, b += lr); if a negative point lies on
the positive side, move it away (w -= lr x, b -= lr). Both cases are one formula,

    w <- w + lr (y - y_hat) x,    b <- b + lr (y - y_hat)

and points that are already right (y = y_hat) leave the line alone. On linearly separable
data this reaches zero errors after finitely many updates (Novikoff, 1962). On data that no
line separates it never settles, so the *pocket* variant (Gallant, 1990) keeps the line with
the fewest errors seen after any epoch and returns that one.
"""

from __future__ import annotations

import numpy as np

from dlnd.scratch.activations import step


class Perceptron:
    """A linear classifier with a step activation, trained by the perceptron trick.

    ``weights: (n_features,)``, ``bias``: float. ``trajectory`` holds ``(weights, bias)``
    after every epoch of :meth:`fit`, the boundaries a learner plots from light to dark.
    """

    def __init__(self, n_features: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.weights = rng.normal(0.0, 1.0, n_features)
        self.bias = 0.0
        self.trajectory: list[tuple[np.ndarray, float]] = []

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 labels ``(N,)`` for points ``X: (N, n_features)``."""
        return step(np.asarray(X, dtype=np.float64) @ self.weights + self.bias).astype(np.int64)

    def errors(self, X: np.ndarray, y: np.ndarray) -> int:
        """How many points of ``(X, y)`` are on the wrong side of the line: the discrete error."""
        return int(np.sum(self.predict(X) != y))

    def fit(
        self, X: np.ndarray, y: np.ndarray, epochs: int = 25, lr: float = 0.01, pocket: bool = True
    ) -> list[dict[str, float]]:
        """Apply the perceptron trick to every point, ``epochs`` times; one record per epoch.

        ``X: (N, n_features)``, ``y: (N,)`` in {0, 1}. Stops early once no point is
        misclassified. With ``pocket``, ends with the line of the epoch with the fewest errors.
        """
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if X.ndim != 2 or X.shape[1] != self.weights.size or y.shape != (len(X),):
            raise ValueError(
                f"expected X: (N, {self.weights.size}) and y: (N,), got {X.shape} and {y.shape}."
            )
        history, best = [], (len(X) + 1, self.weights.copy(), self.bias)
        for epoch in range(1, epochs + 1):
            for point, label in zip(X, y):
                # The point's own prediction with the current line: the update is sequential.
                error = label - (point @ self.weights + self.bias >= 0)
                if error:
                    self.weights += lr * error * point
                    self.bias += lr * error
            self.trajectory.append((self.weights.copy(), self.bias))
            errors = self.errors(X, y)
            history.append({"epoch": epoch, "errors": errors, "accuracy": 1.0 - errors / len(X)})
            if errors < best[0]:
                best = (errors, self.weights.copy(), self.bias)
            if errors == 0:
                break
        if pocket:
            _, self.weights, self.bias = best
        return history
