"""How a check works: run the learner's function on random inputs, compare with the library's
reference, and turn the first difference into a hint that says what is wrong.

The comparison is generic (type, shape, dtype, NaN/inf, values, and dicts of those); an
exercise adds a ``diagnose`` function for the mistakes learners typically make, so that the
hint names the mistake ("each column sums to 1") instead of a position and a number.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Case:
    """One call of the learner's function: its arguments and what they are, in words
    ("3 rows of 4 logits around ±1000"), for the hint."""

    what: str
    args: tuple[Any, ...]


# (case, what the learner returned, what the reference returned) -> a hint, or None
Diagnose = Callable[[Case, Any, Any], str | None]
# (case, what the learner returned) -> what is wrong, or None: for answers that are not
# numbers (a table of tokens, say), where any of many answers is right
Judge = Callable[[Case, Any], str | None]


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: whether it passed and the line shown to the learner."""

    passed: bool
    message: str


@dataclass(frozen=True)
class Exercise:
    """A function the learner writes and how to check it.

    ``signature`` says in one line what the function takes and returns (it is shown when the
    function cannot be called or returns the wrong kind of thing). ``reference`` is the
    library's implementation, ``cases(rng)`` draws the inputs, ``diagnose`` recognises typical
    mistakes. ``dtype`` is the output dtype the exercise requires (None: any floating-point
    dtype); ``changes_inputs`` allows the function to change its arguments in place.
    ``judge`` replaces the comparison with the reference where many answers are right.
    """

    name: str
    signature: str
    reference: Callable[..., Any]
    cases: Callable[[np.random.Generator], list[Case]]
    diagnose: Diagnose | None = None
    dtype: str | None = None
    changes_inputs: bool = False
    rtol: float = 1e-4
    atol: float = 1e-6
    judge: Judge | None = None

    def check(self, fn: Callable[..., Any], seed: int | None = None) -> bool:
        """Print whether ``fn`` is right (or a hint about what is wrong); return True/False."""
        verdict = self.verdict(fn, seed)
        print(verdict.message)
        return verdict.passed

    def verdict(self, fn: Callable[..., Any], seed: int | None = None) -> Verdict:
        """:meth:`check` without printing. ``seed`` fixes the random inputs."""
        if not callable(fn):
            return self._fail(
                f"pass the function itself, e.g. check_{self.name}({self.name}), "
                f"not a {type(fn).__name__}."
            )
        cases = self.cases(np.random.default_rng(seed))
        for case in cases:
            problem = self._problem(fn, case)
            if problem is not None:
                return self._fail(problem)
        kinds = "; ".join(case.what for case in cases)
        return Verdict(True, f"✓ {self.name}: right on all {len(cases)} test inputs ({kinds}).")

    def _fail(self, problem: str) -> Verdict:
        return Verdict(False, f"✗ {self.name}: {problem}")

    def _problem(self, fn: Callable[..., Any], case: Case) -> str | None:
        """What is wrong with ``fn`` on ``case``, or None when it agrees with the reference."""
        args = copy.deepcopy(case.args)
        try:
            # Overflow shows up as NaN/inf in the result, which the hint explains; numpy's
            # own warnings would only repeat it less clearly.
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = fn(*args)
        except NotImplementedError:
            return (
                "not written yet: replace `raise NotImplementedError` with your code. "
                f"It should be {self.signature}"
            )
        except Exception as err:  # the learner's bug, reported as a hint, not a traceback
            return (
                f"on {case.what} it raised {type(err).__name__}: {err}. "
                f"It should be {self.signature}"
            )
        if not self.changes_inputs and not _same(args, case.args):
            return (
                f"it changed its input ({case.what}) in place; work on a copy, so that the "
                "caller's arrays stay as they were."
            )
        if self.judge is not None:
            return self.judge(case, got)
        expected = self.reference(*copy.deepcopy(case.args))
        generic = compare(got, expected, case.what, self.dtype, self.rtol, self.atol)
        if generic is None:
            return None
        return self._diagnosis(case, got, expected) or generic

    def _diagnosis(self, case: Case, got: Any, expected: Any) -> str | None:
        if self.diagnose is None:
            return None
        try:
            with np.errstate(all="ignore"):
                return self.diagnose(case, got, expected)
        except Exception:  # a diagnosis that does not apply to this output: say nothing
            return None


def _same(a: Any, b: Any) -> bool:
    """Whether two argument structures (arrays, dicts, tuples, numbers) hold equal values."""
    if isinstance(b, np.ndarray):
        floats = b.dtype.kind in "fc"
        return isinstance(a, np.ndarray) and np.array_equal(a, b, equal_nan=floats)
    if isinstance(b, Mapping):
        return isinstance(a, Mapping) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in b)
    if isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def compare(
    got: Any, expected: Any, what: str, dtype: str | None, rtol: float, atol: float
) -> str | None:
    """The first way ``got`` differs from ``expected`` (a dict, an array or a number), in
    words, or None when they agree within the tolerances."""
    if isinstance(expected, Mapping):
        return _compare_dict(got, expected, what, dtype, rtol, atol)
    return _compare_value(got, expected, what, "it", dtype, rtol, atol)


def _compare_dict(
    got: Any, expected: Mapping, what: str, dtype: str | None, rtol: float, atol: float
) -> str | None:
    keys = ", ".join(map(repr, expected))
    if not isinstance(got, Mapping):
        return f"on {what} it returned {_kind(got)}; return a dict with the keys {keys}."
    missing = [key for key in expected if key not in got]
    if missing:
        return f"the dict it returned lacks {', '.join(map(repr, missing))} (expected {keys})."
    problems = {
        key: _compare_value(got[key], expected[key], what, key, dtype, rtol, atol)
        for key in expected
    }
    wrong = [key for key, problem in problems.items() if problem is not None]
    if not wrong:
        return None
    right = [key for key in expected if key not in wrong]
    prefix = f"{', '.join(right)} right; " if right else ""
    return prefix + problems[wrong[0]]


def _kind(value: Any) -> str:
    if value is None:
        return "None (did you forget `return`?)"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__module__.split('.')[0]}.{type(value).__name__}".replace(
        "builtins.", ""
    )


def _compare_value(
    got: Any, expected: Any, what: str, name: str, dtype: str | None, rtol: float, atol: float
) -> str | None:
    """Compare one array or number; ``name`` is how the hint calls it ("it", "W1")."""
    if got is None:
        return f"on {what}, {name} returned None: did you forget `return`?"
    if type(got).__module__.split(".")[0] == "torch":
        return f"on {what}, {name} returned a PyTorch tensor; return NumPy values."
    expected = np.asarray(expected)
    try:
        array = np.asarray(got)
    except Exception:
        return f"on {what}, {name} returned {_kind(got)}, which is not a number or an array."
    if array.dtype == object:
        return f"on {what}, {name} returned {_kind(got)}, which is not a number or an array."
    if expected.ndim == 0 and array.ndim > 0:
        return f"on {what}, {name} returned an array of shape {array.shape}; return one number."
    if array.shape != expected.shape:
        return f"on {what}, {name} has shape {array.shape}; expected {expected.shape}."
    if dtype is not None and array.dtype != np.dtype(dtype):
        return f"{name} has dtype {array.dtype}; the exercise asks for {dtype}."
    if dtype is None and not np.issubdtype(array.dtype, np.floating):
        return f"{name} has dtype {array.dtype}; expected floating-point numbers."
    if not np.all(np.isfinite(array)) and np.all(np.isfinite(expected)):
        return f"on {what}, {name} contains NaN or inf."
    if np.allclose(array, expected, rtol=rtol, atol=atol):
        return None
    error = np.abs(array.astype(np.float64) - expected) - rtol * np.abs(expected)
    at = np.unravel_index(int(np.argmax(error)), array.shape) if array.ndim else ()
    where = f" at index {tuple(int(i) for i in at)}" if at else ""
    return (
        f"on {what}, {name} is wrong{where}: yours {float(array[at]):.6g}, "
        f"the reference {float(expected[at]):.6g}."
    )


_EXERCISES: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add ``exercise`` to the registry (its name must be new); return it."""
    if exercise.name in _EXERCISES:
        raise ValueError(f"An exercise named {exercise.name!r} is already registered.")
    _EXERCISES[exercise.name] = exercise
    return exercise


def exercises() -> dict[str, Exercise]:
    """Every registered exercise by name."""
    return dict(_EXERCISES)
