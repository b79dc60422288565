"""Nothing hidden from an auditor: `sipas-bot export --all` holds every stored survey with its
counting decision, start method and review state, and the index recomputed from that file by
the rule in docs/reports.md equals the one `build_report` gives."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

import pytest
from flask import Flask

from bot.cli import cli
from bot.config import Settings
from bot.runtime import Runtime
from tests.conftest import FakeClock, make_settings
from tests.integrity_support import FIVE, Post, index, say, surveys

ONES = ("1", "1", "1", "1", "1")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        account_message_burst=1000,
        account_messages_per_minute=1000,
        account_starts_per_day=1000,
    )


@pytest.fixture
def stored(app: Flask, runtime: Runtime, signed_post: Post, clock: FakeClock) -> None:
    """Surveys of every kind the index must tell apart, all through signed webhooks."""
    say(signed_post, clock, "1", "#HVT01", "5", "4", "3", "2", "0", "xong")  # counted
    say(signed_post, clock, "2", "#HVT02", "4", "4", "5", "1", "2", "Cán bộ tốt")  # counted
    say(signed_post, clock, "2", "#HVT02", *ONES, "xong")  # a repeat
    # Partial and counted; the code opens a survey at HVT02 that never gets an answer.
    say(signed_post, clock, "3", "#HVT01", "1", "5", "3", "2", "4", "#HVT02")
    say(signed_post, clock, "4", "#HVT01", "3", "3", "#HVT02")  # never qualified; again
    say(signed_post, clock, "5", "#HVT01", *ONES, "Hủy")  # cancelled: withdrawn
    clock.advance(minutes=30)
    for n in range(7):  # a burst at HVT03: four counted, three held
        say(signed_post, clock, f"6{n}", "#HVT03", *(FIVE if n % 2 else ONES), "xong")
    held = [s.id for s in surveys(runtime) if s.quarantine == "held"]
    assert len(held) == 3
    result = app.test_cli_runner().invoke(cli, ["integrity", "release", str(held[0])])
    assert result.exit_code == 0, result.output
    result = app.test_cli_runner().invoke(cli, ["integrity", "reject", str(held[1])])
    assert result.exit_code == 0, result.output
    say(signed_post, clock, "7", "#HVT01", "5", "5")  # still open


def export_csv(app: Flask, tmp_path: Path, *args: str) -> list[dict[str, str]]:
    out = tmp_path / "export.csv"
    result = app.test_cli_runner().invoke(cli, ["export", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(out.read_text("utf-8"), newline="")))


def index_from_export(runtime: Runtime, rows: list[dict[str, str]]) -> tuple[float, int, int]:
    """The rule of docs/reports.md, applied to the exported rows alone: the rows with status
    completed or partial, counted = yes and quarantine none or released; per criterion
    (an item without a criterion stands as its factor's criterion) the share of 1–5 answers
    that are 4–5; per factor the mean of its criteria; overall the mean of the factors.
    Returns (overall share, valid answers, responses)."""
    tallies: dict[tuple[int, object], list[int]] = defaultdict(lambda: [0, 0])
    responses = 0
    with runtime.session_factory() as session:
        for row in rows:
            if not (
                row["status"] in ("completed", "partial")
                and row["counted"] == "yes"
                and row["quarantine"] in ("none", "released")
            ):
                continue
            responses += 1
            questionnaire_id, version = row["questionnaire"].split("@")
            questionnaire = runtime.flows.version(session, questionnaire_id, version)
            for item in questionnaire.items:
                value = row.get(item.id, "")
                if item.factor is None or value not in ("1", "2", "3", "4", "5"):
                    continue
                key = (item.factor, item.criterion if item.criterion is not None else item.id)
                tallies[key][0] += 1
                tallies[key][1] += int(value) >= 4
    by_factor: dict[int, list[float]] = defaultdict(list)
    for (factor, _criterion), (valid, satisfied) in tallies.items():
        by_factor[factor].append(100 * satisfied / valid)
    shares = [sum(s) / len(s) for s in by_factor.values()]
    return sum(shares) / len(shares), sum(v for v, _ in tallies.values()), responses


def test_export_all_holds_every_survey_with_its_decision(
    app: Flask, stored: None, runtime: Runtime, tmp_path: Path
) -> None:
    rows = export_csv(app, tmp_path, "--all")
    assert len(rows) == len(surveys(runtime)) == 16
    assert {r["status"] for r in rows} == {"completed", "partial", "cancelled", "active"}
    assert {r["quarantine"] for r in rows} == {"none", "held", "released", "rejected"}
    assert {r["quarantine_rule"] for r in rows} == {"", "new_account_burst"}
    assert {r["start_method"] for r in rows} == {"static"}
    assert sum(r["repeat"] == "yes" for r in rows) == 1
    # The default export keeps to the surveys an index may count; --status picks statuses.
    assert {r["status"] for r in export_csv(app, tmp_path)} == {"completed", "partial"}
    only = export_csv(app, tmp_path, "--status", "cancelled", "--status", "active")
    assert sorted(r["status"] for r in only) == ["active"] * 3 + ["cancelled"]


def test_the_index_is_reproduced_from_the_export(
    app: Flask, stored: None, runtime: Runtime, clock: FakeClock, tmp_path: Path
) -> None:
    report = index(runtime, clock)
    share, valid, responses = index_from_export(runtime, export_csv(app, tmp_path, "--all"))
    assert report.overall.share is not None
    assert round(share, 6) == round(report.overall.share, 6)
    assert (valid, responses) == (report.overall.valid, report.responses)
    assert report.held == 1  # the released one counts, the rejected one does not


def test_all_and_status_do_not_go_together(app: Flask) -> None:
    result = app.test_cli_runner().invoke(cli, ["export", "--all", "--status", "partial"])
    assert result.exit_code != 0
    assert "--all or --status" in str(result.exception)
