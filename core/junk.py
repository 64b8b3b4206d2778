"""Junk: outputs never worth a reviewer's slot (empty, non-text, exact repeats, one response given to
many prompts), found in a selection window and returned by reason."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

from core.candidates import Candidate, SelectionParams

# Binary decoded as text shows up as C0/C1 controls, replacement characters or private-use code points.
_ODD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]")
_BLOB = re.compile(r"[A-Za-z0-9+/=_-]{100,}")


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


def _is_non_text(text: str) -> bool:
    if len(_ODD_CHARS.findall(text)) * 5 >= len(text):
        return True
    return " " not in text and _BLOB.fullmatch("".join(text.split())) is not None


def find_junk(candidates: Sequence[Candidate], params: SelectionParams) -> dict[int, str]:
    """Index -> junk reason for the candidates that must never take a reviewer's slot."""
    junk: dict[int, str] = {}
    by_response: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(candidates):
        stripped = c.response.strip()
        if not stripped:
            junk[i] = "empty"
        elif _is_non_text(stripped):
            junk[i] = "non-text"
        else:
            by_response[_normalised(stripped)].append(i)
    by_pair: dict[tuple[str, str], list[int]] = defaultdict(list)
    for response, members in by_response.items():
        if len({_normalised(candidates[i].prompt) for i in members}) >= params.junk_repeat_prompts:
            junk.update(dict.fromkeys(members, "same response to many prompts"))
            continue
        for i in members:
            by_pair[(_normalised(candidates[i].prompt), response)].append(i)
    for members in by_pair.values():
        # The highest-scoring copy stays, so a repeat never hides the copy scoring ranked first.
        keep = min(members, key=lambda i: (candidates[i].score is None, -(candidates[i].score or 0.0), i))
        junk.update({i: "exact repeat" for i in members if i != keep})
    return junk
