"""Input hygiene at one boundary: what storage, the encoder or a page cannot take is refused.

Every request body model derives from ``CleanInput``: a string anywhere in it (dict keys included)
with a NUL character or a lone UTF-16 surrogate (``"\\ud800"`` in JSON), and any number that is not
finite (``NaN``, ``-Infinity``), fails validation with a 422 that names where it is. Refused, not
replaced: silently changing what an application posted would make the stored output differ from the
one it logged. A batch validates item by item, so one such item costs only itself. The path, the
query string and form bodies are checked by ``request_problem`` in the app's body middleware (400).
Integers a caller chooses (offsets, version numbers) are bounded by ``MAX_INT``.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from pydantic import BaseModel, model_validator

#: The largest integer a caller may pass where one is stored or compared (SQLite and PostgreSQL
#: integers hold it everywhere).
MAX_INT = 2**31 - 1
_BAD = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(value: Any) -> Any:
    """``value`` with every string made valid Unicode (lone surrogates become U+FFFD), recursively
    through lists and dicts (keys too): for showing text stored before ingest refused such strings,
    which would otherwise fail to encode as UTF-8 in a response or a page."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [printable(v) for v in value]
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    return value


def value_problem(value: Any, where: str = "") -> str | None:
    """Where the first value under ``value`` that cannot be stored is, and why; None if all can:
    strings with NUL or a lone surrogate, and numbers that are not finite (Python's JSON reader
    takes ``NaN`` and ``-Infinity``, which JSON does not have and PostgreSQL refuses)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where or 'value'}: {value} is not a finite number (JSON has no NaN or Infinity)"
    if isinstance(value, str):
        bad = _BAD.search(value)
        if bad is None:
            return None
        what = "a NUL character" if bad.group() == "\x00" else "a lone UTF-16 surrogate (not valid Unicode)"
        return f"{where or 'value'}: text contains {what}"
    if isinstance(value, dict):
        for key, item in value.items():
            shown = printable(str(key))  # the message itself must encode as UTF-8
            path = f"{where}.{shown}" if where else shown
            if (problem := value_problem(key, f"{path} (key)")) or (problem := value_problem(item, path)):
                return problem
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if problem := value_problem(item, f"{where}[{index}]" if where else f"[{index}]"):
                return problem
    return None


class CleanInput(BaseModel):
    """A request body: refuses text that cannot be stored or shown (see the module docstring)."""

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        if problem := value_problem(data):
            raise ValueError(problem)
        return data


def request_problem(path: str, query: str, form: bytes | None) -> str | None:
    """The same check for what a request carries outside a JSON body."""
    decoded_path = unquote(path, errors="surrogateescape")
    if problem := value_problem(decoded_path, "path"):
        return problem
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
        if form is not None:
            pairs += parse_qsl(
                form.decode("utf-8", "surrogateescape"), keep_blank_values=True, errors="surrogateescape"
            )
    except ValueError as exc:
        return f"query: {exc}"
    for key, value in pairs:
        if problem := value_problem(value, key) or value_problem(key, "query"):
            return problem
    return None
