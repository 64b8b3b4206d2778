"""`review-router import` against a running instance (uvicorn, PostgreSQL): OpenAI Batch output with
its input, a CSV with a column map, Langfuse and LangSmith exports; idempotent, with a summary that
names what was refused, and a clear refusal for a file it cannot read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from service.cli.main import main
from service.storage.db import engine_for, session_factory
from service.storage.tables import Output
from tests.conftest import Database, credentials_in
from tests.servers import LiveService


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def service(fresh_db: Database, settings_for, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveService]:  # type: ignore[no-untyped-def]
    live = LiveService(settings_for(fresh_db))
    live.start()
    key = credentials_in(session_factory(engine_for(live.settings)), "app")["Authorization"].split()[1]
    monkeypatch.setenv("RR_API_KEY", key)
    yield live
    live.stop()


def _stored(live: LiveService, app: str) -> dict[str, Output]:
    with session_factory(engine_for(live.settings))() as session:
        return {o.external_id or "": o for o in session.scalars(select(Output).where(Output.app == app))}


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _import(live: LiveService, *args: str) -> int:
    return main(["import", *args, "--url", live.url])


def test_an_openai_batch_is_imported_with_its_messages_and_log_probs_once(
    service: LiveService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    question = [{"role": "user", "content": "Capital of France?"}]
    inputs = _jsonl(
        tmp_path / "in.jsonl",
        [
            {
                "custom_id": f"req-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": question},
            }
            for i in range(3)
        ],
    )
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Paris."},
                "finish_reason": "stop",
                "logprobs": {"content": [{"token": "Paris", "logprob": -0.2, "top_logprobs": []}]},
            }
        ],
    }
    outputs = _jsonl(
        tmp_path / "out.jsonl",
        [
            {
                "id": "batch_req_0",
                "custom_id": "req-0",
                "response": {"status_code": 200, "body": completion},
                "error": None,
            },
            {
                "id": "batch_req_1",
                "custom_id": "req-1",
                "response": {"status_code": 200, "body": completion},
                "error": None,
            },
            {"id": "batch_req_2", "custom_id": "req-2", "response": None, "error": {"code": "rate_limited"}},
        ],
    )
    assert _import(service, str(outputs), "--input", str(inputs), "--app", "batchjob") == 1
    summary = capsys.readouterr().out
    assert "accepted 2, duplicate 0, rejected 1" in summary and "req-2: the batch request failed" in summary
    stored = _stored(service, "batchjob")
    assert set(stored) == {"req-0", "req-1"}
    assert stored["req-0"].messages == question and stored["req-0"].token_logprobs
    assert stored["req-0"].model == "gpt-4o-mini-2024-07-18"
    # importing again adds nothing
    _import(service, str(outputs), "--input", str(inputs), "--app", "batchjob")
    assert "accepted 0, duplicate 2, rejected 1" in capsys.readouterr().out


def test_a_csv_with_a_column_map_and_metadata(
    service: LiveService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "support.csv"
    table.write_text(
        "ticket,question,reply,tier\n"
        "T-1,Can I get a refund?,Yes within 90 days.,gold\n"
        "T-2,Where is my order?,It shipped yesterday.,silver\n"
        "T-3,,An answer to nothing,gold\n"
    )
    code = _import(
        service,
        str(table),
        "--map",
        "id=ticket",
        "--map",
        "response=reply",
        "--map",
        "metadata.tier=tier",
        "--app",
        "helpdesk",
    )
    assert code == 1
    assert "accepted 2, duplicate 0, rejected 1" in capsys.readouterr().out
    stored = _stored(service, "helpdesk")
    assert set(stored) == {"T-1", "T-2"}
    assert stored["T-1"].prompt == "Can I get a refund?" and stored["T-1"].meta == {"tier": "gold"}

    # without an id column, ids come from the content: a second import is all duplicates
    plain = tmp_path / "plain.jsonl"
    _jsonl(plain, [{"question": "2+2?", "answer": "4"}, {"question": "3+3?", "answer": "6"}])
    assert _import(service, str(plain), "--app", "maths") == 0
    assert _import(service, str(plain), "--app", "maths") == 0
    assert "accepted 0, duplicate 2, rejected 0" in capsys.readouterr().out.splitlines()[-1]


def test_a_file_with_the_wrong_columns_is_refused_with_what_it_has(
    service: LiveService, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit, match=r"no prompt or messages column among \['a', 'b'\]"):
        _import(service, str(wrong))
    with pytest.raises(SystemExit, match=r"no column \['answer_text'\]"):
        _import(service, str(wrong), "--map", "response=answer_text")
    assert _stored(service, "import") == {}


def test_langfuse_and_langsmith_exports(
    service: LiveService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    langfuse = _jsonl(
        tmp_path / "langfuse.jsonl",
        [
            {
                "id": "trace-1",
                "observations": [
                    {"id": "span-1", "type": "SPAN", "name": "retrieve"},
                    {
                        "id": "gen-1",
                        "type": "GENERATION",
                        "traceId": "trace-1",
                        "model": "gpt-4o",
                        "input": [{"role": "user", "content": "Who wrote Hamlet?"}],
                        "output": {"role": "assistant", "content": "Shakespeare."},
                    },
                ],
            }
        ],
    )
    assert _import(service, str(langfuse), "--app", "lf") == 0
    (generation,) = _stored(service, "lf").values()
    assert generation.external_id == "gen-1" and generation.response == "Shakespeare."
    langsmith = _jsonl(
        tmp_path / "langsmith.jsonl",
        [
            {"id": "run-0", "run_type": "chain", "inputs": {}, "outputs": {}},
            {
                "id": "run-1",
                "run_type": "llm",
                "trace_id": "t-1",
                "inputs": {
                    "messages": [
                        [
                            {
                                "lc": 1,
                                "type": "constructor",
                                "id": ["langchain", "schema", "messages", "HumanMessage"],
                                "kwargs": {"content": "Boiling point of water?"},
                            }
                        ]
                    ]
                },
                "outputs": {"generations": [[{"text": "100 °C at sea level."}]]},
                "extra": {"invocation_params": {"model": "gpt-4o-mini"}},
            },
        ],
    )
    assert _import(service, str(langsmith), "--app", "ls") == 0
    (run,) = _stored(service, "ls").values()
    assert run.messages == [{"role": "user", "content": "Boiling point of water?"}]
    assert (run.response, run.model, run.external_id) == ("100 °C at sea level.", "gpt-4o-mini", "run-1")
    assert "accepted 1" in capsys.readouterr().out
