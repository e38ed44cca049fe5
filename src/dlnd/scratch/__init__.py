"""Neural networks from scratch in NumPy: perceptron, logistic regression, the multilayer
perceptron with back-propagation, the training techniques around them, and recurrent
networks (a vanilla RNN and an LSTM) with backpropagation through time.

    from dlnd.scratch import Perceptron, LogisticRegression, MLP, RNN, LSTM, gradcheck
"""

from dlnd.scratch.gradcheck import gradcheck
from dlnd.scratch.logistic import LogisticRegression
from dlnd.scratch.mlp import MLP
from dlnd.scratch.perceptron import Perceptron
from dlnd.scratch.recurrent import LSTM, RNN

__all__ = ["LSTM", "MLP", "RNN", "LogisticRegression", "Perceptron", "gradcheck"]
