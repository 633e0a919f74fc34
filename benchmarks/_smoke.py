"""``--smoke`` for every benchmark: the same code path at tiny sizes, in seconds.

``make test`` runs each benchmark this way (``tests/test_benchmarks.py``) and checks the lines the
README's figures are read from, so a benchmark cannot crash unnoticed when the code it measures
changes. The numbers a smoke run prints mean nothing; only the real sizes measure anything.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def parse_args(parser: argparse.ArgumentParser, **smoke: Any) -> argparse.Namespace:
    """Parse the command line; with ``--smoke``, ``smoke``'s values become the defaults (flags given still win)."""
    shown = " ".join(_flag(name, value) for name, value in smoke.items())
    parser.add_argument("--smoke", action="store_true", help=f"tiny sizes, seconds ({shown}); make test runs this")
    if "--smoke" in sys.argv[1:]:
        parser.set_defaults(**smoke)
    return parser.parse_args()


def _flag(name: str, value: Any) -> str:
    """``--name value`` as a user would type it (``--name`` alone for a switch)."""
    flag = f"--{name.replace('_', '-')}"
    if value is True:
        return flag
    return f"{flag} {' '.join(map(str, value)) if isinstance(value, list) else value}"
