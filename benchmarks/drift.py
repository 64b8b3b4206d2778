"""`review-router bench drift`: is a change of traffic raised, and only then? Measured through the
product's real path on a fresh instance (the API under uvicorn and a `review-router worker` process on
PostgreSQL and Redis, product defaults), as `bench loop` starts it.

Two runs. Both first post ``reference + window`` HaluEval general outputs (the queue's reference and
its drift window fill up). Then, in steps of ``step`` outputs, the *switch* run posts the generated QA
set (SmolLM2 answers to HaluEval QA and TruthfulQA) and the *stationary* run posts more HaluEval
general; after each step, once the worker has scored it, the queue's report
(`GET /v1/queues/{name}/report`) says whether the traffic drifts. Figures: after how many outputs of
the new traffic the alarm came (target: within 200), and how many of the stationary run's checks
raised one (target: none).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import loop as bench_loop
from service.cli.replay import commit
from service.replay.data import Labelled, load
from service.replay.run import ReplayOptions, _Api, _idle, _wait, batches

SCORING_TIMEOUT = 900.0


def _post(api: _Api, items: Sequence[Labelled]) -> None:
    for chunk in batches(items):
        api.post_batch([i.payload for i in chunk])
    _wait(lambda: _idle(api), timeout=SCORING_TIMEOUT, what="the worker to score what was posted", poll=0.2)


def _drift(api: _Api) -> dict[str, Any] | None:
    response = api.http.get("/v1/queues/default/report", headers=api.tokens[0])
    shift: dict[str, Any] | None = response.json()["drift"]
    return shift


def one_run(
    *,
    name: str,
    warm: Sequence[Labelled],
    then: Sequence[Labelled],
    step: int,
    database_url: str,
    redis_url: str,
    say: Any,
) -> dict[str, Any]:
    with bench_loop.instance(database_url, redis_url) as (base, settings):
        key, reviewers = bench_loop.accounts(settings)
        api = _Api(ReplayOptions(url=base, api_key=key, reviewers=reviewers, app="drift"))
        try:
            started = time.perf_counter()
            _post(api, warm)
            before = _drift(api)
            checks: list[dict[str, Any]] = []
            for start in range(0, len(then), step):
                _post(api, then[start : start + step])
                shift = _drift(api) or {}
                checks.append(
                    {
                        "after": start + len(then[start : start + step]),
                        "drifted": bool(shift.get("drifted")),
                        "p_value": shift.get("p_value"),
                        "shift": shift.get("shift"),
                    }
                )
                say(f"  {name}: {checks[-1]['after']} new outputs, drifted {checks[-1]['drifted']}")
        finally:
            api.close()
    first = next((c["after"] for c in checks if c["drifted"]), None)
    return {
        "warm_outputs": len(warm),
        "warm_drifted": bool(before and before.get("drifted")),
        "first_alarm_after": first,
        "alarms": sum(c["drifted"] for c in checks),
        "checks": checks,
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_drift(
    *,
    database_url: str,
    redis_url: str,
    out: Path,
    reference: int = 1000,
    window: int = 200,
    step: int = 25,
    after: int = 400,
    say: Any = print,
) -> dict[str, Any]:
    general_path, general_columns = bench_loop.DATASETS["halueval_general"]
    generated_path, generated_columns = bench_loop.DATASETS["generated"]
    general = load(general_path, general_columns, app="drift").items
    generated = load(generated_path, generated_columns, app="drift").items
    warm = general[: reference + window]
    runs = {
        "switch": one_run(
            name="switch",
            warm=warm,
            then=generated[:after],
            step=step,
            database_url=database_url,
            redis_url=redis_url,
            say=say,
        ),
        "stationary": one_run(
            name="stationary",
            warm=warm,
            then=general[reference + window : reference + window + after],
            step=step,
            database_url=database_url,
            redis_url=redis_url,
            say=say,
        ),
    }
    result = {"name": "drift", "commit": commit(), "step": step, **runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def table(result: dict[str, Any]) -> str:
    switch, stationary = result["switch"], result["stationary"]
    first = switch["first_alarm_after"]
    return "\n".join(
        [
            "drift, checked every "
            f"{result['step']} outputs after {switch['warm_outputs']} of HaluEval general:",
            f"  switch to the generated QA set: raised after {first} new outputs"
            if first is not None
            else "  switch to the generated QA set: never raised",
            f"  stationary HaluEval general: {stationary['alarms']} of {len(stationary['checks'])} checks "
            "raised an alarm",
        ]
    )
