"""The units file and `sipas-bot units import`: all or nothing, errors that name the line,
and a re-import that changes only what changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import func, select

from bot.cli import cli
from bot.runtime import Runtime
from bot.units import read_units_file
from bot.web import create_app, runtime_of
from storage import migrate
from storage.models import Counter, Unit
from survey_flow.sourcefile import FileProblems
from tests.cli_runner import run_cli
from tests.conftest import EXAMPLE_UNITS, FakeClock, make_settings

VALID = """\
units:
  - code: HVT
    name: UBND phường Hoàng Văn Thụ
    counters:
      - code: HVT01
        name: Quầy 1 – Tư pháp, hộ tịch
      - code: HVT02
        name: Quầy 2 – Địa chính, xây dựng
"""

# Each malformed file has a valid unit first, so "nothing imported" means all or nothing,
# and marks the line the error must name with `# <-`.
MALFORMED = {
    "yaml syntax error": """\
units:
  - code: HVT
    name: UBND phường Hoàng Văn Thụ
    counters:
      - code: HVT01
        name: Quầy 1: Tư pháp: hộ tịch  # <-
""",
    "missing counter name": """\
units:
  - code: HVT
    name: UBND phường Hoàng Văn Thụ
    counters:
      - code: HVT01
        name: Quầy 1
  - code: LQD
    name: UBND phường Lê Quý Đôn
    counters:
      - code: LQD01
        name: Quầy 1
      - code: LQD02  # <-
      - code: LQD03
        name: Quầy 3
""",
    "duplicate counter code": """\
units:
  - code: HVT
    name: UBND phường Hoàng Văn Thụ
    counters:
      - code: HVT01
        name: Quầy 1
  - code: LQD
    name: UBND phường Lê Quý Đôn
    counters:
      - code: hvt01  # <-
        name: Quầy 1
""",
    "bad code characters": """\
units:
  - code: HVT
    name: UBND phường Hoàng Văn Thụ
    counters:
      - code: HVT01
        name: Quầy 1
      - code: HVT 02/B  # <-
        name: Quầy 2
""",
    "bad opening hours": """\
units:
  - code: HVT
    name: UBND phường Hoàng Văn Thụ
    opening_hours: "mon-fry 07:30-17:00"  # <-
    counters:
      - code: HVT01
        name: Quầy 1
""",
    "units not a list": """\
units:  # <-
  code: HVT
  name: UBND phường Hoàng Văn Thụ
""",
}


def marked_line(text: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if "# <-" in line)


def write(tmp_path: Path, text: str, name: str = "units.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


@pytest.fixture
def empty_app(database_url: str, clock: FakeClock) -> Iterator[Flask]:
    """An app on a migrated database with no units yet."""
    app = create_app(make_settings(database_url), clock=clock)
    migrate.upgrade(runtime_of(app).engine)
    yield app
    runtime_of(app).engine.dispose()


def import_units(app: Flask, path: Path) -> Result:
    return app.test_cli_runner().invoke(cli, ["units", "import", str(path)])


def counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.session_factory() as session:
        units = session.scalar(select(func.count()).select_from(Unit)) or 0
        counters = session.scalar(select(func.count()).select_from(Counter)) or 0
    return units, counters


def snapshot(runtime: Runtime) -> dict[str, tuple[str, object, object]]:
    """Every unit and counter by code: name, created_at, updated_at."""
    with runtime.session_factory() as session:
        rows: dict[str, tuple[str, object, object]] = {}
        for model in (Unit, Counter):
            for row in session.scalars(select(model)):
                rows[row.code] = (row.name, row.created_at, row.updated_at)
    return rows


# --- reading the file ---------------------------------------------------------------------------


def test_the_example_file_reads_as_one_unit_with_three_counters() -> None:
    (unit,) = read_units_file(EXAMPLE_UNITS)
    assert unit.code == "HVT"
    assert unit.name == "UBND phường Hoàng Văn Thụ"
    assert [c.code for c in unit.counters] == ["HVT01", "HVT02", "HVT03"]
    assert unit.counters[0].name == "Quầy 1 – Tư pháp, hộ tịch"


def test_codes_are_read_in_upper_case(tmp_path: Path) -> None:
    (unit,) = read_units_file(write(tmp_path, VALID.replace("HVT01", "hvt01")))
    assert unit.counters[0].code == "HVT01"


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_file_names_the_line_of_the_problem(tmp_path: Path, case: str) -> None:
    text = MALFORMED[case]
    path = write(tmp_path, text)
    with pytest.raises(FileProblems) as caught:
        read_units_file(path)
    assert [p.line for p in caught.value.problems] == [marked_line(text)]
    assert str(caught.value.problems[0]).startswith(f"{path}:{marked_line(text)}: ")


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
units:
  - code: HVT
    name: UBND phường Hoàng Văn Thụ
    counters:
      - code: HVT 01
        name: Quầy 1
      - code: HVT02
      - code: HVT03
        name: Quầy 3
"""
    with pytest.raises(FileProblems) as caught:
        read_units_file(write(tmp_path, text))
    assert [p.line for p in caught.value.problems] == [5, 7]


def test_a_file_that_is_not_utf8_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "units.yaml"
    path.write_bytes(VALID.encode("cp1258", errors="replace"))
    with pytest.raises(FileProblems) as caught:
        read_units_file(path)
    assert "UTF-8" in str(caught.value)


def test_units_not_a_list_names_the_line_of_units_after_comments(tmp_path: Path) -> None:
    text = "# Units of the ward\n# edited by hand\n" + MALFORMED["units not a list"]
    with pytest.raises(FileProblems) as caught:
        read_units_file(write(tmp_path, text))
    assert [p.line for p in caught.value.problems] == [marked_line(text)]


def test_a_numeric_looking_code_keeps_the_digits_written(tmp_path: Path) -> None:
    text = VALID.replace("code: HVT02", "code: 0012")
    try:
        (unit,) = read_units_file(write(tmp_path, text))
    except FileProblems:
        return  # refusing the code (ask for quotes) is a fix as good as keeping it
    assert unit.counters[1].code == "0012"


# --- sipas-bot units import ---------------------------------------------------------------------


def test_importing_the_example_creates_one_unit_three_counters_and_two_officers(
    empty_app: Flask, clock: FakeClock
) -> None:
    result = import_units(empty_app, EXAMPLE_UNITS)
    assert result.exit_code == 0, result.output
    assert "1 unit(s), 3 counter(s); 6 change(s)" in result.stdout
    assert "officer HVT/CB01: created\nofficer HVT/CB02: created" in result.stdout
    runtime = runtime_of(empty_app)
    assert counts(runtime) == (1, 3)
    rows = snapshot(runtime)
    assert rows["HVT"] == ("UBND phường Hoàng Văn Thụ", clock.now, clock.now)
    assert rows["HVT03"][0] == "Quầy 3 – Lao động, thương binh và xã hội"


def test_importing_the_same_file_again_changes_nothing(empty_app: Flask, clock: FakeClock) -> None:
    assert import_units(empty_app, EXAMPLE_UNITS).exit_code == 0
    before = snapshot(runtime_of(empty_app))
    clock.advance(hours=1)
    result = import_units(empty_app, EXAMPLE_UNITS)
    assert result.exit_code == 0, result.output
    assert "no change(s)" in result.stdout
    assert "updated" not in result.stdout
    assert snapshot(runtime_of(empty_app)) == before


def test_a_changed_name_updates_only_that_counter(
    empty_app: Flask, clock: FakeClock, tmp_path: Path
) -> None:
    first = clock.now
    assert import_units(empty_app, write(tmp_path, VALID)).exit_code == 0
    later = clock.advance(hours=2)
    renamed = VALID.replace("Quầy 2 – Địa chính, xây dựng", "Quầy 2 – Đất đai")
    result = import_units(empty_app, write(tmp_path, renamed))
    assert result.exit_code == 0, result.output
    assert "counter HVT02: updated" in result.stdout
    assert "1 change(s)" in result.stdout
    rows = snapshot(runtime_of(empty_app))
    assert rows["HVT02"] == ("Quầy 2 – Đất đai", first, later)
    assert rows["HVT01"][2] == first
    assert rows["HVT"][2] == first


def test_a_counter_left_out_of_the_file_is_kept(empty_app: Flask, tmp_path: Path) -> None:
    assert import_units(empty_app, EXAMPLE_UNITS).exit_code == 0
    assert import_units(empty_app, write(tmp_path, VALID)).exit_code == 0
    assert counts(runtime_of(empty_app)) == (1, 3)


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_file_imports_nothing(empty_app: Flask, tmp_path: Path, case: str) -> None:
    path = write(tmp_path, MALFORMED[case])
    result = import_units(empty_app, path)
    assert isinstance(result.exception, FileProblems), result.output
    assert f"{path}:{marked_line(MALFORMED[case])}:" in str(result.exception)
    assert counts(runtime_of(empty_app)) == (0, 0)


def test_a_malformed_file_leaves_existing_units_untouched(
    empty_app: Flask, clock: FakeClock, tmp_path: Path
) -> None:
    assert import_units(empty_app, EXAMPLE_UNITS).exit_code == 0
    before = snapshot(runtime_of(empty_app))
    clock.advance(hours=1)
    broken = VALID.replace("Quầy 1 – Tư pháp, hộ tịch", "Quầy 1 mới") + "      - code: HVT09\n"
    result = import_units(empty_app, write(tmp_path, broken))
    assert isinstance(result.exception, FileProblems)
    assert snapshot(runtime_of(empty_app)) == before


def test_an_unknown_questionnaire_imports_nothing(empty_app: Flask, tmp_path: Path) -> None:
    text = VALID.replace(
        "      - code: HVT02\n", "      - code: HVT02\n        questionnaire: no-such-form\n"
    )
    path = write(tmp_path, text)
    result = import_units(empty_app, path)
    assert isinstance(result.exception, FileProblems)
    assert [str(p) for p in result.exception.problems] == [
        f"{path}:8: counter HVT02: questionnaire 'no-such-form' cannot be used: "
        + str(result.exception.problems[0]).split("cannot be used: ", 1)[1]
    ]
    assert counts(runtime_of(empty_app)) == (0, 0)


UNKNOWN_KEYS = """\
units:
  - code: HVT
    name: UBND phường Hoàng Văn Thụ
    public_result: true
    questionaire: sipas-2022
    counters:
      - code: HVT01
        name: Quầy 1
        questionnaire: no-such-form
      - code: HVT02
        nmae: Quầy 2
        colour: blue
"""


def test_unknown_keys_and_questionnaires_are_reported_together_with_their_lines(
    empty_app: Flask, tmp_path: Path
) -> None:
    path = write(tmp_path, UNKNOWN_KEYS)
    result = import_units(empty_app, path)
    assert isinstance(result.exception, FileProblems)
    problems = [(p.line, p.message) for p in result.exception.problems]
    assert [line for line, _ in problems] == [4, 5, 9, 11, 12, 10]
    messages = dict(problems)
    assert messages[4] == "unit HVT: unknown key `public_result` (did you mean `public_results`?)"
    assert messages[5] == "unit HVT: unknown key `questionaire` (did you mean `questionnaire`?)"
    assert messages[9].startswith("counter HVT01: questionnaire 'no-such-form' cannot be used")
    assert messages[12].startswith("counter HVT02: unknown key `colour` (known: code, name,")
    assert "name is missing" in problems[-1][1]
    assert all("None" not in m for _, m in problems)
    assert counts(runtime_of(empty_app)) == (0, 0)


def test_a_missing_code_is_named_without_python_words(tmp_path: Path) -> None:
    text = "units:\n  - name: Phường\n    counters:\n      - name: Quầy 1\n"
    with pytest.raises(FileProblems) as caught:
        read_units_file(write(tmp_path, text))
    messages = [p.message for p in caught.value.problems]
    assert messages == ["a unit code is missing", "a counter code is missing"]


# --- through the console script: exit status 2, no traceback, nothing imported -----------------


@pytest.mark.parametrize("case", ["missing counter name", "yaml syntax error"])
def test_the_console_script_reports_a_malformed_file_with_its_line(
    empty_app: Flask, database_url: str, tmp_path: Path, case: str
) -> None:
    path = write(tmp_path, MALFORMED[case])
    result = run_cli("units", "import", str(path), env={"DATABASE_URL": database_url})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"sipas-bot: error: {path}:{marked_line(MALFORMED[case])}: ")
    assert lines[-1] == "sipas-bot: nothing was changed"
    assert result.stdout == ""
    assert counts(runtime_of(empty_app)) == (0, 0)


def test_the_console_script_refuses_an_unknown_questionnaire(
    empty_app: Flask, database_url: str, tmp_path: Path
) -> None:
    text = VALID.replace(
        "    name: UBND phường Hoàng Văn Thụ\n",
        "    name: UBND phường Hoàng Văn Thụ\n    questionnaire: no-such-form\n",
    )
    result = run_cli(
        "units", "import", str(write(tmp_path, text)), env={"DATABASE_URL": database_url}
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("sipas-bot: error:")
    assert "no-such-form" in result.stderr
    assert counts(runtime_of(empty_app)) == (0, 0)


def test_the_console_script_imports_and_lists_the_example(
    empty_app: Flask, database_url: str
) -> None:
    env = {"DATABASE_URL": database_url, "PUBLIC_BASE_URL": "https://sipas.example.vn"}
    imported = run_cli("units", "import", str(EXAMPLE_UNITS), env=env)
    assert imported.returncode == 0, imported.stderr
    assert counts(runtime_of(empty_app)) == (1, 3)
    listed = run_cli("units", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "HVT  UBND phường Hoàng Văn Thụ" in listed.stdout
    assert "#HVT02  Quầy 2 – Địa chính, xây dựng  https://sipas.example.vn/q/HVT02" in (
        listed.stdout
    )


def units_file_with_code(tmp_path: Path, code: str, extra: str = "") -> Path:
    path = tmp_path / "units.yaml"
    path.write_text(
        f"units:\n  - code: HVT\n    name: Phường\n    registration_code: {code}\n{extra}"
        "    counters:\n      - code: HVT01\n        name: Quầy 1\n",
        "utf-8",
    )
    return path


def test_a_registration_code_keeps_its_leading_zeros(tmp_path: Path) -> None:
    path = units_file_with_code(tmp_path, "0048-21K7-QM9X")
    assert read_units_file(path)[0].registration_code == "0048-21K7-QM9X"


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("004821", "needs at least 10"),
        ("4821-HVT", "needs at least 10"),
        ("HVT-0048215371", "digits only"),
        ("HVT-hoangvanthu", "letters only"),
        ("HVT-ab1ab1ab1ab1", "different ones"),
        ("Matkhau-2026-HVT", "common word 'matkhau'"),
        ("HVT01-HVT01-7K2", "the unit or counter code HVT01"),
    ],
)
def test_a_short_or_guessable_registration_code_is_refused(
    tmp_path: Path, code: str, why: str
) -> None:
    with pytest.raises(FileProblems) as caught:
        read_units_file(units_file_with_code(tmp_path, code))
    (problem,) = caught.value.problems
    assert problem.line == 4
    assert "unit HVT: registration_code " in problem.message and why in problem.message
    assert "units new-code --unit HVT" in problem.message


def test_a_generated_registration_code_is_accepted_and_names_its_unit(tmp_path: Path) -> None:
    from bot.registration_codes import new_code

    codes = {new_code("HVT") for _ in range(50)}
    assert len(codes) == 50 and all(c.startswith("HVT-") and len(c) == 18 for c in codes)
    for code in list(codes)[:5]:
        assert read_units_file(units_file_with_code(tmp_path, code))[0].registration_code == code


def test_leader_approval_is_read_from_the_units_file(tmp_path: Path) -> None:
    path = units_file_with_code(tmp_path, "HVT-7KQ2-M9XD-4TPA", "    leader_approval: true\n")
    assert read_units_file(path)[0].leader_approval is True
