"""Which class a binary task predicts: the finding, never "normal".

A two-class folder such as ``normal/`` + ``nodule/`` gets the default task ``binary:<positive>``.
The positive class is the one that is not a negative: a class whose name, ignoring case, ``_``,
``-``, spaces and a leading number prefix (``0_normal``), is one of :data:`NEGATIVE_CLASS_NAMES`.
``benign`` is deliberately not on the list: in lesion datasets it is a finding of its own.
``--positive CLASS`` names the positive class outright (on any dataset it makes the default task
``binary:CLASS``). When neither or both classes look negative, the class last in name order is
chosen and a note says so and asks for ``--positive``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from sweep.errors import OCLError

NEGATIVE_CLASS_NAMES: tuple[str, ...] = ("normal", "no finding", "nofinding", "negative", "healthy")
"""Class names (normalised: lower case, ``_``/``-`` as spaces, no leading ``0_``-style prefix) that
mean "nothing found"."""


def _normalise(name: str) -> str:
    text = re.sub(r"[\s_\-]+", " ", name.strip().lower()).strip()
    return re.sub(r"^\d+\s*", "", text)


def looks_negative(name: str) -> bool:
    """Whether a class name means "nothing found" (``Normal``, ``0_normal``, ``No_Finding``, ``healthy``)."""
    return _normalise(name) in NEGATIVE_CLASS_NAMES


def check_positive(positive: str, classes: Sequence[str], where: Path | str) -> str:
    """``positive`` if it is one of ``classes``; otherwise an OCLError listing them."""
    if positive in classes:
        return positive
    same = [c for c in classes if c.lower() == positive.lower()]
    hint = f"did you mean {same[0]}? " if same else ""
    raise OCLError(f"--positive {positive}: {where} has no class {positive!r}; {hint}classes: {', '.join(classes)}")


def choose_positive(classes: Sequence[str], positive: str | None, where: Path | str) -> tuple[str, str]:
    """The positive class of a two-class dataset, and the note that tells the user why.

    Raises:
        OCLError: when ``positive`` is not one of the classes.
    """
    if positive is not None:
        chosen = check_positive(positive, classes, where)
        other = next(c for c in classes if c != chosen)
        return chosen, f"positive class: {chosen} (negative: {other}), as --positive asks"
    negatives = [c for c in classes if looks_negative(c)]
    if len(negatives) == 1:
        chosen = next(c for c in classes if c != negatives[0])
        return chosen, f"positive class: {chosen} (negative: {negatives[0]}); pass --positive to choose"
    chosen = sorted(classes)[-1]
    other = next(c for c in classes if c != chosen)
    why = "both classes look" if negatives else "neither class looks"
    return chosen, (
        f"positive class: {chosen} (negative: {other}), picked as the last in name order because {why} "
        f"like a negative ({', '.join(NEGATIVE_CLASS_NAMES)}); pass --positive CLASS to choose"
    )
