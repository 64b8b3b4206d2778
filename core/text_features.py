"""Cheap text signals: what the prompt and the response alone say about the risk of a wrong answer.

Pure and fast (regular expressions and set arithmetic, no model). Most traffic comes with no
log-probs and no samples, so these carry the cold start and give the learned model something to
weigh from the first reviews. Orientation is a *prior*: "more specific, more claims, less support in
the prompt" is riskier on most apps, but a queue's own reviews decide the sign and the weight
(``core.learned``).

Formulas (``words`` are the response's word tokens, ``content`` those not in a short stop list):

- ``length`` = ``log(1 + len(words))``
- ``specificity`` = ``specific / (len(words) + 10)``, where ``specific`` counts the numbers and the
  words capitalised mid-sentence (names, places, dates): their share of the words, shrunk toward 0
  by ten pseudo-words (about a sentence), because a rate over a handful of words says little. A
  two-word answer that is a name is not a dense run of claims (unshrunk, such answers, typically
  right, ranked as the riskiest of short-answer QA traffic)
- ``numbers`` = ``log(1 + count of number tokens)``
- ``hedging`` = hedge phrases per 100 words ("may", "might", "approximately", "I think", ...)
- ``structure`` = ``log(1 + list items + table rows)``
- ``off_topic`` = ``1 - |content(response) & content(prompt)| / |content(prompt)|``: how little of
  what the prompt asks about the response takes up
- ``unsupported`` = share of the response's specific tokens (numbers and names) that appear nowhere
  in the prompt, including any context pasted into the messages; None when the response has none
- ``repetition`` = share of the response's word trigrams that repeat an earlier trigram
- ``disclaimer`` = ``log(1 + disclaimers)``: "as an AI", "I cannot", "I don't have access", ... anywhere
  in the response; a model that disclaims and then answers anyway is often making the answer up
- ``factual_request`` = 0 when the prompt asks for writing, rewriting or ideas (no single right
  answer), else 1
"""

from __future__ import annotations

import math
import re

#: Words of zero specificity added to every response before taking the share (see ``specificity``).
SPECIFICITY_PSEUDO_WORDS = 10

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,.:/\-]*")
_NUMBER = re.compile(r"\d")
_SENTENCE_END = re.compile(r"[.!?:;\n]")
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d{1,3}[.)])\s+", re.MULTILINE)
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$", re.MULTILINE)
_HEDGES = re.compile(
    r"\b(may|might|could|possibly|perhaps|probably|likely|unlikely|approximately|around|about|"
    r"roughly|estimated?|generally|typically|usually|often|some|i think|i believe|it seems|"
    r"it is unclear|not sure|uncertain)\b",
    re.IGNORECASE,
)
_DISCLAIMER = re.compile(
    r"\b(as an ai|(?:ai|large) language model|i(?:'m| am) (?:sorry|unable|not able)|i can(?:no|')t|"
    r"i (?:do not|don't) have (?:access|the ability|real-time|personal|enough)|real-time|"
    r"knowledge cut-?off|i apologi[sz]e|not possible for me|i(?:'m| am) not (?:sure|certain|aware))",
    re.IGNORECASE,
)
_CREATIVE = re.compile(
    r"\b(write|compose|create|generate|come up|brainstorm|suggest|imagine|invent|story|poem|slogan|"
    r"tweet|haiku|metaphor|describe|rewrite|edit|rephrase|paraphrase|summari[sz]e|translate|design)\b",
    re.IGNORECASE,
)
_STOP = """a an the and or but if then else of to in on at by for with from as is are was were be been being
    it its this that these those there here what which who whom whose when where why how i you he she we
    they me him her us them my your his our their do does did done not no yes so than too very can will
    would should could may might must shall about into over under up down out off again more most some
    any all each every both few other such only own same just also please give write list make tell
    describe explain provide create generate name one two"""
STOP_WORDS = frozenset(_STOP.split())

#: Every text signal this module computes, with what it measures (higher = riskier by the prior).
TEXT_SIGNALS: dict[str, str] = {
    "length": "the response is long (log word count)",
    "specificity": "share of numbers and names among the response's words (shrunk when it is short)",
    "numbers": "numbers stated in the response",
    "hedging": "hedging phrases per 100 words",
    "structure": "list items and table rows in the response",
    "off_topic": "little of what the prompt asks about is taken up by the response",
    "unsupported": "numbers and names in the response that appear nowhere in the prompt",
    "repetition": "the response repeats itself (repeated word trigrams)",
    "disclaimer": 'the response disclaims ("as an AI", "I cannot") and may answer anyway',
    "factual_request": "the prompt asks for facts rather than writing or ideas",
}


def words(text: str) -> list[str]:
    """Word and number tokens, in order."""
    return _WORD.findall(text)


def _specific_tokens(text: str) -> list[str]:
    """Numbers, and capitalised words that do not start a sentence (a cheap stand-in for names)."""
    out: list[str] = []
    sentence_start = True
    for match in re.finditer(rf"{_WORD.pattern}|{_SENTENCE_END.pattern}", text):
        token = match.group(0)
        if _SENTENCE_END.fullmatch(token):
            sentence_start = True
            continue
        if _NUMBER.match(token):
            out.append(token.rstrip(".,:"))
        elif token[0].isupper() and not sentence_start and token.casefold() not in STOP_WORDS:
            out.append(token)
        sentence_start = False
    return out


def content_words(text: str) -> set[str]:
    """Lower-cased words of three letters or more that are not stop words."""
    return {w.casefold() for w in words(text) if len(w) >= 3 and w.casefold() not in STOP_WORDS}


def _repetition(tokens: list[str]) -> float | None:
    if len(tokens) < 6:
        return None
    lowered = [t.casefold() for t in tokens]
    trigrams = list(zip(lowered, lowered[1:], lowered[2:], strict=False))
    return 1.0 - len(set(trigrams)) / len(trigrams)


def text_features(prompt: str, response: str) -> dict[str, float | None]:
    """All of ``TEXT_SIGNALS`` for one output; None where a signal has nothing to measure."""
    tokens = words(response)
    n = len(tokens)
    if n == 0:
        return {**dict.fromkeys(TEXT_SIGNALS), "factual_request": factual_request(prompt)}
    specific = _specific_tokens(response)
    numbers = sum(1 for t in tokens if _NUMBER.match(t))
    prompt_content = content_words(prompt)
    response_content = content_words(response)
    off_topic = 1.0 - len(prompt_content & response_content) / len(prompt_content) if prompt_content else None
    prompt_text = prompt.casefold()
    unsupported = (
        sum(1 for t in specific if t.casefold() not in prompt_text) / len(specific) if specific else None
    )
    structure = len(_LIST_ITEM.findall(response)) + len(_TABLE_ROW.findall(response))
    return {
        "length": math.log1p(n),
        "specificity": len(specific) / (n + SPECIFICITY_PSEUDO_WORDS),
        "numbers": math.log1p(numbers),
        "hedging": 100.0 * len(_HEDGES.findall(response)) / n,
        "structure": math.log1p(structure),
        "off_topic": off_topic,
        "unsupported": unsupported,
        "repetition": _repetition(tokens),
        "disclaimer": math.log1p(len(_DISCLAIMER.findall(response))),
        "factual_request": factual_request(prompt),
    }


def factual_request(prompt: str) -> float | None:
    """0 when the prompt asks for writing or ideas, 1 otherwise; None without a prompt."""
    if not prompt.strip():
        return None
    return 0.0 if _CREATIVE.search(prompt) else 1.0
