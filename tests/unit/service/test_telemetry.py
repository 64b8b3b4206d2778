"""The process's counters under concurrency: the first requests arrive on many threads at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# A fresh process, as a just-started API process is: nothing made yet, 32 request threads released
# together into their first count.
FIRST_REQUESTS = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from service import telemetry
    from service.settings import Settings

    telemetry.configure(Settings(data_dir=Path(sys.argv[1])), fresh=True)
    start = threading.Barrier(32)
    failures = []

    def request():
        start.wait()
        try:
            telemetry.ingested("support")
        except Exception as exc:
            failures.append(repr(exc))

    threads = [threading.Thread(target=request) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    print(failures)
    print(generate_latest(registry).decode())
    """
)


def test_the_first_requests_of_a_new_process_count_at_once_without_an_error(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", FIRST_REQUESTS, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    failures, exposition = done.stdout.split("\n", 1)
    assert failures == "[]"
    assert 'review_router_outputs_ingested_total{app="support"} 32.0' in exposition
