"""How numbers read on the page: one format for every section."""

from __future__ import annotations

import html
import math
from typing import Any


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _interval_text(value: dict[str, Any] | None, digits: int = 3) -> str:
    """An estimate with its interval, the interval in the page's muted style; a dash when absent."""
    if not value:
        return "–"
    low, high = _fmt(value["low"], digits), _fmt(value["high"], digits)
    return f"{_fmt(value['estimate'], digits)} <span class='ci'>[{low}, {high}]</span>"
