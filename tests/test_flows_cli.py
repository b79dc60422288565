"""`sipas-bot flows check|show|list`: no database needed, one line per problem, exit status 2.

The `flows show` output of every shipped questionnaire is compared with a golden file in
tests/golden/. After an intended change to a questionnaire, the texts or the engine, rewrite
them with

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_flows_cli.py

and read the diff (`git diff tests/golden`) before committing: it is what citizens will see.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from survey_flow.questionnaire import shipped_ids

GOLDEN = Path(__file__).resolve().parent / "golden"
SCRIPT = Path(sys.executable).with_name("sipas-bot")
# Any command that needed the app would stop on this setting: proof that none is built.
NO_DATABASE = {"DATABASE_URL": "not a database url"}

GOOD = """\
id: ward-form
version: "1"
languages: [vi, en]
title: {vi: Mẫu của phường, en: The ward's form}
items:
  - id: staff
    kind: scale
    factor: 3
    text:
      vi: Ông/Bà hài lòng với công chức chứ?
      en: Are you satisfied with the civil servant?
  - id: why
    kind: choice
    optional: true
    when: {item: staff, in: [1, 2]}
    text:
      vi: Vì sao Ông/Bà chưa hài lòng?
      en: Why are you not satisfied?
    options:
      - {vi: Thái độ chưa tốt, en: Attitude}
      - {vi: Hướng dẫn khó hiểu, en: Unclear guidance}
      - {vi: Chờ lâu, en: Long wait}
  - include: profile
"""
BAD = """\
id: ward-form
version: "1"
languages: [vi, en]
title: {vi: Mẫu của phường}
items:
  - id: staff
    kind: slider
    text: {vi: Câu 1, en: Item 1}
  - id: why
    kind: choice
    when: {item: later, in: [1]}
    text: {vi: Vì sao, en: Why}
    options:
      - {vi: Một lựa chọn rất là dài, en: Long}
      - {vi: Ngắn, en: Short}
  - id: later
    kind: scale
    factor: 1
    text: {vi: Sau}
"""
BAD_PROBLEMS = [
    "4: title: missing en translation",
    "7: item staff: unknown kind 'slider' (expected one of scale, choice, text, intro)",
    "11: item why: condition points to 'later', which comes later; "
    "a condition can only look at an earlier answer",
    "14: item why option 1: vi button title 'Một lựa chọn rất là dài' has 23 characters, "
    "over Zalo's 20",
    "19: item later: missing en translation",
]


def flows(*args: str) -> Result:
    return CliRunner().invoke(cli, ["flows", *args], env=NO_DATABASE)


def write(tmp_path: Path, text: str, name: str = "form.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


# --- check ---------------------------------------------------------------------------------


def test_check_a_good_file_prints_a_summary(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    result = flows("check", str(path))
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"{path}: ok – ward-form version 1, languages vi, en: 7 questions (6 optional, "
        "1 asked only under a condition), 1 intros; blocks: profile\n"
    )


@pytest.mark.parametrize("name", shipped_ids())
def test_check_accepts_every_shipped_questionnaire_by_id(name: str) -> None:
    result = flows("check", name)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{name}: ok – {name} version ")


def test_check_lists_every_problem_with_its_line_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    result = flows("check", str(path))
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"{path}:{problem}" for problem in BAD_PROBLEMS]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no shipped questionnaire has this id and no file this path"),
        (b"\xff\xfe\x00binary", "not UTF-8 text"),
        (b"id: [unclosed\n", "not valid YAML"),
        (b"", "expected a mapping with id, version and items"),
    ],
)
def test_check_of_something_that_is_no_questionnaire_is_one_line(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "form.yaml"
    if content is not None:
        path.write_bytes(content)
    result = flows("check", str(path) if content is not None else "sipas-2099")
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert expected in line


def test_the_console_script_checks_without_a_database_and_never_a_traceback(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, BAD)
    result = subprocess.run(
        [str(SCRIPT), "flows", "check", str(path)],
        env={**os.environ, **NO_DATABASE, "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stdout.splitlines() == [f"{path}:{problem}" for problem in BAD_PROBLEMS]


# --- show ----------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["vi", "en"])
@pytest.mark.parametrize("name", shipped_ids())
def test_show_matches_the_golden_transcript(name: str, language: str) -> None:
    result = flows("show", name, "--lang", language)
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"flows-show-{name}-{language}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(result.output, "utf-8")
    assert golden.exists(), f"{golden} is missing: run with UPDATE_GOLDEN=1 to write it"
    assert result.output == golden.read_text("utf-8")


def test_show_marks_a_conditional_question_and_shows_every_button(tmp_path: Path) -> None:
    result = flows("show", str(write(tmp_path, GOOD)))
    assert result.exit_code == 0, result.output
    out = result.output
    assert (
        "(asked only if staff is 1 (Rất không hài lòng) or 2 (Không hài lòng))\n"
        "Đã ghi nhận: Rất không hài lòng.\n\nCâu 2/7"
    ) in out
    assert "  [Thái độ chưa tốt]\n  [Hướng dẫn khó hiểu]\n  [Chờ lâu]\n" in out
    assert out.count("--- message") == 1 + 7 + 1  # the start, 7 questions, the thanks
    assert "Câu 7/7" in out


def test_show_defaults_to_vietnamese_and_is_in_english_on_request() -> None:
    assert "Câu 1/6" in flows("show", "sipas-short").output
    assert "Question 1/6" in flows("show", "sipas-short", "--lang", "en").output


def test_show_of_a_language_the_file_lacks_is_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "id: vi-only\nversion: '1'\nlanguages: [vi]\ntitle: Chỉ tiếng Việt\n"
        "items:\n  - {id: a, kind: scale, factor: 1, text: Câu một}\n",
    )
    result = flows("show", str(path), "--lang", "en")
    assert result.exit_code == 2
    assert result.output == f"{path}: not written in en (languages: vi)\n"


def test_show_of_a_bad_file_lists_its_problems(tmp_path: Path) -> None:
    result = flows("show", str(write(tmp_path, BAD)))
    assert result.exit_code == 2
    assert len(result.output.splitlines()) == len(BAD_PROBLEMS)


def test_list_names_the_shipped_questionnaires_and_blocks() -> None:
    result = flows("list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == shipped_ids()
    assert lines[-1] == "blocks (add with `- include: NAME`): expectations, profile"
