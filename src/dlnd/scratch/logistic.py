"""Logistic regression: the perceptron with a continuous error, trained by gradient descent.

    y_hat = sigmoid(x . w + b)
    E = -mean[y log y_hat + (1 - y) log(1 - y_hat)]          (log-loss)
    dE/dw = mean[(y_hat - y) x],   dE/db = mean[y_hat - y]

It is a network with no hidden layer and one sigmoid output, so it *is* an :class:`MLP`
``[n_features, 1]``; only the names a learner expects are added here.
"""

from __future__ import annotations

import numpy as np

from dlnd.scratch.mlp import MLP


class LogisticRegression(MLP):
    """A linear model with a sigmoid output and the log-loss.

    ``weights: (n_features,)`` and ``bias`` are views of ``params["W1"]`` and ``params["b1"]``.
    """

    def __init__(
        self,
        n_features: int,
        l1: float = 0.0,
        l2: float = 0.0,
        seed: int = 0,
        dtype: type = np.float64,
    ) -> None:
        super().__init__(
            [n_features, 1],
            activation="sigmoid",
            output="sigmoid",
            l1=l1,
            l2=l2,
            seed=seed,
            dtype=dtype,
        )

    @property
    def weights(self) -> np.ndarray:
        return self.params["W1"][:, 0]

    @property
    def bias(self) -> float:
        return float(self.params["b1"][0])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(y = 1 | x) for each row of ``X: (N, n_features)``, shape ``(N,)``."""
        return self.forward(X)[:, 0]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 labels ``(N,)``: 1 where P(y = 1 | x) >= 0.5."""
        return (self.predict_proba(X) >= 0.5).astype(np.int64)
