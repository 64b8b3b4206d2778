"""The reviewer's workbench over the REST API: who may do what, claims with leases, skip, undo,
blind double review with agreement statistics, and adjudication. Real SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.domain import OutputIn
from service.settings import QueueConfig
from service.storage import queues as queues_repo
from service.storage import repository as repo
from service.storage import reviewing
from service.storage.db import session_factory, transaction
from service.storage.tables import Output, Pick, SignInFailure, utcnow
from tests.conftest import PASSWORD, Database, add_account, credentials, rolled_back_app

LEASE = timedelta(minutes=10)


def seed_items(session: Session, n: int, queue: str = "default") -> list[str]:
    """n scored outputs picked into a queue, highest score first in the returned order."""
    ids = []
    for i in range(n):
        row, _ = repo.ingest_output(
            session, output_in=OutputIn(prompt=f"question {i}", response=f"answer {i}", app="support")
        )
        score = 0.9 - i * 0.05
        session.execute(
            update(Output)
            .where(Output.id == row.id)
            .values(status="scored", score=score, signals={}, queue=queue)
        )
        assert queues_repo.add_pick(
            session,
            queue=queue,
            output_id=row.id,
            stratum="uncertain",
            reason=f"score {score:.2f}",
            score=score,
        )
        ids.append(row.id)
    session.flush()
    return ids


@pytest.fixture
def bench(db: Database, settings_for) -> Iterator[tuple[TestClient, list[str]]]:  # type: ignore[no-untyped-def]
    """A client with no credentials of its own, and five items waiting in the default queue."""
    settings = settings_for(db, qc_share=0.0, queues=[QueueConfig(name="default")])
    with rolled_back_app(db, settings) as app:
        with app.state.sessions() as session, session.begin():
            items = seed_items(session, 5)
        with TestClient(app) as client:
            yield client, items


def as_(client: TestClient, role: str, name: str | None = None) -> dict[str, str]:
    return credentials(client.app, role, name)  # type: ignore[arg-type]


def test_each_role_and_key_may_do_only_its_part(bench) -> None:  # type: ignore[no-untyped-def]
    client, items = bench
    app_key, viewer, reviewer, admin = (as_(client, r) for r in ("app", "viewer", "reviewer", "admin"))
    assert client.get("/v1/queues").status_code == 401
    assert client.get("/v1/queues").headers["www-authenticate"].startswith("Bearer")
    assert (
        client.post("/v1/outputs", json={"prompt": "q", "response": "a"}, headers=app_key).status_code == 202
    )
    # An application's key ingests, and cannot read reviews or act as a reviewer.
    for method, path in [
        ("GET", f"/v1/outputs/{items[0]}"),
        ("GET", "/v1/queues/default/items"),
        ("GET", "/v1/qc"),
    ]:
        r = client.request(method, path, headers=app_key)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = client.post("/v1/reviews", json={"output_id": items[0], "verdict": "pass"}, headers=app_key)
    assert r.status_code == 403
    # A viewer reads but records nothing.
    assert client.get(f"/v1/outputs/{items[0]}", headers=viewer).status_code == 200
    assert (
        client.post(
            "/v1/reviews", json={"output_id": items[0], "verdict": "pass"}, headers=viewer
        ).status_code
        == 403
    )
    assert client.post("/v1/queues/default/claims", headers=viewer).status_code == 403
    assert (
        client.post("/v1/outputs", json={"prompt": "q", "response": "a"}, headers=viewer).status_code == 403
    )
    # Reviewers review; only admins manage accounts and keys.
    assert (
        client.post(
            "/v1/reviews", json={"output_id": items[0], "verdict": "pass"}, headers=reviewer
        ).status_code
        == 201
    )
    assert client.get("/v1/users", headers=reviewer).status_code == 403
    assert client.post("/v1/api-keys", json={"name": "x"}, headers=reviewer).status_code == 403
    assert client.get("/v1/users", headers=admin).status_code == 200
    assert client.get("/v1/me", headers=viewer).json()["permissions"] == ["read"]


def test_signing_in_issues_a_token_and_signing_out_ends_it(bench) -> None:  # type: ignore[no-untyped-def]
    client, _ = bench
    with client.app.state.sessions() as session, session.begin():  # type: ignore[attr-defined]
        add_account(session, "rita", "reviewer")
    wrong = client.post("/v1/sessions", json={"username": "rita", "password": "nope-nope"})
    nobody = client.post("/v1/sessions", json={"username": "nobody", "password": PASSWORD})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["error"]["message"] == nobody.json()["error"]["message"]
    signed = client.post("/v1/sessions", json={"username": "rita", "password": PASSWORD})
    assert signed.status_code == 201 and signed.json()["user"]["role"] == "reviewer"
    headers = {"Authorization": f"Bearer {signed.json()['token']}"}
    assert client.get("/v1/me", headers=headers).json()["name"] == "rita"
    assert client.delete("/v1/sessions/current", headers=headers).status_code == 204
    assert client.get("/v1/me", headers=headers).status_code == 401


def test_repeated_wrong_passwords_pause_the_account(bench) -> None:  # type: ignore[no-untyped-def]
    client, _ = bench
    with client.app.state.sessions() as session, session.begin():  # type: ignore[attr-defined]
        add_account(session, "lena", "reviewer")
    wrong = {"username": "lena", "password": "guess-guess"}
    for _ in range(5):
        assert client.post("/v1/sessions", json=wrong).status_code == 401
    paused = client.post("/v1/sessions", json={"username": "lena", "password": PASSWORD})
    assert paused.status_code == 429 and paused.json()["error"]["details"]["retry_after"] <= 31
    assert 1 <= int(paused.headers["Retry-After"]) <= 31
    # A name no account has is answered exactly the same way: answers don't tell which names exist.
    ghost = {"username": "nobody-here", "password": "guess-guess"}
    assert [client.post("/v1/sessions", json=ghost).status_code for _ in range(6)] == [401] * 5 + [429]
    with client.app.state.sessions() as session, session.begin():  # type: ignore[attr-defined]
        session.execute(
            update(SignInFailure).where(SignInFailure.username == "lena").values(locked_until=utcnow())
        )
    assert client.post("/v1/sessions", json={"username": "lena", "password": PASSWORD}).status_code == 201
    # Success starts the count again: one more wrong password does not pause the account.
    assert client.post("/v1/sessions", json=wrong).status_code == 401
    assert client.post("/v1/sessions", json={"username": "lena", "password": PASSWORD}).status_code == 201


def test_api_keys_are_shown_once_stored_hashed_and_revocable(bench) -> None:  # type: ignore[no-untyped-def]
    client, _ = bench
    admin = as_(client, "admin")
    created = client.post("/v1/api-keys", json={"name": "support-bot"}, headers=admin).json()
    key = created["key"]
    assert key.startswith("rrk_") and created["prefix"] == key[:10]
    assert all("key" not in k for k in client.get("/v1/api-keys", headers=admin).json())
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        from service.storage.tables import ApiKey

        stored = session.get(ApiKey, created["id"])
        assert stored is not None and key not in stored.key_hash and len(stored.key_hash) == 64
    bot = {"Authorization": f"Bearer {key}"}
    assert client.post("/v1/outputs", json={"prompt": "q", "response": "a"}, headers=bot).status_code == 202
    assert client.delete(f"/v1/api-keys/{created['id']}", headers=admin).json()["revoked_at"]
    assert client.post("/v1/outputs", json={"prompt": "q", "response": "b"}, headers=bot).status_code == 401


def test_cookie_sessions_need_the_csrf_token_on_every_change(bench) -> None:  # type: ignore[no-untyped-def]
    client, items = bench
    with client.app.state.sessions() as session, session.begin():  # type: ignore[attr-defined]
        add_account(session, "cora", "reviewer")
    page = client.get("/ui/login")
    token = page.text.split('name="login_csrf" value="')[1].split('"')[0]
    forged = client.post("/ui/login", data={"username": "cora", "password": PASSWORD, "login_csrf": "x"})
    assert forged.status_code == 403
    signed = client.post(
        "/ui/login",
        data={"username": "cora", "password": PASSWORD, "login_csrf": token},
        follow_redirects=False,
    )
    assert signed.status_code == 303 and client.cookies.get("rr_session")
    item = client.get(f"/ui/outputs/{items[0]}")
    csrf = item.text.split('name="csrf_token" value="')[1].split('"')[0]
    no_token = client.post(f"/ui/outputs/{items[0]}/review", data={"verdict": "pass"}, follow_redirects=False)
    assert no_token.status_code == 403 and no_token.json()["error"]["code"] == "csrf_failed"
    assert client.post("/v1/reviews", json={"output_id": items[0], "verdict": "pass"}).status_code == 403
    ok = client.post(
        f"/ui/outputs/{items[0]}/review", data={"verdict": "pass", "csrf_token": csrf}, follow_redirects=False
    )
    assert ok.status_code == 303
    via_header = client.post(
        "/v1/reviews", json={"output_id": items[1], "verdict": "pass"}, headers={"X-CSRF-Token": csrf}
    )
    assert via_header.status_code == 201 and via_header.json()["reviewer"] == "cora"


def test_a_claimed_item_is_not_given_to_another_reviewer_until_its_lease_runs_out(bench) -> None:  # type: ignore[no-untyped-def]
    client, items = bench
    ann, bob = as_(client, "reviewer", "ann"), as_(client, "reviewer", "bob")
    first = client.post("/v1/queues/default/claims", headers=ann).json()
    assert first["item"]["output_id"] == items[0] and first["mode"] == "review"
    # Asking again gives ann the item she already holds; bob gets the next one.
    assert client.post("/v1/queues/default/claims", headers=ann).json()["item"]["output_id"] == items[0]
    assert client.post("/v1/queues/default/claims", headers=bob).json()["item"]["output_id"] == items[1]
    taken = client.post("/v1/reviews", json={"output_id": items[0], "verdict": "fail"}, headers=bob)
    assert taken.status_code == 409 and taken.json()["error"]["details"]["holder"] == "ann"
    assert client.post(f"/v1/outputs/{items[0]}/claim", headers=bob).status_code == 409
    with client.app.state.sessions() as session, session.begin():  # type: ignore[attr-defined]
        session.execute(
            update(Pick)
            .where(Pick.output_id == items[0])
            .values(claimed_until=utcnow() - timedelta(seconds=1))
        )
    reclaimed = client.post(f"/v1/outputs/{items[0]}/claim", headers=bob)
    assert reclaimed.status_code == 200 and reclaimed.json()["mode"] == "review"
    assert (
        client.post("/v1/reviews", json={"output_id": items[0], "verdict": "pass"}, headers=ann).status_code
        == 409
    )
    assert (
        client.post("/v1/reviews", json={"output_id": items[0], "verdict": "pass"}, headers=bob).status_code
        == 201
    )


def test_opening_an_item_to_look_claims_nothing(bench) -> None:  # type: ignore[no-untyped-def]
    client, items = bench
    cora, bob = as_(client, "reviewer", "cora"), as_(client, "reviewer", "bob")
    page = client.get(f"/ui/outputs/{items[0]}", headers=cora)
    assert page.status_code == 200 and 'data-testid="free"' in page.text and 'id="verdict"' in page.text
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        assert session.scalars(select(Pick.claimed_by).where(Pick.output_id == items[0])).one() is None
    # another reviewer may still claim it, as cora only looked; now she is told who holds it
    assert client.post(f"/v1/outputs/{items[0]}/claim", headers=bob).status_code == 200
    taken = client.get(f"/ui/outputs/{items[0]}", headers=cora)
    assert 'data-testid="taken"' in taken.text and 'id="verdict"' not in taken.text


def test_a_verdict_on_an_output_no_queue_picked_counts_outside_every_queue(bench) -> None:  # type: ignore[no-untyped-def]
    client, _ = bench
    with client.app.state.sessions() as session, session.begin():  # type: ignore[attr-defined]
        row, _ = repo.ingest_output(session, output_in=OutputIn(prompt="q", response="a", app="support"))
        session.execute(update(Output).where(Output.id == row.id).values(status="scored", score=0.1))
        loose = row.id
    curator = as_(client, "reviewer", "ann")
    judged = client.post("/v1/reviews", json={"output_id": loose, "verdict": "fail"}, headers=curator)
    assert judged.status_code == 201 and judged.json()["queue"] is None
    again = client.post("/v1/reviews", json={"output_id": loose, "verdict": "pass"}, headers=curator)
    assert again.status_code == 409 and "already has its verdict" in again.json()["error"]["message"]


def test_a_stale_pick_stays_while_a_reviewer_holds_it(bench) -> None:  # type: ignore[no-untyped-def]
    client, items = bench
    ann = as_(client, "reviewer", "ann")
    assert client.post(f"/v1/outputs/{items[2]}/claim", headers=ann).status_code == 200
    later = utcnow() + timedelta(seconds=1)
    with client.app.state.sessions() as session, session.begin():  # type: ignore[attr-defined]
        released = queues_repo.release_stale_picks(
            session, queue="default", picked_before=later, now=utcnow()
        )
    assert released == 4
    waiting = client.get("/v1/queues/default/items", headers=ann).json()["items"]
    assert [i["output_id"] for i in waiting] == [items[2]]


def test_a_skipped_item_goes_to_others_and_not_back_to_the_skipper(bench) -> None:  # type: ignore[no-untyped-def]
    client, items = bench
    ann, bob = as_(client, "reviewer", "ann"), as_(client, "reviewer", "bob")
    assert client.post("/v1/queues/default/claims", headers=ann).json()["item"]["output_id"] == items[0]
    assert client.post(f"/v1/outputs/{items[0]}/skip", headers=ann).status_code == 204
    assert client.post("/v1/queues/default/claims", headers=ann).json()["item"]["output_id"] == items[1]
    assert client.post("/v1/queues/default/claims", headers=bob).json()["item"]["output_id"] == items[0]


def test_undo_returns_the_item_to_its_reviewer_and_the_queue(bench) -> None:  # type: ignore[no-untyped-def]
    client, items = bench
    ann = as_(client, "reviewer", "ann")
    assert client.post("/v1/reviews/undo", headers=ann).status_code == 404
    client.post("/v1/queues/default/claims", headers=ann)
    client.post(
        "/v1/reviews", json={"output_id": items[0], "verdict": "fail", "categories": ["unsafe"]}, headers=ann
    )
    waiting = client.get("/v1/queues/default/items", headers=ann).json()
    assert items[0] not in [i["output_id"] for i in waiting["items"]]
    undone = client.post("/v1/reviews/undo", headers=ann).json()
    assert undone["output_id"] == items[0] and undone["verdict"] == "fail"
    detail = client.get(f"/v1/outputs/{items[0]}", headers=ann).json()
    assert detail["status"] == "queued" and detail["reviews"] == [] and not detail["pick"]["reviewed"]
    assert client.post("/v1/queues/default/claims", headers=ann).json()["item"]["output_id"] == items[0]


def test_categories_come_from_the_taxonomy_and_only_with_a_fail(bench) -> None:  # type: ignore[no-untyped-def]
    client, items = bench
    ann = as_(client, "reviewer", "ann")
    unknown = client.post(
        "/v1/reviews", json={"output_id": items[0], "verdict": "fail", "categories": ["rude"]}, headers=ann
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["details"]["unknown"] == ["rude"]
    on_pass = client.post(
        "/v1/reviews", json={"output_id": items[0], "verdict": "pass", "categories": ["unsafe"]}, headers=ann
    )
    assert on_pass.status_code == 422
    ok = client.post(
        "/v1/reviews", json={"output_id": items[0], "verdict": "fail", "categories": ["Unsafe"]}, headers=ann
    )
    assert ok.status_code == 201 and ok.json()["categories"] == ["unsafe"]
    again = client.post("/v1/reviews", json={"output_id": items[0], "verdict": "pass"}, headers=ann)
    assert again.status_code == 409


def test_double_review_is_blind_measures_agreement_and_disputes_go_to_an_admin(
    db: Database, settings_for
) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(db, qc_share=1.0)
    with rolled_back_app(db, settings) as app:
        with app.state.sessions() as session, session.begin():
            items = seed_items(session, 3)
        with TestClient(app) as client:
            ann, bob, boss = (
                credentials(app, "reviewer", "ann"),
                credentials(app, "reviewer", "bob"),
                credentials(app, "admin", "boss"),
            )
            verdicts = {items[0]: ("fail", "fail"), items[1]: ("pass", "pass"), items[2]: ("fail", "pass")}
            for output_id, (first, _) in verdicts.items():
                body = {
                    "output_id": output_id,
                    "verdict": first,
                    "categories": ["unsafe"] if first == "fail" else [],
                }
                assert client.post("/v1/reviews", json=body, headers=ann).status_code == 201
            # ann never gets her own items back for the second review; bob gets them, blind.
            assert client.post("/v1/queues/default/claims", headers=ann).status_code == 204
            for _ in items:
                claim = client.post("/v1/queues/default/claims", headers=bob).json()
                assert claim["mode"] == "second_review"
                output_id = claim["item"]["output_id"]
                page = client.get(f"/ui/outputs/{output_id}", headers=bob)
                assert "Second review" in page.text and "by ann" not in page.text
                hidden = client.get(f"/v1/outputs/{output_id}", headers=bob).json()
                assert hidden["reviews"] == [] and hidden["reviews_hidden"]
                assert len(client.get(f"/v1/outputs/{output_id}", headers=ann).json()["reviews"]) == 1
                second = verdicts[output_id][1]
                body = {
                    "output_id": output_id,
                    "verdict": second,
                    "categories": ["unsafe"] if second == "fail" else [],
                }
                assert client.post("/v1/reviews", json=body, headers=bob).json()["kind"] == "qc"
            report = client.get("/v1/qc", headers=ann).json()
            assert report["overall"]["items"] == 3 and report["overall"]["agreed"] == 2
            assert report["pairs"][0]["reviewers"] == ["ann", "bob"]
            assert report["pairs"][0]["kappa"] == pytest.approx(0.4)  # p_o 2/3, p_e 5/9
            unsafe = next(c for c in report["categories"] if c["category"] == "unsafe")
            assert unsafe["agreed"] == 2 and report["disputed"] == 1
            [dispute] = client.get("/v1/adjudications", headers=boss).json()
            assert dispute["output_id"] == items[2] and {r["reviewer"] for r in dispute["reviews"]} == {
                "ann",
                "bob",
            }
            assert (
                client.post(
                    f"/v1/adjudications/{items[2]}", json={"verdict": "pass"}, headers=ann
                ).status_code
                == 403
            )
            ruled = client.post(f"/v1/adjudications/{items[2]}", json={"verdict": "pass"}, headers=boss)
            assert ruled.status_code == 201 and ruled.json()["kind"] == "adjudication"
            assert client.get("/v1/adjudications", headers=boss).json() == []
            with app.state.sessions() as session:
                verdict_of = {o: v for o, _, v in session.execute(repo.latest_verdicts().select())}
            # The adjudication is the verdict; blind second reviews never are.
            assert verdict_of == {items[0]: "fail", items[1]: "pass", items[2]: "pass"}


@pytest.mark.parametrize("reviewers", [6])
def test_concurrent_reviewers_never_claim_the_same_item(fresh_db: Database, reviewers: int) -> None:
    sessions = session_factory(fresh_db.engine)
    with transaction(fresh_db.engine) as session:
        seed_items(session, 12)
        users = [add_account(session, f"r{i}", "reviewer").id for i in range(reviewers)]
    got: dict[str, list[str]] = {u: [] for u in users}
    barrier = threading.Barrier(reviewers)

    def work(user_id: str) -> None:
        barrier.wait()
        for _ in range(2):
            with sessions() as session, session.begin():
                pick = reviewing.claim_next(
                    session, queue="default", user_id=user_id, now=utcnow(), lease=LEASE, after=None
                )
                assert pick is not None
                got[user_id].append(pick.output_id)
                # Leave it (release) so the next claim must be a different item for someone else.
            with sessions() as session, session.begin():
                session.execute(
                    update(Pick).where(Pick.output_id == pick.output_id).values(reviewed_at=utcnow())
                )

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    claimed = [i for ids in got.values() for i in ids]
    assert len(claimed) == 2 * reviewers and len(set(claimed)) == len(claimed)


def test_the_audit_takes_its_share_of_the_claims_in_its_own_random_order(db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(db, qc_share=0.0, queues=[QueueConfig(name="default", audit_share=0.25)])
    with rolled_back_app(db, settings) as app:
        with app.state.sessions() as session, session.begin():
            routed = seed_items(session, 6)
            audit = []
            for key, score in ((0.2, 0.99), (0.9, 0.01), (0.5, 0.5)):  # random keys, any scores
                row, _ = repo.ingest_output(
                    session, output_in=OutputIn(prompt=f"audit {key}", response="a", app="support")
                )
                session.execute(
                    update(Output)
                    .where(Output.id == row.id)
                    .values(status="scored", score=score, queue="default")
                )
                assert queues_repo.add_pick(
                    session,
                    queue="default",
                    output_id=row.id,
                    stratum="audit",
                    reason="audit",
                    score=score,
                    inclusion_probability=0.1,
                    queue_rank=key,
                )
                audit.append(row.id)
        with TestClient(app) as client:
            reviewer = as_(client, "reviewer")
            order = []
            for _ in range(9):
                claim = client.post("/v1/queues/default/claims", headers=reviewer).json()["item"]["output_id"]
                order.append(claim)
                review = {"output_id": claim, "verdict": "pass"}
                assert client.post("/v1/reviews", json=review, headers=reviewer).status_code == 201
    # every 4th claim is an audit pick, highest key first whatever its score; routed by score between
    assert order == [*routed[:3], audit[1], *routed[3:6], audit[2], audit[0]]


def test_filters_narrow_the_queue_and_the_claims(bench) -> None:  # type: ignore[no-untyped-def]
    client, items = bench
    with client.app.state.sessions() as session, session.begin():  # type: ignore[attr-defined]
        session.execute(
            update(Output).where(Output.id == items[1]).values(app="billing", meta={"tier": "gold"})
        )
        session.execute(update(Output).where(Output.id == items[2]).values(model="m-2", external_id="T-4711"))
        session.execute(
            update(Output).where(Output.id == items[3]).values(response="The Eiffel Tower stands in Paris.")
        )
    ann, bob = as_(client, "reviewer", "ann"), as_(client, "reviewer", "bob")

    def listed(query: str) -> list[str]:
        answer = client.get(f"/v1/queues/default/items?{query}", headers=ann)
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"] == len(answer.json()["items"])
        return [i["output_id"] for i in answer.json()["items"]]

    assert listed("app=billing") == [items[1]]
    assert listed("metadata=tier%3Dgold") == [items[1]]
    assert listed("metadata=tier%3Dsilver") == []
    assert listed("model=m-2") == listed("q=T-4711") == [items[2]]
    assert listed("q=eiffel") == [items[3]]  # words, whatever their case
    assert listed("min_score=0.82") == items[:2]
    assert listed("max_score=0.72") == [items[4]]
    assert listed("stratum=audit") == []
    assert len(listed("")) == 5
    bad = client.get("/v1/queues/default/items?metadata=tier", headers=ann)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_failed"

    # claiming with a filter gives only what it keeps
    claimed = client.post("/v1/queues/default/claims?app=billing", headers=ann)
    assert claimed.json()["item"]["output_id"] == items[1]
    assert client.post("/v1/queues/default/claims?app=billing", headers=bob).status_code == 204
    assert client.post("/v1/queues/default/claims", headers=bob).json()["item"]["output_id"] == items[0]


def test_a_score_bound_that_is_not_a_score_is_refused(bench) -> None:  # type: ignore[no-untyped-def]
    client, _ = bench
    viewer = as_(client, "viewer")
    for bad in ("1.5", "high", "nan"):
        refused = client.get(f"/v1/queues/default/items?min_score={bad}", headers=viewer)
        assert refused.status_code == 422 and "min_score" in refused.json()["error"]["message"]
    # an empty box of the filter form is no bound at all
    assert client.get("/v1/queues/default/items?min_score=&max_score=", headers=viewer).json()["total"] == 5
