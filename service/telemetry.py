"""Prometheus metrics: what the processes count as they work, and what the database says at scrape.

Counters and histograms are kept in prometheus-client's multi-process mode, so several API processes
and workers add up on one ``/metrics``: every process writes to the same folder (``metrics_dir``,
``RR_DATA_DIR/metrics`` by default; ``PROMETHEUS_MULTIPROC_DIR`` when set) and the scrape sums the
files. prometheus-client chooses that mode when it is first imported; our metrics are made after
``configure`` has named the folder, and choose again then. Gauges that describe the state of things
(backlog, queue depth, the failure-rate estimate, the active scorer) are read at scrape time.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds from an output's arrival to its score.
SCORING_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


def metrics_dir(settings: Settings) -> Path:
    """The folder every process of this instance writes its counters to."""
    return Path(os.environ.get(MULTIPROC_ENV) or settings.data_dir / "metrics")


def configure(settings: Settings, *, fresh: bool = False) -> Path:
    """Name this process's metrics folder (before any metric is touched). ``fresh``: empty it first,
    for the process that starts an instance (the old files are other runs' counts)."""
    folder = metrics_dir(settings)
    if fresh and folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault(MULTIPROC_ENV, str(folder))
    return folder


@dataclass(frozen=True)
class _Metrics:
    ingested: Any
    spans: Any
    reviews: Any
    scoring: Any
    job_failures: Any


_made: list[_Metrics] = []
_making = threading.Lock()


def _metrics() -> _Metrics:
    """This process's metrics, made once: the first requests arrive on many threads at once, and a
    metric registered twice is refused."""
    if not _made:
        with _making:
            if not _made:
                _made.append(_make())
    return _made[0]


def _make() -> _Metrics:
    import prometheus_client as prom
    from prometheus_client import values

    # prometheus-client picks in-memory or multi-process values when first imported, which may have
    # happened before ``configure`` named the folder: pick again now, before our metrics exist.
    values.ValueClass = values.get_value_class()
    return _Metrics(
        ingested=prom.Counter(
            "review_router_outputs_ingested",
            "Outputs stored (duplicates of a stored one not counted).",
            ["app"],
        ),
        spans=prom.Counter(
            "review_router_otlp_spans",
            "Spans taken by OTLP ingest: LLM spans (made outputs) and others (ignored).",
            ["kind"],
        ),
        reviews=prom.Counter(
            "review_router_reviews",
            "Verdicts recorded (first and blind second reviews).",
            ["queue", "verdict"],
        ),
        scoring=prom.Histogram(
            "review_router_scoring_latency_seconds",
            "Seconds from an output's arrival to its score.",
            buckets=SCORING_BUCKETS,
        ),
        job_failures=prom.Counter(
            "review_router_job_failures", "Worker jobs that raised (RQ retries them).", ["job"]
        ),
    )


def _enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def ingested(app: str, count: int = 1) -> None:
    if _enabled() and count:
        _metrics().ingested.labels(app=app).inc(count)


def spans(*, llm: int, ignored: int) -> None:
    if _enabled():
        counter = _metrics().spans
        counter.labels(kind="llm").inc(llm)
        counter.labels(kind="ignored").inc(ignored)


def reviewed(queue: str | None, verdict: str) -> None:
    if _enabled():
        _metrics().reviews.labels(queue=queue or "", verdict=verdict).inc()


def scored(latencies: Sequence[float]) -> None:
    if _enabled():
        histogram = _metrics().scoring
        for seconds in latencies:
            histogram.observe(max(0.0, seconds))


def job_failed(job: str) -> None:
    if _enabled():
        _metrics().job_failures.labels(job=job).inc()


def process_exited(pid: int | None = None) -> None:
    """Let the folder forget a finished process's live gauges (its counters keep counting)."""
    if _enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


@dataclass(frozen=True)
class Gauge:
    """One gauge family read at scrape time: its samples as (labels, value)."""

    name: str
    documentation: str
    samples: list[tuple[dict[str, str], float]]


def exposition(settings: Settings, state: Callable[[], Iterator[Gauge]]) -> tuple[bytes, str]:
    """The text a Prometheus server scrapes: every process's counters summed, plus ``state``'s gauges."""
    import prometheus_client as prom
    from prometheus_client import multiprocess
    from prometheus_client.core import GaugeMetricFamily

    class _State:
        def collect(self) -> Iterator[Any]:
            for gauge in state():
                names = sorted({k for labels, _ in gauge.samples for k in labels})
                family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=names)
                for labels, value in gauge.samples:
                    family.add_metric([labels.get(k, "") for k in names], value)
                yield family

    registry = prom.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(metrics_dir(settings)))
    registry.register(_State())  # type: ignore[arg-type]
    return prom.generate_latest(registry), prom.CONTENT_TYPE_LATEST
