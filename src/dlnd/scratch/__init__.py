"""Neural networks from scratch in NumPy: perceptron, logistic regression, the multilayer
perceptron with back-propagation, and the training techniques around them.

    from dlnd.scratch import Perceptron, LogisticRegression, MLP, gradcheck
"""

from dlnd.scratch.gradcheck import gradcheck
from dlnd.scratch.logistic import LogisticRegression
from dlnd.scratch.mlp import MLP
from dlnd.scratch.perceptron import Perceptron

__all__ = ["MLP", "LogisticRegression", "Perceptron", "gradcheck"]
