"""Is the audit's sample a fair draw of what routing has not reached? Checked through the real path.

``python -m benchmarks.audit_sample --dataset halueval_qa --runs 6`` replays a labelled dataset as
``bench loop`` does (REST in, the real worker, claims and verdicts out, product defaults), then reads
the queue's traffic as its estimate does (``population.estimate_population``) and compares, with the
file's labels, the failure rate of

- the unknown part (every output routing has not passed: what the sample stands for),
- the audit members in it (a uniform draw of it, if routing is blind to the audit),
- the sample (those members with a verdict, reviewed in the audit's random order),

next to the queue's estimate and the truth. The estimate is unbiased only when the three agree up to
sampling noise; a sample that fails more than the members around it points at something that moves
members out of the unknown part by their verdicts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import loop
from service.cli.replay import commit


def _rate(outcomes: Sequence[bool]) -> dict[str, Any]:
    return {"rate": sum(outcomes) / len(outcomes) if outcomes else None, "n": len(outcomes)}


def one_run(items: Sequence[Any], app: str, database_url: str, redis_url: str) -> dict[str, Any]:
    """One replay on a fresh instance; the rates above, from its database."""
    from core import estimate
    from service.replay.run import ReplayOptions, replay
    from service.storage.db import engine_for, transaction
    from service.storage.population import as_output, estimate_population

    with loop.instance(database_url, redis_url) as (base, settings):
        key, reviewers = loop.accounts(settings)
        run = replay(items, ReplayOptions(url=base, api_key=key, reviewers=reviewers, app=app))
        with transaction(engine_for(settings)) as session:
            rows = estimate_population(session, queue="default")
    truth = run.pool
    seen = [(truth[r.output_id], as_output(r)) for r in rows if r.output_id in truth]
    unknown = [(f, o) for f, o in seen if not o.known]
    e = estimate.every_review([o for _, o in seen])
    return {
        "outputs": len(seen),
        "reviews": len(run.claimed),
        "truth": _rate([f for f, _ in seen]),
        "unknown_part": _rate([f for f, _ in unknown]),
        "members_in_it": _rate([f for f, o in unknown if o.audit]),
        "sample": _rate([f for f, o in unknown if o.sampled]),
        "estimate": {"rate": e.rate, "low": e.low, "high": e.high},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(loop.DATASETS), default="halueval_qa")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--out", type=Path, default=None, help="results JSON")
    args = parser.parse_args(argv)
    app = args.dataset.replace("_", "-")
    items = loop.items_of(args.dataset)
    runs = []
    print("  run  truth  unknown part  members in it  sample        estimate [95%]")
    for i in range(args.runs):
        r = one_run(items, app, args.database_url, args.redis_url)
        runs.append(r)
        e = r["estimate"]
        cells = [f"{r[k]['rate']:.3f} ({r[k]['n']:3d})" for k in ("unknown_part", "members_in_it", "sample")]
        print(
            f"  {i + 1:3d}  {r['truth']['rate']:.3f}  {'  '.join(cells)}"
            f"  {e['rate']:.3f} [{e['low']:.3f}, {e['high']:.3f}]",
            flush=True,
        )
    covered = sum(r["estimate"]["low"] <= r["truth"]["rate"] <= r["estimate"]["high"] for r in runs)
    mean = sum(r["estimate"]["rate"] for r in runs) / len(runs)
    print(
        f"  estimate mean {mean:.3f} against {runs[0]['truth']['rate']:.3f}; covered {covered} of {len(runs)}"
    )
    if args.out:
        args.out.write_text(
            json.dumps({"dataset": args.dataset, "commit": commit(), "runs": runs}, indent=1) + "\n"
        )
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
