"""What `review-router bench collections` checks in the curated data, and its figures as printed
(``benchmarks.curation`` runs the scenario)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import Any

from benchmarks.curation_data import Posted
from core import exports

FINETUNE, SUITE = "corrections", "qa-regressions"
FIELDS = {
    "openai-chat": exports.CHAT_FIELDS,
    "openai-dpo": exports.DPO_FIELDS,
    "eval-jsonl": exports.EVAL_FIELDS,
}
SHOWN = {"openai-chat": FINETUNE, "openai-dpo": FINETUNE, "eval-jsonl": SUITE, "csv": SUITE}
SHOWN_HELD_BACK = 6


def _lines(fmt: str, text: str) -> list[dict[str, Any]]:
    """An export's records: JSON objects, or CSV rows as dicts (raises on anything malformed)."""
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        if tuple(rows[0]) != exports.CSV_COLUMNS or any(len(r) != len(exports.CSV_COLUMNS) for r in rows):
            raise ValueError("a CSV row does not have the export's columns")
        return [dict(zip(exports.CSV_COLUMNS, map(exports.csv_value, r), strict=True)) for r in rows[1:]]
    records = [json.loads(raw) for raw in text.splitlines()]
    if any(set(r) != FIELDS[fmt] for r in records):
        raise ValueError(f"a line does not have exactly the fields {sorted(FIELDS[fmt])}")
    return records


def _same_input(messages: list[dict[str, Any]]) -> str:
    """An input as duplicate merging compares it: case and spacing ignored."""
    return json.dumps([(m["role"], " ".join(m["content"].lower().split())) for m in messages])


def promoted_ids(got: dict[str, Any]) -> set[str]:
    """Every output a version holds: exported, held back, or merged into one of those."""
    report = got["leakage"]
    ids = {r["metadata"]["output_id"] for r in _lines("eval-jsonl", got["texts"]["eval-jsonl"])}
    ids |= {h["output_id"] for h in report["held_back"]}
    return ids | {m for merged in report["merged"] for m in merged["merged_output_ids"]}


def check(got: dict[str, dict[str, Any]], truth: dict[str, Posted], repeats: int) -> list[str]:
    """What the curated data must satisfy; each broken promise as a sentence."""
    problems: list[str] = []
    parsed: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for name, one in got.items():
        for fmt, text in one["texts"].items():
            try:
                records = parsed[name, fmt] = _lines(fmt, text)
            except ValueError as exc:
                problems.append(f"{name} {fmt}: {exc}")
                continue
            counts = one["headers"][fmt]
            if len(records) != counts["exported"]:
                problems.append(f"{name} {fmt}: {len(records)} lines but X-Exported {counts['exported']}")
            if counts["exported"] + counts["held-back"] + counts["skipped"] != one["items"]:
                problems.append(f"{name} {fmt}: exported + held back + skipped != {one['items']} items")
        if not one["stable"]:
            problems.append(f"{name}: a version downloaded twice gave different bytes")
    if problems:
        return problems
    failed = {oid for oid, p in truth.items() if p.hallucinated}
    for name, one in got.items():
        for r in parsed[name, "eval-jsonl"]:
            posted = truth[r["metadata"]["output_id"]]
            if (r["ideal"], r["bad_output"]) != (posted.right_answer, posted.response):
                problems.append(f"{name}: {r['id']} does not carry the right answer over the posted one")
        if promoted_ids(one) != failed:
            problems.append(f"{name}: holds {len(promoted_ids(one))} outputs, not the {len(failed)} failures")
        merged = sum(len(m["merged_output_ids"]) for m in one["leakage"]["merged"])
        if merged != repeats:
            problems.append(f"{name}: {merged} duplicates merged, {repeats} posted")
    tuned = {_same_input(r["messages"][:-1]) for r in parsed[FINETUNE, "openai-chat"]}
    evals = {_same_input(r["input"]) for r in parsed[SUITE, "eval-jsonl"]}
    if tuned & evals:
        problems.append(f"{len(tuned & evals)} inputs are exported for fine-tuning and in the eval suite")
    failures = {_same_input(truth[oid].payload()["messages"]) for oid in failed}
    if tuned | evals != failures:
        problems.append(f"{len(failures - tuned - evals)} failures are exported on neither side")
    return problems


def _held_back(report: dict[str, Any], truth: dict[str, Posted]) -> list[dict[str, Any]]:
    return [
        {
            "output_id": h["output_id"],
            "question": truth[h["output_id"]].question,
            "reason": h["reason"],
            "twins": [
                {
                    "collection": m["collection"],
                    "output_id": m["output_id"],
                    "same_question": truth[m["output_id"]].question == truth[h["output_id"]].question,
                    "why": m["why"],
                }
                for m in h["matches"]
            ],
        }
        for h in report["held_back"]
    ]


def summarize(got: dict[str, Any], truth: dict[str, Posted]) -> dict[str, Any]:
    """One collection's figures: versions, items, what was promoted, exported, held back, merged."""
    report = got["leakage"]
    return {
        "kind": report["kind"],
        "version": report["version"],
        "items": got["items"],
        "promoted": len(promoted_ids(got)),
        "merged": sum(len(m["merged_output_ids"]) for m in report["merged"]),
        "held_back": len(report["held_back"]),
        "exported": {fmt: h["exported"] for fmt, h in got["headers"].items()},
        "skipped": {fmt: h["skipped"] for fmt, h in got["headers"].items()},
        "checked_against": report["checked_against"],
        "merged_items": [
            {"output_id": m["output_id"], "merged": m["merged_output_ids"]} for m in report["merged"]
        ],
        "held_back_items": _held_back(report, truth),
    }


def _short(text: str, width: int = 56) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def report(figures: dict[str, Any]) -> str:
    """The figures as the command prints them."""
    f, r, s = figures, figures["reviews"], figures["after_scoring"]
    unpicked = f["posted"] - s["queued"]
    lines = [
        f"bench collections: {f['items']} HaluEval QA items + {f['repeats']} exact repeats from a second app "
        f"(seed {f['seed']}, {f['database']}), {f['seconds']:.1f} s",
        f"  posted {f['posted']} outputs through POST /v1/outputs/batch: "
        + ", ".join(f"{n} {k}" for k, n in f["ingest"].items()),
        f"  scored by the worker; {s['queued']} picked into the queue, {unpicked} not picked "
        f"({s['junk']} junk: one answer given to many questions; {s['scored']} left out)",
        f"  reviewed {r['claimed'] + r['by_id']}: {r['claimed']} claimed from the queue, {r['by_id']} by id; "
        f"{f['failed']} fail (factual_error, with the right answer as correction), {f['passed']} pass; "
        f"{r['second_reviews']} blind second reviews; verdicts by reviewer "
        + ", ".join(f"{k} {n}" for k, n in r["by_reviewer"].items()),
    ]
    for name, c in f["collections"].items():
        exported = ", ".join(f"{fmt} {n}" for fmt, n in c["exported"].items())
        lines.append(
            f"  {name} ({c['kind']}) v{c['version']}: {c['promoted']} outputs promoted, {c['merged']} "
            f"duplicates merged -> {c['items']} items; {c['held_back']} held back (leakage), "
            f"{sum(c['skipped'].values())} skipped; exported {exported}"
        )
    cli = f["cli_check"]
    lines.append(
        f"  `review-router export {cli['collection']} --format {cli['format']}`: "
        f"{'the same' if cli['same_as_api'] else 'NOT the same'} {cli['bytes']} bytes "
        "as the API download"
    )
    lines += ["", "first two lines of each export (latest versions):"]
    for fmt, first in f["first_lines"].items():
        lines.append(f"  {fmt} ({SHOWN[fmt]} v{f['collections'][SHOWN[fmt]]['version']}):")
        lines += [f"    {line}" for line in first]
    lines += ["", "leakage report:"]
    for name, c in f["collections"].items():
        against = ", ".join(f"{n} v{v}" for n, v in c["checked_against"].items()) or "nothing"
        lines.append(
            f"  {name} v{c['version']}: {c['held_back']} of {c['items']} held back; checked against {against}"
        )
        merged = ", ".join(
            f"{m['output_id'][:8]} <- {' '.join(o[:8] for o in m['merged'])}" for m in c["merged_items"]
        )
        lines.append(f"    merged duplicates (same input): {merged or 'none'}")
        reasons = Counter(h["reason"].split("; ", 1)[-1] for h in c["held_back_items"])
        lines += [f"    {n} x {reason}" for reason, n in reasons.most_common()]
        others = sum(any(not t["same_question"] for t in h["twins"]) for h in c["held_back_items"])
        lines.append(f"    {others} of them also near another question (cosine or same cluster)")
        # Collisions with another question first: the same failure on both sides is the plain case.
        shown = sorted(c["held_back_items"], key=lambda h: all(t["same_question"] for t in h["twins"]))
        for h in shown[:SHOWN_HELD_BACK]:
            twins = "; ".join(
                f"{t['collection']}:{t['output_id'][:8]} ({t['why']}"
                + ("" if t["same_question"] else ", another question")
                + ")"
                for t in h["twins"]
            )
            lines.append(f'    held back {h["output_id"][:8]} "{_short(h["question"])}": twin {twins}')
        if len(c["held_back_items"]) > SHOWN_HELD_BACK:
            lines.append(f"    ... {len(c['held_back_items']) - SHOWN_HELD_BACK} more in the JSON")
    lines.append("")
    lines.append("checks: " + ("all hold" if not f["problems"] else "FAILED: " + "; ".join(f["problems"])))
    return "\n".join(lines)
