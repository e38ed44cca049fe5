"""Exercises with checks: the learner writes a function from the course, a checker runs it
against the library's own implementation on random inputs and prints what is wrong (the
shape, the dtype, a value, overflow with large inputs...), never the answer.

    from dlnd.exercises import check_softmax

    def softmax(logits):
        ...                      # the learner's code

    check_softmax(softmax)       # prints a hint or "✓ softmax: right ..."; returns True/False

Adding a check: an :class:`Exercise` (name, the signature in words, the reference, random
:class:`Case` inputs, optionally ``diagnose`` for typical mistakes) passed to
:func:`register`, and a ``check_<name>(fn)`` function, in a module of this package imported
below. Import heavy libraries (PyTorch) inside the reference, so that this package stays light.
"""

from dlnd.exercises.core import Case, Exercise, Verdict, exercises, register
from dlnd.exercises.networks import check_gram_matrix, check_lstm_cell, check_token_lookup
from dlnd.exercises.scratch import (
    check_backprop_step,
    check_cross_entropy,
    check_one_hot,
    check_softmax,
)

__all__ = [
    "Case",
    "Exercise",
    "Verdict",
    "check_backprop_step",
    "check_cross_entropy",
    "check_gram_matrix",
    "check_lstm_cell",
    "check_one_hot",
    "check_softmax",
    "check_token_lookup",
    "exercises",
    "register",
]
