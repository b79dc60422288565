"""One deployment serving two Official Accounts at once (issue 17): each webhook verified with
its own app's secret and routed by its OA, each citizen answered by their ward's OA (the fake
Zalo sees that OA's access token), each OA's tokens refreshed on their own, one OA's outage
not delaying the other, an unknown OA refused. The environment's OA (the example unit HVT)
keeps working beside them."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from bot.config import Settings
from bot.runtime import Runtime
from bot.units import read_units_source
from storage import repositories as repo
from storage.models import Conversation, OutboxMessage, OutboxStatus, Unit, ZaloToken
from survey_flow.sourcefile import FileProblems
from tests.cli_runner import run_cli
from tests.conftest import APP_ID, encode, make_settings, text_event
from tests.fake_zalo import FakeZalo, Fault
from zalo_client import SIGNATURE_HEADER, SignatureVerifier

OA_A, APP_A = "1000000000000000001", "2000000000000000001"
OA_B, APP_B = "1000000000000000002", "2000000000000000002"
SECRETS = {
    "A_APP_SECRET": "app-secret-a",
    "A_OA_SECRET_KEY": "oa-secret-key-a",
    "A_ACCESS_TOKEN": "access-a-0",
    "A_REFRESH_TOKEN": "refresh-a-0",
    "B_APP_SECRET": "app-secret-b",
    "B_OA_SECRET_KEY": "oa-secret-key-b",
    "B_ACCESS_TOKEN": "access-b-0",
    "B_REFRESH_TOKEN": "refresh-b-0",
}
CITIZEN = "246845883529197922"

UNITS = f"""
oas:
  - id: "{OA_A}"
    name: UBND phường A
    app_id: "{APP_A}"
    app_secret: env:A_APP_SECRET
    oa_secret_key: env:A_OA_SECRET_KEY
    access_token: env:A_ACCESS_TOKEN
    refresh_token: env:A_REFRESH_TOKEN
  - id: "{OA_B}"
    name: UBND phường B
    app_id: "{APP_B}"
    app_secret: env:B_APP_SECRET
    oa_secret_key: file:B_OA_SECRET_KEY
    access_token: env:B_ACCESS_TOKEN
    refresh_token: env:B_REFRESH_TOKEN
units:
  - code: WA
    oa: "{OA_A}"
    name: UBND phường A
    counters:
      - code: WA01
        name: Quầy 1 phường A
  - code: WB
    oa: "{OA_B}"
    name: UBND phường B
    counters:
      - code: WB01
        name: Quầy 1 phường B
"""


@pytest.fixture
def fake() -> Iterator[FakeZalo]:
    apps = {APP_A: SECRETS["A_APP_SECRET"], APP_B: SECRETS["B_APP_SECRET"]}
    with FakeZalo(apps={**apps, APP_ID: "test-app-secret"}) as zalo:
        yield zalo


@pytest.fixture
def secrets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A's secrets in the environment; B's OA secret key in the secrets file."""
    for name, value in SECRETS.items():
        if name != "B_OA_SECRET_KEY":
            monkeypatch.setenv(name, value)
    path = tmp_path / "secrets.env"
    path.write_text(f"B_OA_SECRET_KEY={SECRETS['B_OA_SECRET_KEY']}\n", "utf-8")
    return path


@pytest.fixture
def settings(database_url: str, fake: FakeZalo, secrets_file: Path) -> Settings:
    return make_settings(
        database_url,
        zalo_api_base=fake.url,
        zalo_oauth_base=fake.url,
        zalo_secrets_file=str(secrets_file),
    )


@pytest.fixture
def two_oas(app: Flask, tmp_path: Path) -> Runtime:
    """The app with the two OAs and their wards imported (as `units import` does)."""
    from bot.web import runtime_of

    runtime = runtime_of(app)
    path = tmp_path / "units.yaml"
    path.write_text(UNITS, "utf-8")
    source = read_units_source(path)
    with runtime.session_factory.begin() as session:
        repo.upsert_oas(session, source.oas, now=runtime.clock())
        repo.upsert_units(session, source.units, now=runtime.clock())
    runtime.accounts.forget()
    return runtime


def post_to(
    client: FlaskClient,
    event: dict[str, Any],
    *,
    app_id: str,
    secret: str,
    path: str = "/zalo/webhook",
) -> Any:
    body = encode(event)
    signature = SignatureVerifier(app_id, secret).sign(body, str(json.loads(body)["timestamp"]))
    return client.post(
        path,
        data=body,
        headers={SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
    )


def event_for(oa: str, app: str, text: str, *, user_id: str = CITIZEN) -> dict[str, Any]:
    event = text_event(text, user_id=user_id)
    event["app_id"], event["recipient"] = app, {"id": oa}
    return event


def post_a(client: FlaskClient, text: str, **kw: Any) -> Any:
    return post_to(
        client,
        event_for(OA_A, APP_A, text, **kw),
        app_id=APP_A,
        secret=SECRETS["A_OA_SECRET_KEY"],
    )


def post_b(client: FlaskClient, text: str, **kw: Any) -> Any:
    return post_to(
        client,
        event_for(OA_B, APP_B, text, **kw),
        app_id=APP_B,
        secret=SECRETS["B_OA_SECRET_KEY"],
    )


def test_each_citizen_is_answered_by_their_wards_oa_with_its_token(
    two_oas: Runtime, client: FlaskClient, fake: FakeZalo
) -> None:
    # The same Zalo user id on both OAs: two conversations, one per (OA, user).
    assert post_a(client, "#WA01").json["outcome"] == "handled"
    assert post_b(client, "#WB01").json["outcome"] == "handled"
    assert two_oas.sender().drain() >= 2
    sent = fake.by_token()
    assert set(sent) == {"access-a-0", "access-b-0"}
    assert "phường A" in json.dumps(sent["access-a-0"], ensure_ascii=False)
    assert "phường B" in json.dumps(sent["access-b-0"], ensure_ascii=False)
    assert "phường B" not in json.dumps(sent["access-a-0"], ensure_ascii=False)
    with two_oas.session_factory() as session:
        keys = set(session.execute(select(Conversation.oa_id, Conversation.user_id)).all())
        oas = {m.oa_id for m in session.scalars(select(OutboxMessage))}
    assert {(OA_A, CITIZEN), (OA_B, CITIZEN)} <= keys
    assert oas == {OA_A, OA_B}


def test_the_environments_oa_keeps_working_beside_the_units_files(
    two_oas: Runtime, signed_post: Callable[..., Any], fake: FakeZalo
) -> None:
    assert signed_post(text_event("#HVT01")).json["outcome"] == "handled"
    two_oas.sender().drain()
    assert set(fake.by_token()) == {"access-token-1"}  # the environment's seeded token


def test_a_body_signed_with_another_apps_secret_is_refused(
    two_oas: Runtime, client: FlaskClient
) -> None:
    # B's event signed with A's secret (claiming B's app), and A's with B's: both 401.
    wrong = post_to(
        client, event_for(OA_B, APP_B, "#WB01"), app_id=APP_B, secret=SECRETS["A_OA_SECRET_KEY"]
    )
    assert wrong.status_code == 401
    crossed = post_to(
        client, event_for(OA_A, APP_A, "#WA01"), app_id=APP_A, secret=SECRETS["B_OA_SECRET_KEY"]
    )
    assert crossed.status_code == 401
    with two_oas.session_factory() as session:
        assert session.scalar(select(Conversation).where(Conversation.oa_id != "")) is None


def test_an_unknown_oa_or_app_is_refused_with_one_escaped_line(
    two_oas: Runtime, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Signed by A's app, but for an OA the deployment does not serve.
    stranger = post_to(
        client,
        event_for("1000000000000000099", APP_A, "#WA01"),
        app_id=APP_A,
        secret=SECRETS["A_OA_SECRET_KEY"],
    )
    assert stranger.status_code == 403
    assert stranger.json == {"error": "unknown_oa"}
    lines = [r.getMessage() for r in caplog.records if "unknown_oa" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    # An app no OA is linked to: nothing can verify it.
    unknown_app = post_to(
        client,
        event_for(OA_A, "2000000000000000099", "#WA01"),
        app_id="2000000000000000099",
        secret="whatever",
    )
    assert unknown_app.status_code == 401


def test_the_per_app_webhook_url_takes_that_apps_events_only(
    two_oas: Runtime, client: FlaskClient
) -> None:
    good = post_to(
        client,
        event_for(OA_B, APP_B, "#WB01"),
        app_id=APP_B,
        secret=SECRETS["B_OA_SECRET_KEY"],
        path=f"/zalo/webhook/{APP_B}",
    )
    assert good.status_code == 200
    elsewhere = post_to(
        client,
        event_for(OA_A, APP_A, "#WA01"),
        app_id=APP_A,
        secret=SECRETS["A_OA_SECRET_KEY"],
        path=f"/zalo/webhook/{APP_B}",
    )
    assert elsewhere.status_code == 401


def test_a_counter_of_another_oas_unit_is_refused_politely(
    two_oas: Runtime, client: FlaskClient, fake: FakeZalo
) -> None:
    assert post_a(client, "#WB01").status_code == 200
    two_oas.sender().drain()
    (reply,) = fake.by_token()["access-a-0"]
    assert "Official Account" in reply["message"]["text"]
    with two_oas.session_factory() as session:
        assert repo.outbox_counts(session) == {"sent": 1}
        assert session.scalar(select(Unit).where(Unit.code == "WB")) is not None
        from storage.models import SurveyResponse

        assert session.scalar(select(SurveyResponse)) is None


def test_each_oas_tokens_refresh_on_their_own(
    two_oas: Runtime, client: FlaskClient, fake: FakeZalo
) -> None:
    assert two_oas.tokens is not None and two_oas.tokens.seed()  # the environment's pair
    post_a(client, "#WA01")
    post_b(client, "#WB01")
    two_oas.sender().drain()  # A's and B's pairs are seeded from their secrets
    a, b = two_oas.accounts.get(OA_A), two_oas.accounts.get(OA_B)
    assert a is not None and b is not None and a.tokens is not None and b.tokens is not None
    # A's token expires (Zalo answers -216 to it once): only A's pair is renewed, with A's app.
    fake.add_faults(Fault(error=-216, token="access-a-0"))
    post_a(client, "1")
    post_b(client, "1")
    two_oas.sender().drain()
    assert fake.refreshed_apps == [APP_A]
    with two_oas.session_factory() as session:
        pairs = {t.oa_id: t.access_token for t in session.scalars(select(ZaloToken))}
    assert pairs[OA_A].startswith(f"{APP_A}-access-")
    assert pairs[OA_B] == "access-b-0"
    assert pairs[""] == "access-token-1"  # the environment's OA: untouched
    # Each store refreshes when its own pair is due, with its own app's secret.
    b.tokens.refresh(force=True)
    assert fake.refreshed_apps == [APP_A, APP_B]
    with two_oas.session_factory() as session:
        row = session.scalar(select(ZaloToken).where(ZaloToken.oa_id == OA_B))
        assert row is not None and row.access_token.startswith(f"{APP_B}-access-")


def test_one_oas_outage_does_not_delay_the_others_citizens(
    two_oas: Runtime, client: FlaskClient, fake: FakeZalo
) -> None:
    # A's API answers -32 (rate limited) and then server errors; B's is fine.
    fake.add_faults(
        Fault(error=-32, token="access-a-0"), *[Fault(status=502, token="access-a-0")] * 20
    )
    for n in range(3):
        post_a(client, "#WA01", user_id=f"30000000000000000{n}")
        post_b(client, "#WB01", user_id=f"40000000000000000{n}")
    sender = two_oas.sender()
    sender.drain()
    sent = fake.by_token()
    b_users = {f"40000000000000000{n}" for n in range(3)}
    assert {m["recipient"]["user_id"] for m in sent["access-b-0"]} == b_users
    assert "access-a-0" not in sent  # A is paused or backing off
    with two_oas.session_factory() as session:
        pending = session.scalars(
            select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)
        ).all()
    assert pending and {m.oa_id for m in pending} == {OA_A}


def test_leasing_is_round_robin_over_the_oas(two_oas: Runtime) -> None:
    now = two_oas.clock()
    with two_oas.session_factory.begin() as session:
        for n in range(40):
            repo.enqueue_replies(session, f"5{n:017d}", [{"text": "a"}], now=now, oa=OA_A)
        repo.enqueue_replies(session, "600000000000000001", [{"text": "b"}], now=now, oa=OA_B)
    with two_oas.session_factory.begin() as session:
        leased = repo.claim_due_messages(
            session, now=now, lease_until=now + timedelta(hours=1), limit=4, fair=True
        )
        assert OA_B in {m.oa_id for m in leased}  # B's one message is not behind A's 40
        assert len(leased) == 4
    with two_oas.session_factory.begin() as session:
        paused = repo.claim_due_messages(
            session,
            now=now + timedelta(minutes=1),
            lease_until=now + timedelta(hours=2),
            limit=50,
            fair=True,
            skip_oas={OA_A},
        )
        assert paused == []  # B's was leased above; A's are skipped while paused


@pytest.mark.parametrize("limit", [1, 3, 16, 200])
def test_round_robin_leases_the_heads_a_ranking_of_every_pending_message_would(
    runtime: Runtime, limit: int
) -> None:
    """On PostgreSQL the claim reads each OA's first heads only (storage/repositories/
    outbox.py `_round_robin`): it must lease exactly what ranking every due head would,
    with users holding several messages, messages waiting for a retry and leased ones."""
    rng = random.Random(limit)
    now = runtime.clock()
    with runtime.session_factory.begin() as session:
        for n in range(120):
            oa = f"oa{rng.choice([0, 0, 0, 0, 1, 2, 3, 4])}"
            repo.enqueue_replies(
                session, f"7{n:017d}", [{"text": "x"}] * rng.choice([1, 1, 2, 3]), now=now, oa=oa
            )
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        for message in rng.sample(list(rows), 40):
            if rng.random() < 0.5:
                message.next_attempt_at = now + timedelta(minutes=5)  # waiting for a retry
            else:
                message.locked_until = now + timedelta(minutes=5)  # another sender's
    with runtime.session_factory() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        heads: dict[tuple[str, str], OutboxMessage] = {}
        for message in rows:
            heads.setdefault((message.oa_id, message.user_id), message)
        turns: dict[str, int] = {}
        ranked = []
        for message in heads.values():  # in id order
            if message.next_attempt_at <= now and message.locked_until is None:
                turns[message.oa_id] = turns.get(message.oa_id, 0) + 1
                ranked.append((turns[message.oa_id], message.id))
        expected = sorted(id_ for _turn, id_ in sorted(ranked)[:limit])
    with runtime.session_factory() as session:
        leased = repo.claim_due_messages(
            session, now=now, lease_until=now + timedelta(minutes=1), limit=limit, fair=True
        )
        assert [m.id for m in leased] == expected
        session.rollback()


def test_the_units_file_refuses_secret_values(tmp_path: Path) -> None:
    pasted = UNITS.replace("env:A_APP_SECRET", "Xk3d9Qm2Lp8Rt5Vw7Yz1Bc4Nf6Hj0Ks2Dg")
    path = tmp_path / "units.yaml"
    path.write_text(pasted, "utf-8")
    with pytest.raises(FileProblems) as problems:
        read_units_source(path)
    text = str(problems.value)
    assert "looks like a secret" in text and "never the secret itself" in text


def test_units_need_an_oa_when_the_file_names_several(tmp_path: Path) -> None:
    path = tmp_path / "units.yaml"
    path.write_text(UNITS.replace(f'    oa: "{OA_B}"\n', ""), "utf-8")
    with pytest.raises(FileProblems, match="say which OA it belongs to"):
        read_units_source(path)


def test_units_import_stores_the_oas_and_their_units(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "units.yaml"
    path.write_text(UNITS, "utf-8")
    env = {"DATABASE_URL": database_url}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    result = run_cli("units", "import", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert f"OA {OA_A}: created" in result.stdout and f"OA {OA_B}: created" in result.stdout
    # No secrets in this environment: imported, with a warning naming what to set.
    assert "the environment variable A_APP_SECRET is not set" in result.stderr
    again = run_cli("units", "import", str(path), env=env)
    assert "no change" in again.stdout


def test_healthz_reads_every_oas_token_pair_in_one_query_and_names_the_failing_oa(
    two_oas: Runtime, client: FlaskClient
) -> None:
    assert client.get("/healthz").get_json()["status"] == "ok"  # stores the pairs given
    with two_oas.session_factory.begin() as session:
        row = session.scalar(select(ZaloToken).where(ZaloToken.oa_id == OA_B))
        assert row is not None
        row.refresh_failed_at, row.refresh_error = two_oas.clock(), "invalid_grant"
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(two_oas.engine, "before_cursor_execute", record)
    try:
        health = client.get("/healthz").get_json()
    finally:
        event.remove(two_oas.engine, "before_cursor_execute", record)
    assert health["status"] == "degraded"
    assert health["problems"] == [f"Zalo token refresh failed for OA {OA_B}: invalid_grant"]
    assert len(two_oas.accounts.all()) == 3  # the environment's OA, A and B
    assert sum("zalo_tokens" in statement for statement in statements) == 1


def test_tokens_and_check_name_the_oa_that_needs_attention(
    tmp_path: Path, database_url: str, fake: FakeZalo, secrets_file: Path
) -> None:
    path = tmp_path / "units.yaml"
    path.write_text(UNITS, "utf-8")
    env = {
        "DATABASE_URL": database_url,
        "ZALO_API_BASE": fake.url,
        "ZALO_OAUTH_BASE": fake.url,
        "ZALO_SECRETS_FILE": str(secrets_file),
        "PRIVACY_PEPPER": "test-pepper-0123456789",
        "CONSOLE_SECRET_KEY": "test-console-secret-key-of-32-characters-or-more",
        **{k: v for k, v in SECRETS.items() if k != "B_OA_SECRET_KEY"},
    }
    assert run_cli("db", "upgrade", env=env).returncode == 0
    assert run_cli("units", "import", str(path), env=env).returncode == 0
    ambiguous = run_cli("tokens", "status", env=env)
    assert ambiguous.returncode != 0 and "--oa" in ambiguous.stderr
    assert run_cli("tokens", "refresh", "--oa", OA_A, env=env).returncode == 0
    assert fake.refreshed_apps == [APP_A]
    # B's app secret is wrong now: B's refresh fails, and `check` names B alone.
    broken = {**env, "B_APP_SECRET": "not-the-secret"}
    failed = run_cli("tokens", "refresh", "--oa", OA_B, env=broken)
    assert failed.returncode != 0
    status = run_cli("tokens", "status", "--oa", OA_B, env=broken)
    assert status.returncode == 1 and "LAST REFRESH FAILED" in status.stdout
    checked = run_cli("check", env=broken)
    assert checked.returncode == 1
    failing = [line for line in checked.stdout.splitlines() if line.startswith("FAIL")]
    assert failing == [f"FAIL  OA {OA_B} (UBND phường B): the last token refresh succeeded"]
    assert f"OK    OA {OA_A} (UBND phường A): no token refresh has failed" in checked.stdout


def test_an_app_at_its_rate_limit_is_not_leased_while_the_others_go_on(
    two_oas: Runtime,
) -> None:
    """An app whose minute is used up holds no sending thread: its messages are not leased
    (a thread would wait in its limiter), while the other app's are sent."""
    from bot.delivery.sender import RateLimiter, SendingLane

    def blocked(seconds: float) -> None:
        raise AssertionError("a sending thread waited on app A's limit")

    sent: list[tuple[str, str]] = []
    limiter_a = RateLimiter(1, monotonic=lambda: 0.0, sleep=blocked)  # one call a minute
    lanes = {
        OA_A: SendingLane(lambda u, b: sent.append((OA_A, u)) or "id", limiter_a, APP_A),
        OA_B: SendingLane(lambda u, b: sent.append((OA_B, u)) or "id", None, APP_B),
    }
    sender = two_oas.sender(lanes=lanes.get)
    now = two_oas.clock()

    def queue(user: str, oa: str) -> None:
        with two_oas.session_factory.begin() as session:
            repo.enqueue_replies(session, user, [{"text": "x"}], now=now, oa=oa)
            repo.lock_conversation(session, user, now=now, oa=oa)  # within the 7-day window

    queue("700000000000000001", OA_A)
    queue("800000000000000001", OA_B)
    sender.drain()
    queue("700000000000000002", OA_A)
    queue("800000000000000002", OA_B)
    sender.drain()
    assert sent.count((OA_B, "800000000000000002")) == 1
    assert (OA_A, "700000000000000002") not in sent
    with two_oas.session_factory() as session:
        waiting = session.scalars(
            select(OutboxMessage).where(OutboxMessage.user_id == "700000000000000002")
        ).one()
    assert waiting.status == OutboxStatus.PENDING and waiting.attempts == 0
    assert waiting.last_error is None


def test_the_landing_page_and_posters_name_the_units_own_oa(
    two_oas: Runtime, client: FlaskClient
) -> None:
    page = client.get("/q/WB01").get_data(as_text=True)
    assert f"https://zalo.me/{OA_B}" in page and f"https://zalo.me/{OA_A}" not in page
    home = client.get("/q/HVT01").get_data(as_text=True)
    assert "https://zalo.me/388613280878808645" in home  # the environment's OA
    with two_oas.session_factory() as session:
        ward_b = repo.find_unit(session, "WB")
        hvt = repo.find_unit(session, "HVT")
        assert ward_b is not None and hvt is not None
        assert two_oas.oa_shown(ward_b) == (OA_B, "UBND phường B")
        assert two_oas.oa_shown(hvt) == ("388613280878808645", "Dịch vụ công Phường Thử")


def test_a_message_outside_a_survey_is_the_case_of_the_ward_whose_oa_it_came_to(
    two_oas: Runtime, client: FlaskClient, fake: FakeZalo
) -> None:
    """A citizen who never took a survey writes to ward B's OA: the deployment has three
    units, but B's OA serves one, so the case is B's and its reply goes out through B's OA
    (it used to have no unit and to be answered through the environment's OA)."""
    from storage.models import Case

    text = "Thủ tục cấp giấy xác nhận cư trú phải chờ quá lâu, đề nghị phường xem lại."
    assert post_b(client, text, user_id="246845883529197999").json["outcome"] == "handled"
    with two_oas.session_factory() as session:
        case = session.scalars(select(Case)).one()
        assert case.unit is not None and case.unit.code == "WB"
        reference = case.reference
    with two_oas.session_factory.begin() as session:
        two_oas.cases.reply(
            session, reference, text="Phường đã bố trí thêm quầy.", author="op", now=two_oas.clock()
        )
    two_oas.sender().drain()
    sent = fake.by_token()
    assert set(sent) == {"access-b-0"}
    assert "bố trí thêm quầy" in json.dumps(sent["access-b-0"], ensure_ascii=False)


def test_a_case_with_no_unit_is_answered_in_the_chat_it_came_from(
    two_oas: Runtime, client: FlaskClient, fake: FakeZalo
) -> None:
    """A case that no unit could be told for (an OA serving several units, no survey) is
    answered through the OA the citizen wrote to, not the environment's."""
    from storage.models import CaseKind, CaseSource

    citizen = "246845883529197998"
    assert post_b(client, "#WB01", user_id=citizen).json["outcome"] == "handled"
    two_oas.sender().drain()
    with two_oas.session_factory.begin() as session:
        case = two_oas.cases.open(
            session,
            repo.NewCase(
                unit_id=None,
                counter_id=None,
                response_id=None,
                source=CaseSource.MESSAGE.value,
                kind=CaseKind.SUGGESTION.value,
                text="Đề nghị mở thêm quầy vào buổi sáng.",
                scores=None,
                respondent_hash=two_oas.pseudonyms.respondent_hash(citizen),
                language="vi",
                user_id=citizen,
            ),
            now=two_oas.clock(),
        )
        assert case is not None and case.unit is None
        reference = case.reference
    with two_oas.session_factory.begin() as session:
        two_oas.cases.reply(
            session, reference, text="Đã chuyển đề nghị.", author="op", now=two_oas.clock()
        )
    two_oas.sender().drain()
    carried = {
        token
        for token, bodies in fake.by_token().items()
        if "Đã chuyển đề nghị" in json.dumps(bodies, ensure_ascii=False)
    }
    assert carried == {"access-b-0"}
