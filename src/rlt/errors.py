"""The one exception type for the user's mistakes.

A bad row, option, path or model name is not a bug in rlt: ``rlt`` reports it as one line,
``error: <message>``, and exits with status 2 (the traceback only with ``--debug`` or ``RLT_DEBUG=1``).
Everything else is a bug or an environment failure and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in what the user gave rlt; the message says what and where (file, row, option, path).

    A ``ValueError``, as a bad value is, so that library callers can catch either."""


__all__ = ["UserError"]
