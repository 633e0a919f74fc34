"""The one exception type for user mistakes.

Anything a user can fix (a wrong path, an unknown task, a malformed study file) raises
:class:`OCLError` with one line that says what is wrong, where, and how to fix it. The CLI prints
that line to stderr and exits with code 2, without a traceback (``--debug`` shows one). Bugs are
any other exception type, and keep their traceback.
"""

from __future__ import annotations

__all__ = ["OCLError"]


class OCLError(Exception):
    """A mistake the user can fix; the message is one line: what, where, how to fix."""
