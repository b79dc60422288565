"""Which questionnaire a survey is asked with: SURVEY_FLOW (a shipped id or a path), the units
file's `questionnaire:` on a unit or a counter, and the versioning rule that keeps a stored
survey tied to the exact text it was asked with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from bot.config import ConfigError
from bot.conversation.registry import FlowRegistry
from bot.runtime import Runtime
from bot.units import read_units_file
from bot.web import create_app, runtime_of
from storage import migrate
from storage import repositories as repo
from storage.models import SurveyResponse
from tests.conftest import APP_ID, OA_SECRET, FakeClock, encode, make_settings, text_event
from zalo_client import SIGNATURE_HEADER, SignatureVerifier

WARD_FORM = """\
id: ward-form
version: "{version}"
languages: [vi, en]
title: {{vi: Mẫu của phường, en: The ward's form}}
items:
  - id: overall
    kind: scale
    factor: 3
    text:
      vi: "{question}"
      en: How satisfied are you overall?
  - include: ./field.yaml
"""
FIELD_BLOCK = """\
block: field
items:
  - id: field
    kind: choice
    optional: true
    text: {{vi: Lĩnh vực thủ tục, en: Field of the procedure}}
    options:
      - {{vi: Hộ tịch, en: Civil status}}
      - {{vi: {land}, en: Land}}
"""
UNITS = """\
units:
  - code: HVT
    name: UBND phường Hoàng Văn Thụ
    questionnaire: sipas-2022
    counters:
      - code: HVT01
        name: Quầy 1
      - code: HVT02
        name: Quầy 2
        questionnaire: {ward_form}
  - code: LQD
    name: UBND phường Lê Quý Đôn
    counters:
      - code: LQD01
        name: Quầy 1
"""


def write_ward_form(
    folder: Path, *, version: str = "1", question: str = "Ông/Bà hài lòng chứ?", land: str = "Đất"
) -> Path:
    (folder / "field.yaml").write_text(FIELD_BLOCK.format(land=land), "utf-8")
    path = folder / "ward-form.yaml"
    path.write_text(WARD_FORM.format(version=version, question=question), "utf-8")
    return path


def make_app(database_url: str, clock: FakeClock, tmp_path: Path, **settings: Any) -> Flask:
    app = create_app(make_settings(database_url, **settings), clock=clock)
    runtime = runtime_of(app)
    migrate.upgrade(runtime.engine)
    units = tmp_path / "units.yaml"
    units.write_text(UNITS.format(ward_form=tmp_path / "ward-form.yaml"), "utf-8")
    with runtime.session_factory.begin() as session:
        repo.upsert_units(session, read_units_file(units), now=clock())
    return app


def post(app: Flask, text: str, user_id: str = "246845883529197922") -> None:
    """A message signed the way Zalo signs it, to this app (there may be two on one database)."""
    event = text_event(text, user_id=user_id)
    body = encode(event)
    signature = SignatureVerifier(APP_ID, OA_SECRET).sign(body, event["timestamp"])
    response = app.test_client().post(
        "/zalo/webhook",
        data=body,
        headers={SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def stored(runtime: Runtime) -> list[tuple[str, str, str, dict[str, Any]]]:
    with runtime.session_factory() as session:
        return [
            (
                r.counter.code,
                f"{r.questionnaire_id}@{r.questionnaire_version}",
                r.status,
                {a.item_id: a.value for a in r.answers},
            )
            for r in session.scalars(select(SurveyResponse).order_by(SurveyResponse.id))
        ]


@pytest.fixture
def ward_app(database_url: str, clock: FakeClock, tmp_path: Path) -> Iterator[Flask]:
    write_ward_form(tmp_path)
    app = make_app(database_url, clock, tmp_path)
    yield app
    runtime_of(app).engine.dispose()


def test_a_counter_a_unit_and_the_default_each_pick_a_questionnaire(ward_app: Flask) -> None:
    for code, user in (("HVT01", "1001"), ("HVT02", "1002"), ("LQD01", "1003")):
        post(ward_app, f"#{code}", user_id=user)
    assert [(s[0], s[1]) for s in stored(runtime_of(ward_app))] == [
        ("HVT01", "sipas-2022@2026.1"),  # the unit's
        ("HVT02", "ward-form@1"),  # the counter's own file
        ("LQD01", "sipas-short@2026.1"),  # SURVEY_FLOW, by default sipas-short
    ]


@pytest.mark.parametrize("survey_flow", ["sipas-short-full", "path"])
def test_survey_flow_names_a_shipped_questionnaire_or_a_path(
    database_url: str, clock: FakeClock, tmp_path: Path, survey_flow: str
) -> None:
    path = write_ward_form(tmp_path)
    name = str(path) if survey_flow == "path" else survey_flow
    app = make_app(database_url, clock, tmp_path, survey_flow=name)
    post(app, "#LQD01")
    ((_, asked_with, _, _),) = stored(runtime_of(app))
    assert asked_with == ("ward-form@1" if survey_flow == "path" else "sipas-short-full@2026.1")
    runtime_of(app).engine.dispose()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "no shipped questionnaire has this id"),
        ("id: broken\nversion: '1'\nitems: []\n", "items: expected a list"),
        (
            "id: long\nversion: '1'\nlanguages: [vi]\ntitle: Dài\nitems:\n"
            + "".join(f"  - {{id: i{n}, kind: intro, text: '{'x' * 1400}'}}\n" for n in range(2))
            + "  - {id: a, kind: scale, factor: 1, text: Câu}\n",
            "over Zalo's 2000",
        ),
    ],
)
def test_the_server_refuses_to_start_with_an_unusable_default(
    database_url: str, tmp_path: Path, text: str | None, expected: str
) -> None:
    name = "no-such-form"
    if text is not None:
        name = str(tmp_path / "form.yaml")
        Path(name).write_text(text, "utf-8")
    with pytest.raises(ConfigError, match=expected) as caught:
        create_app(make_settings(database_url, survey_flow=name))
    assert "sipas-bot flows check" in str(caught.value)


def test_a_survey_in_progress_keeps_the_text_it_started_with(
    ward_app: Flask, database_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    post(ward_app, "#HVT02")
    first = runtime_of(ward_app)
    with first.session_factory() as session:
        kept = repo.questionnaire_text(session, "ward-form", "1")
    assert kept is not None and "--- # include: ./field.yaml" in kept

    # The operator edits the question and its block, bumps the version, restarts the server.
    write_ward_form(tmp_path, version="2", question="Câu hỏi đã sửa?", land="Đất đai")
    second = make_app(database_url, clock, tmp_path)
    post(second, "5")  # the open survey goes on with version 1
    post(second, "2")
    post(second, "#HVT02", user_id="1004")
    assert stored(runtime_of(second)) == [
        ("HVT02", "ward-form@1", "completed", {"overall": 5, "field": 2}),
        ("HVT02", "ward-form@2", "active", {}),
    ]
    runtime_of(second).engine.dispose()


@pytest.mark.parametrize("edit", ["question", "block"])
def test_an_edited_file_with_an_unchanged_version_is_refused(
    ward_app: Flask, clock: FakeClock, tmp_path: Path, edit: str
) -> None:
    runtime = runtime_of(ward_app)
    post(ward_app, "#HVT02")  # version 1 is now kept in the database
    if edit == "question":
        write_ward_form(tmp_path, question="Câu hỏi đã sửa?")
    else:
        write_ward_form(tmp_path, land="Đất đai")
    restarted = FlowRegistry("sipas-short")
    with runtime.session_factory() as session:
        counter = repo.find_counter(session, "HVT02")
        assert counter is not None
        with pytest.raises(ConfigError, match="give the edited file a new version"):
            restarted.for_counter(session, counter, now=clock())


def test_a_stored_version_is_read_back_without_its_files(ward_app: Flask, tmp_path: Path) -> None:
    runtime = runtime_of(ward_app)
    post(ward_app, "#HVT02")
    original = runtime.flows.named(str(tmp_path / "ward-form.yaml"))
    (tmp_path / "field.yaml").unlink()
    (tmp_path / "ward-form.yaml").unlink()
    with runtime.session_factory() as session:
        again = FlowRegistry("sipas-short").version(session, "ward-form", "1")
    assert again == original
    assert [item.id for item in again.items] == ["overall", "field"]
