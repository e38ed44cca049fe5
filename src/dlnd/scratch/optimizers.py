"""Update rules for gradient descent, applied in place to a dict of parameters.

Each optimizer's ``step(params, grads)`` moves every ``params[k]`` against ``grads[k]``.
The grads are scratch space: ``step`` may overwrite them (this saves one array per update).

    sgd:       p <- p - lr g
    momentum:  v <- mu v + g;                     p <- p - lr v
    adam:      m <- b1 m + (1 - b1) g;            v <- b2 v + (1 - b2) g^2
               p <- p - lr m_hat / (sqrt(v_hat) + eps)
               with m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

The formulas follow the conventions of ``torch.optim`` so the two can be compared step by step.
"""

from __future__ import annotations

import math

import numpy as np

Params = dict[str, np.ndarray]


class SGD:
    """Plain gradient descent: p <- p - lr g."""

    def __init__(self, params: Params, lr: float) -> None:
        self.lr = lr

    def step(self, params: Params, grads: Params) -> None:
        for name, param in params.items():
            grad = grads[name]
            grad *= self.lr
            param -= grad


class Momentum:
    """Gradient descent with momentum: a velocity v accumulates past gradients, p <- p - lr v."""

    def __init__(self, params: Params, lr: float, momentum: float = 0.9) -> None:
        self.lr = lr
        self.momentum = momentum
        self.velocity = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, params: Params, grads: Params) -> None:
        for name, param in params.items():
            velocity = self.velocity[name]
            velocity *= self.momentum
            velocity += grads[name]
            grad = np.multiply(velocity, self.lr, out=grads[name])
            param -= grad


class Adam:
    """Adam (Kingma & Ba, 2015): per-parameter step sizes from running moments of the gradient."""

    def __init__(
        self,
        params: Params,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.t = 0
        self.first = {name: np.zeros_like(p) for name, p in params.items()}
        self.second = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, params: Params, grads: Params) -> None:
        self.t += 1
        step_size = self.lr / (1.0 - self.beta1**self.t)
        inv_sqrt_correction = 1.0 / math.sqrt(1.0 - self.beta2**self.t)
        for name, param in params.items():
            grad, m, v = grads[name], self.first[name], self.second[name]
            m *= self.beta1
            m += (1.0 - self.beta1) * grad
            grad *= grad  # g^2, in the gradient's own buffer
            v *= self.beta2
            grad *= 1.0 - self.beta2
            v += grad
            # denominator sqrt(v_hat) + eps = sqrt(v) / sqrt(1 - b2^t) + eps, reusing the buffer
            denom = np.sqrt(v, out=grad)
            denom *= inv_sqrt_correction
            denom += self.eps
            np.divide(m, denom, out=denom)
            denom *= step_size
            param -= denom


Optimizer = SGD | Momentum | Adam
OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name: str, params: Params, lr: float) -> Optimizer:
    """The optimizer called ``name`` ("sgd", "momentum" or "adam") for ``params``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)}.")
    return OPTIMIZERS[name](params, lr)
