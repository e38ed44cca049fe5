"""Errors a user can act on.

A :class:`UserError` is a mistake in what the user asked for (unknown recipe, bad flag value,
missing data). The command line prints its message as one sentence and exits with status 2,
without a traceback. Anything else that goes wrong is a failure of the run itself (status 1).
"""


class UserError(Exception):
    """A problem with the user's input; the message says what to do about it."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Interrupted(Exception):
    """The user stopped a run (Ctrl-C); the message says what was kept."""
