"""Reading outputs from files other tools wrote, for `review-router import`: OpenAI Batch API output
(joined with its input file), any JSONL or CSV with a column map, and Langfuse and LangSmith exports.

Each row becomes the body of one output, or the reason it cannot be one. A row without an id of its
own gets one derived from its content, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.replay.data import PROMPT_NAMES, RESPONSE_NAMES, ReplayDataError, read_rows

FORMATS = ("auto", "openai-batch", "table", "langfuse", "langsmith")
#: Fields a column map may name (``--map response=answer``); ``metadata.KEY=column`` adds metadata.
MAP_FIELDS = ("messages", "prompt", "response", "completion", "app", "model", "id", "samples")
LANGCHAIN_ROLES = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "function",
}


class ImportFileError(ValueError):
    """The file cannot be imported at all (its format, its columns): the message says why."""


@dataclass(frozen=True)
class Row:
    """One row: the output's body, or the reason it is not one."""

    number: int
    body: dict[str, Any] | None
    error: str | None = None


def rows_of(
    path: Path,
    *,
    fmt: str = "auto",
    batch_input: Path | None = None,
    mapping: dict[str, str] | None = None,
    app: str = "import",
) -> Iterator[Row]:
    """The outputs of ``path`` in format ``fmt`` (``auto`` looks at the first row)."""
    try:
        rows = list(read_rows(path))
    except (ReplayDataError, UnicodeDecodeError, OSError) as exc:
        raise ImportFileError(str(exc)) from exc
    if fmt == "auto":
        fmt = detect(rows)
    if fmt == "openai-batch":
        if batch_input is None:
            raise ImportFileError(
                "an OpenAI Batch output file needs its input file: --input BATCH_INPUT.jsonl"
            )
        yield from _openai_batch(rows, _batch_requests(batch_input), app)
    elif fmt == "langfuse":
        yield from _numbered(_langfuse(rows, app))
    elif fmt == "langsmith":
        yield from _numbered(_langsmith(rows, app))
    else:
        yield from _table(rows, mapping or {}, app)


def detect(rows: list[dict[str, Any]]) -> str:
    first = rows[0] if rows else {}
    if "custom_id" in first and ("response" in first or "error" in first):
        return "openai-batch"
    if "observations" in first or first.get("type") in ("GENERATION", "generation"):
        return "langfuse"
    if "run_type" in first:
        return "langsmith"
    return "table"


def content_id(body: dict[str, Any]) -> str:
    """An id from the output's content: the same row imported again is a duplicate."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "import-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _finish(body: dict[str, Any], given_id: Any) -> dict[str, Any]:
    body = {k: v for k, v in body.items() if v is not None}
    body["external_id"] = str(given_id) if given_id not in (None, "") else content_id(body)
    return body


def _numbered(items: Iterator[tuple[dict[str, Any] | None, str | None]]) -> Iterator[Row]:
    for number, (body, error) in enumerate(items, 1):
        yield Row(number, body, error)


# -- OpenAI Batch API ------------------------------------------------------------------------------
def _batch_requests(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return {str(r["custom_id"]): r.get("body") or {} for r in read_rows(path) if "custom_id" in r}
    except (ReplayDataError, OSError) as exc:
        raise ImportFileError(f"the batch input file: {exc}") from exc


def _openai_batch(rows: list[dict[str, Any]], requests: dict[str, dict[str, Any]], app: str) -> Iterator[Row]:
    for number, row in enumerate(rows, 1):
        custom_id = str(row.get("custom_id"))
        if row.get("error"):
            yield Row(number, None, f"{custom_id}: the batch request failed ({row['error']})")
            continue
        response = row.get("response") or {}
        completion = response.get("body")
        request = requests.get(custom_id)
        if request is None:
            yield Row(number, None, f"{custom_id}: not in the input file")
        elif response.get("status_code", 200) >= 400 or not isinstance(completion, dict):
            yield Row(number, None, f"{custom_id}: the batch request answered {response.get('status_code')}")
        elif not request.get("messages"):
            yield Row(number, None, f"{custom_id}: its request has no chat messages")
        else:
            body = {
                "app": app,
                "model": completion.get("model") or request.get("model"),
                "messages": request["messages"],
                "completion": completion,
                "metadata": {"source": "openai-batch", "batch_request_id": row.get("id")},
            }
            yield Row(number, _finish(body, custom_id))


# -- any table -------------------------------------------------------------------------------------
def _table(rows: list[dict[str, Any]], mapping: dict[str, str], app: str) -> Iterator[Row]:
    unknown = [f for f in mapping if f not in MAP_FIELDS and not f.startswith("metadata.")]
    if unknown:
        raise ImportFileError(
            f"--map names unknown fields {unknown}; use {', '.join(MAP_FIELDS)} or metadata.KEY"
        )
    columns = set().union(*(r.keys() for r in rows)) if rows else set()
    missing = sorted(c for c in mapping.values() if c not in columns)
    if rows and missing:
        raise ImportFileError(f"no column {missing} in the file; it has {sorted(columns)}")
    field = {f: mapping.get(f) or _usual(f, columns) for f in MAP_FIELDS}
    if rows and not (field["messages"] or field["prompt"]):
        raise ImportFileError(
            f"no prompt or messages column among {sorted(columns)}: map one, e.g. --map prompt=question"
        )
    if rows and not (field["response"] or field["completion"]):
        raise ImportFileError(
            f"no response or completion column among {sorted(columns)}: map one, e.g. --map response=answer"
        )
    extra = {k.removeprefix("metadata."): c for k, c in mapping.items() if k.startswith("metadata.")}
    for number, row in enumerate(rows, 1):
        body: dict[str, Any] = {"app": str(row.get(field["app"]) or app) if field["app"] else app}
        if field["model"]:
            body["model"] = row.get(field["model"]) or None
        messages = _json_value(row.get(field["messages"])) if field["messages"] else None
        if isinstance(messages, list) and messages:
            body["messages"] = messages
        elif field["prompt"] and row.get(field["prompt"]) not in (None, ""):
            body["prompt"] = str(row[field["prompt"]])
        completion = _json_value(row.get(field["completion"])) if field["completion"] else None
        if isinstance(completion, dict):
            body["completion"] = completion
        elif field["response"] and row.get(field["response"]) is not None:
            body["response"] = str(row[field["response"]])
        if field["samples"] and isinstance(samples := _json_value(row.get(field["samples"])), list):
            body["samples"] = [str(s) for s in samples]
        body["metadata"] = {
            key: row.get(column) for key, column in extra.items() if row.get(column) is not None
        }
        if ("messages" not in body and "prompt" not in body) or (
            "response" not in body and "completion" not in body
        ):
            yield Row(number, None, f"row {number}: no prompt or no response")
            continue
        yield Row(number, _finish(body, row.get(field["id"]) if field["id"] else None))


def _usual(name: str, columns: set[str]) -> str | None:
    names = {"prompt": PROMPT_NAMES, "response": RESPONSE_NAMES}.get(name, (name,))
    return next((n for n in names if n in columns), None)


def _json_value(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# -- Langfuse and LangSmith ------------------------------------------------------------------------
def _langfuse(rows: list[dict[str, Any]], app: str) -> Iterator[tuple[dict[str, Any] | None, str | None]]:
    for row in rows:
        observations = row.get("observations") if "observations" in row else [row]
        for obs in observations or []:
            if str(obs.get("type", "")).upper() != "GENERATION":
                continue
            messages = _chat(obs.get("input"))
            answer = _answer(obs.get("output"))
            if not messages or answer is None:
                yield None, f"generation {obs.get('id')}: no input messages or no output"
                continue
            body = {
                "app": app,
                "model": obs.get("model"),
                "messages": messages,
                "metadata": {"source": "langfuse", "trace_id": obs.get("traceId") or row.get("id")},
                **answer,
            }
            yield _finish(body, obs.get("id")), None


def _langsmith(rows: list[dict[str, Any]], app: str) -> Iterator[tuple[dict[str, Any] | None, str | None]]:
    for row in rows:
        if row.get("run_type") not in ("llm", "chat_model"):
            continue
        inputs, outputs = row.get("inputs") or {}, row.get("outputs") or {}
        messages = _chat(inputs.get("messages") or inputs.get("prompts") or inputs.get("input"))
        answer = _answer(outputs)
        if not messages or answer is None:
            yield None, f"run {row.get('id')}: no input messages or no output"
            continue
        params = (row.get("extra") or {}).get("invocation_params") or {}
        body = {
            "app": app,
            "model": params.get("model") or params.get("model_name"),
            "messages": messages,
            "metadata": {"source": "langsmith", "trace_id": row.get("trace_id")},
            **answer,
        }
        yield _finish(body, row.get("id")), None


def _chat(value: Any) -> list[dict[str, Any]]:
    """Chat messages from the shapes these tools store: OpenAI messages, LangChain messages
    (serialized or not), nested one level (LangChain batches), a {"messages": [...]}, or text."""
    if isinstance(value, dict) and "messages" in value:
        value = value["messages"]
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and value and isinstance(value[0], list):
        value = value[0]
    out = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, str):
            out.append({"role": "user", "content": item})
        elif isinstance(item, dict):
            out.append(_message(item))
    return [m for m in out if m["content"] is not None]


def _message(item: dict[str, Any]) -> dict[str, Any]:
    if item.get("lc") and isinstance(item.get("kwargs"), dict):  # a serialized LangChain message
        kind = str((item.get("id") or ["HumanMessage"])[-1]).removesuffix("Message").casefold()
        return {"role": LANGCHAIN_ROLES.get(kind, "user"), "content": item["kwargs"].get("content")}
    role = item.get("role") or LANGCHAIN_ROLES.get(str(item.get("type", "")).casefold(), "user")
    return {"role": role, "content": item.get("content")}


def _answer(value: Any) -> dict[str, Any] | None:
    """``{"completion": ...}`` for a provider's whole response, else ``{"response": text}``."""
    if isinstance(value, str):
        return {"response": value}
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("choices"), list) and value["choices"]:
        return {"completion": value}
    generations = value.get("generations")
    if isinstance(generations, list) and generations:
        first = generations[0][0] if isinstance(generations[0], list) else generations[0]
        if isinstance(first, dict):
            message = first.get("message") or {}
            text = first.get("text") or (message.get("kwargs") or {}).get("content") or message.get("content")
            return {"response": str(text)} if text is not None else None
    if value.get("content") is not None:
        return {"response": str(value["content"])}
    return None
