"""A replay's figures as a terminal table and a plot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _f(x: float | None, digits: int = 2, suffix: str = "") -> str:
    return "-" if x is None else f"{x:.{digits}f}{suffix}"


def best_signal(report: Mapping[str, Any], share: str) -> tuple[str, float | None, str]:
    """The single signal with the highest lift at ``share`` in either direction."""
    best: tuple[str, float | None, str] = ("-", None, "")
    for row in report["signals"]:
        for direction, values in (("desc", row["lift"]), ("asc", row["lift_reversed"])):
            value = values.get(share)
            if value is not None and (best[1] is None or value > best[1]):
                best = (row["signal"], value, direction)
    return best


def _interval(value: Mapping[str, Any] | None, truth: float) -> str:
    """``rate [low, high] (width)``, starred when the interval misses the truth."""
    if not value:
        return "not available"
    miss = "" if value["low"] - 1e-9 <= truth <= value["high"] + 1e-9 else " *"
    return (
        f"{value['rate'] * 100:.1f}% [{value['low'] * 100:.1f}, {value['high'] * 100:.1f}]"
        f" ({(value['high'] - value['low']) * 100:.1f}){miss}"
    )


def table(name: str, report: Mapping[str, Any]) -> str:
    """The figures a person reads first: lift, the best single signal, AUROC over time, strata."""
    lines = [
        f"replay of {name}: {report['pool']} outputs, {report['failures']} failures "
        f"({report['base_rate'] * 100:.1f}%); {report['reviews']} reviewed, "
        f"{report['failures_found']} failures found",
        "",
        "  reviewed   router lift   best single signal (either direction)",
    ]
    for share, value in report["lift"].items():
        signal, best, direction = best_signal(report, share)
        lines.append(f"  {share:>8}   {_f(value, 2, 'x'):>11}   {signal} ({direction}) {_f(best, 2, 'x')}")
    lines += ["", "  AUROC of the scores on the outputs not yet reviewed:"]
    lines.append(
        "    " + ", ".join(f"{p['reviews']}: {_f(p['auroc'], 3)}" for p in report["auroc_unreviewed"])
    )
    lines += ["", "  stratum        picks  failures  yield"]
    for stratum, row in report["strata"].items():
        lines.append(f"  {stratum:<12} {row['picks']:7d} {row['failures']:9d}  {row['yield'] * 100:5.1f}%")
    est = report["estimate"]
    stats = est.get("queue_stats") or {}
    lines.append("")
    about = ""
    if est.get("left_out"):
        about = f" of the {est['outputs']} outputs it is about ({est['left_out']} junk left out)"
    lines.append(f"  failure rate: truth {est['truth'] * 100:.1f}%{about}; the queue's 95% intervals (width)")
    curve = list(report.get("estimate_curve", []))
    if not curve or curve[-1]["reviews"] != report["reviews"]:
        curve.append({"reviews": report["reviews"], **stats})
    labels = (("estimate", "every review"), ("audit_only", "audit members alone"))
    lines.append("    reviews  " + "  ".join(f"{title:<24}" for _, title in labels))
    for row in curve:
        cells = [_interval(row.get(key), est["truth"]) for key, _ in labels]
        lines.append(f"    {row['reviews']:7d}  " + "  ".join(f"{c:<24}" for c in cells))
    t = report["timings_s"]
    lines.append("  time: " + ", ".join(f"{k.removesuffix('_s')} {v:.0f} s" for k, v in t.items()))
    return "\n".join(lines)


def plot(name: str, report: Mapping[str, Any], path: Path) -> None:
    """Failures found against reviews (router, random, the best single signal) and AUROC over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = report["failures_found_curve"]
    n = len(found)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    reviews = list(range(1, n + 1))
    left.plot(reviews, found, label="router (through the API)", color="#1f5fa8", linewidth=2)
    left.plot(
        reviews,
        [r * report["base_rate"] for r in reviews],
        label="random (expected)",
        color="#888",
        linestyle="--",
    )
    left.set_xlabel("reviews")
    left.set_ylabel("failures found")
    left.set_title(f"{name}: failures found")
    left.legend(loc="upper left")
    points = [p for p in report["auroc_unreviewed"] if p["auroc"] is not None]
    right.plot([p["reviews"] for p in points], [p["auroc"] for p in points], marker="o", color="#1f5fa8")
    right.axhline(0.5, color="#888", linestyle="--")
    right.set_xlabel("reviews")
    right.set_ylabel("AUROC on unreviewed outputs")
    right.set_title("how well scores rank what is left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
