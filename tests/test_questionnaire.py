"""Questionnaire files: the shipped forms are what the Ministry's form says, blocks are put in
place of `- include:`, and every mistake an operator can make is reported with its line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from survey_flow.preview import fit_problems, load_checked
from survey_flow.questionnaire import (
    NOT_APPLICABLE,
    QuestionnaireError,
    load_questionnaire,
    load_shipped,
    parse_questionnaire,
    shipped_blocks,
    shipped_ids,
)
from survey_flow.sipas import CRITERIA_BY_FACTOR
from survey_flow.texts import load_texts
from zalo_client.limits import BUTTON_TITLE_MAX

TEXTS = load_texts()
HEAD = "id: test\nversion: '1'\nlanguages: [vi, en]\ntitle: {vi: Thử, en: Try}\nitems:\n"
SCALE = "  - id: {id}\n    kind: scale\n    factor: 1\n    text: {{vi: Câu {id}, en: Item {id}}}\n"


def problems_of(text: str, tmp_path: Path | None = None) -> list[tuple[int, str]]:
    """(line, message) of every problem in a questionnaire text."""
    with pytest.raises(QuestionnaireError) as caught:
        if tmp_path is None:
            parse_questionnaire(text, "test.yaml")
        else:
            path = tmp_path / "test.yaml"
            path.write_text(text, "utf-8")
            load_questionnaire(path)
    return [(problem.line, problem.message) for problem in caught.value.problems]


def line_of(text: str, marker: str) -> int:
    """The number of the first line holding `marker`."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if marker in line)


# --- the shipped questionnaires ------------------------------------------------------------


def test_the_shipped_questionnaires() -> None:
    assert shipped_ids() == ["sipas-2022", "sipas-short", "sipas-short-full"]
    assert shipped_blocks() == ["expectations", "profile"]


@pytest.mark.parametrize("name", shipped_ids())
def test_each_shipped_questionnaire_passes_every_check(name: str) -> None:
    questionnaire = load_checked(name, TEXTS)
    assert questionnaire.id == name
    assert questionnaire.languages == ("vi", "en")
    assert fit_problems(questionnaire, TEXTS) == []


@pytest.mark.parametrize("name", shipped_ids())
def test_vietnamese_texts_carry_their_diacritics(name: str) -> None:
    """A Vietnamese sentence typed without diacritics would be plain ASCII."""
    questionnaire = load_shipped(name)
    for item in questionnaire.items:
        assert not item.text["vi"].isascii(), item.id
        assert item.text["en"].isascii() or "–" in item.text["en"] or "…" in item.text["en"]


def test_sipas_2022_asks_the_19_criteria_grouped_by_factor() -> None:
    questionnaire = load_shipped("sipas-2022")
    scales = [item for item in questionnaire.items if item.kind == "scale"]
    assert [item.criterion for item in scales] == list(range(1, 20))
    for item in scales:
        assert item.criterion in CRITERIA_BY_FACTOR[item.factor or 0]
    # Each factor opens with an intro: the item before its first criterion.
    for factor, criteria in CRITERIA_BY_FACTOR.items():
        index = next(i for i, item in enumerate(questionnaire.items) if item.factor == factor)
        assert questionnaire.items[index - 1 - (factor == 5)].kind == "intro", factor
        assert criteria[0] == questionnaire.items[index].criterion


def test_sipas_2022_asks_the_feedback_criteria_only_after_feedback_was_given() -> None:
    questionnaire = load_shipped("sipas-2022")
    gate = questionnaire.item("gave-feedback")
    assert gate is not None and gate.kind == "choice" and not gate.optional
    assert [option.label["vi"] for option in gate.options] == ["Có", "Không"]
    for item in questionnaire.items:
        if item.criterion in (17, 18, 19):
            assert item.when is not None
            assert (item.when.item, item.when.values) == ("gave-feedback", frozenset({1}))
            assert item.not_applicable
        else:
            assert item.when is None


def test_sipas_2022_allows_not_applicable_where_some_cannot_judge() -> None:
    questionnaire = load_shipped("sipas-2022")
    allowed = {item.criterion for item in questionnaire.items if item.not_applicable}
    assert allowed == {4, 7, 11, 17, 18, 19}
    assert (
        NOT_APPLICABLE in (questionnaire.item("c07-fees") or questionnaire.items[0]).valid_values()
    )


def test_sipas_short_asks_one_question_per_factor_and_a_comment() -> None:
    questionnaire = load_shipped("sipas-short")
    assert [item.factor for item in questionnaire.items] == [1, 2, 3, 4, 5, None]
    assert questionnaire.items[-1].kind == "text" and questionnaire.items[-1].optional


def test_sipas_short_full_is_sipas_short_with_both_blocks() -> None:
    full, short = load_shipped("sipas-short-full"), load_shipped("sipas-short")
    assert full.blocks == ("expectations", "profile")
    assert [item for item in full.items if not item.id.startswith(("expect-", "profile-"))] == list(
        short.items
    )


def test_the_expectation_block_asks_eight_areas_rather_much_or_little() -> None:
    questionnaire = load_shipped("sipas-short-full")
    areas = [item for item in questionnaire.questions if item.id.startswith("expect-")]
    assert len(areas) == 8
    for item in areas:
        assert item.optional and item.kind == "choice"
        assert [o.label["vi"] for o in item.options] == ["Rất nhiều", "Nhiều", "Ít"]


def test_the_profile_block_is_all_optional_with_the_age_bands() -> None:
    questionnaire = load_shipped("sipas-short-full")
    profile = [item for item in questionnaire.questions if item.id.startswith("profile-")]
    assert {item.id for item in profile} >= {
        "profile-respondent",
        "profile-gender",
        "profile-age",
        "profile-education",
    }
    assert all(item.optional for item in profile)
    age = questionnaire.item("profile-age")
    assert age is not None
    assert [o.label["vi"] for o in age.options] == ["18–25", "26–34", "35–49", "50–60", "Trên 60"]
    education = questionnaire.item("profile-education")
    assert education is not None and len(education.options) == 6


@pytest.mark.parametrize("name", shipped_ids())
def test_every_button_title_is_within_zalos_limit(name: str) -> None:
    for item in load_shipped(name).items:
        if 0 < len(item.options) <= 5:
            for option in item.options:
                for label in option.label.values():
                    assert len(label) <= BUTTON_TITLE_MAX, label


# --- blocks --------------------------------------------------------------------------------


def test_an_included_block_takes_the_place_of_its_include_line() -> None:
    text = HEAD + SCALE.format(id="a") + "  - include: profile\n" + SCALE.format(id="z")
    questionnaire = parse_questionnaire(text, "test.yaml")
    ids = [item.id for item in questionnaire.items]
    assert ids[0] == "a" and ids[-1] == "z"
    assert ids[1:-1] == [item.id for item in load_shipped("sipas-short-full").items][-6:]
    assert questionnaire.blocks == ("profile",)


def test_the_kept_text_holds_the_blocks_so_a_stored_version_needs_no_file() -> None:
    full = load_shipped("sipas-short-full")
    assert "--- # include: expectations" in full.source_text
    assert "--- # include: profile" in full.source_text
    again = parse_questionnaire(full.source_text, "sipas-short-full@2026.1")
    assert again == full
    assert again.source_text == full.source_text


def test_a_questionnaire_without_blocks_keeps_its_text_as_written() -> None:
    short = load_shipped("sipas-short")
    shipped = Path(__file__).resolve().parent.parent / "survey_flow/questionnaires/sipas-short.yaml"
    assert short.source_text == shipped.read_text("utf-8")


def test_a_block_file_next_to_the_questionnaire(tmp_path: Path) -> None:
    (tmp_path / "field.yaml").write_text(
        "block: field\nitems:\n"
        "  - id: field\n    kind: choice\n    optional: true\n"
        "    text: {vi: 'Lĩnh vực?', en: 'Field?'}\n"
        "    options:\n      - {vi: Hộ tịch, en: Civil status}\n      - {vi: Đất đai, en: Land}\n",
        "utf-8",
    )
    path = tmp_path / "ward.yaml"
    path.write_text(HEAD + SCALE.format(id="a") + "  - include: field.yaml\n", "utf-8")
    questionnaire = load_questionnaire(path)
    assert [item.id for item in questionnaire.items] == ["a", "field"]
    edited_block = (tmp_path / "field.yaml").read_text("utf-8").replace("Đất đai", "Đất")
    (tmp_path / "field.yaml").write_text(edited_block, "utf-8")
    assert load_questionnaire(path).source_text != questionnaire.source_text


def test_a_problem_in_a_block_file_names_that_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad-block.yaml").write_text(
        "block: bad\nitems:\n  - id: x\n    kind: slider\n    text: {vi: X, en: X}\n", "utf-8"
    )
    path = tmp_path / "ward.yaml"
    path.write_text(HEAD + SCALE.format(id="a") + "  - include: bad-block.yaml\n", "utf-8")
    with pytest.raises(QuestionnaireError) as caught:
        load_questionnaire(path)
    (problem,) = caught.value.problems
    assert (Path(problem.source).name, problem.line) == ("bad-block.yaml", 4)
    assert "unknown kind 'slider'" in problem.message


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ("  - include: nothing\n", "no shipped block has that name"),
        ("  - include: missing.yaml\n", "include 'missing.yaml'"),
        ("  - include: profile\n  - include: profile\n", "included twice"),
        ("  - include: profile\n    id: x\n", "nothing but the block's name"),
        ("  - include: \n", "name a block"),
    ],
)
def test_include_mistakes_are_reported_at_their_line(
    tmp_path: Path, items: str, expected: str
) -> None:
    text = HEAD + SCALE.format(id="a") + items
    found = problems_of(text, tmp_path)
    assert any(expected in message for _, message in found), found
    assert all(line >= line_of(text, "include") for line, _ in found)


def test_a_block_cannot_include_another(tmp_path: Path) -> None:
    (tmp_path / "outer.yaml").write_text("block: outer\nitems:\n  - include: profile\n", "utf-8")
    found = problems_of(HEAD + SCALE.format(id="a") + "  - include: outer.yaml\n", tmp_path)
    assert (3, "block outer.yaml: a block cannot include another block") in found


def test_ids_from_a_block_must_not_clash_with_the_questionnaires() -> None:
    text = HEAD + SCALE.format(id="profile-age") + "  - include: profile\n"
    found = problems_of(text)
    assert any("'profile-age' is used twice" in message for _, message in found)


# --- every mistake, with its line ----------------------------------------------------------


CASES = [
    ("unknown kind", "    kind: slider  # <-", "unknown kind 'slider'"),
    ("missing translation", "    text: {vi: Chỉ tiếng Việt}  # <-", "missing en translation"),
    ("factor", "    factor: 9  # <-", "needs factor 1–5"),
    ("bool factor", "    factor: true  # <-", "needs factor 1–5"),
    ("criterion of another factor", "    criterion: 12  # <-", "not one of factor 1's (1–4)"),
    ("not applicable type", "    not_applicable: 'yes'  # <-", "must be true or false"),
    ("unknown field", "    colour: red  # <-", "unknown field 'colour'"),
    ("repeated key", "    factor: 1  # <-", "'factor' is given twice"),
]


@pytest.mark.parametrize(("name", "line", "expected"), CASES, ids=[c[0] for c in CASES])
def test_an_item_mistake_is_reported_at_its_line(name: str, line: str, expected: str) -> None:
    base = SCALE.format(id="a").splitlines()
    key = line.strip().split(":")[0]
    item = [existing for existing in base if existing.strip().split(":")[0] != key]
    if name == "repeated key":
        item = base
    item.append(line)
    text = HEAD + "\n".join(item) + "\n" + SCALE.format(id="b")
    found = problems_of(text)
    assert (line_of(text, "# <-"), next(m for _, m in found if expected in m)) in found, found


def test_a_condition_on_a_later_item_is_refused() -> None:
    text = (
        HEAD + SCALE.format(id="a") + "    when: {item: b, in: [1]}  # <-\n" + SCALE.format(id="b")
    )
    assert problems_of(text) == [
        (
            line_of(text, "# <-"),
            "item a: condition points to 'b', which comes later; "
            "a condition can only look at an earlier answer",
        )
    ]


def test_a_condition_on_a_missing_item_is_refused() -> None:
    text = HEAD + SCALE.format(id="a") + "    when: {item: zz, in: [1]}  # <-\n"
    assert problems_of(text) == [
        (line_of(text, "# <-"), "item a: condition points to 'zz': no item has that id")
    ]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("{item: a, in: [6]}", "'a' cannot be answered 6"),
        ("{item: a, in: [0]}", "'a' cannot be answered 0"),
        ("{item: a, in: []}", "'in' must list"),
        ("{item: a, in: [true]}", "'in' must list"),
        ("{item: a}", "when needs 'item'"),
        ("{item: c, in: [1]}", "which has no numbered answers"),
        ("{item: a, in: [1], of: 2}", "unknown field 'of'"),
    ],
)
def test_a_condition_must_name_answers_the_item_can_have(condition: str, expected: str) -> None:
    text = (
        HEAD
        + SCALE.format(id="a")
        + "  - id: c\n    kind: text\n    text: {vi: Ý kiến, en: Comment}\n"
        + SCALE.format(id="b")
        + f"    when: {condition}\n"
    )
    found = problems_of(text)
    assert any(expected in message for _, message in found), found


def test_six_options_become_a_list_and_long_titles_are_allowed_there() -> None:
    options = "".join(
        f"      - {{vi: Lựa chọn số {n} khá dài, en: Option {n}}}\n" for n in range(6)
    )
    text = HEAD + "  - id: c\n    kind: choice\n    text: {vi: Chọn, en: Pick}\n    options:\n"
    questionnaire = parse_questionnaire(text + options, "test.yaml")
    assert len(questionnaire.items[0].options) == 6


def test_a_button_title_over_zalos_limit_is_reported_in_each_language() -> None:
    text = (
        HEAD
        + "  - id: c\n    kind: choice\n    text: {vi: Chọn, en: Pick}\n    options:\n"
        + "      - {vi: Một lựa chọn rất là dài, en: Short}  # <-\n"
        + "      - {vi: Ngắn, en: An English title too long}  # <=\n"
    )
    assert problems_of(text) == [
        (
            line_of(text, "# <-"),
            "item c option 1: vi button title 'Một lựa chọn rất là dài' has 23 characters, "
            "over Zalo's 20",
        ),
        (
            line_of(text, "# <="),
            "item c option 2: en button title 'An English title too long' has 25 characters, "
            "over Zalo's 20",
        ),
    ]


def test_more_than_twenty_options_are_refused() -> None:
    options = "".join(f"      - {{vi: Chọn {n}, en: Pick {n}}}\n" for n in range(21))
    text = HEAD + "  - id: c\n    kind: choice\n    text: {vi: Chọn, en: Pick}\n    options:\n"
    assert any("21 options, at most 20" in m for _, m in problems_of(text + options))


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ("version: 2026.10\n", 'put it in quotes, e.g. version: "2026.1"'),
        ("version: [1]\n", "version is missing"),
        ("version: 'a b'\n", "version: use up to 32"),
        ("languages: [vi, fr]\n", "languages must list vi and/or en"),
        ("languages: [en]\n", "languages must include vi"),
        ("id: Bad Id\n", "id: use 1–48"),
        ("titel: x\n", "unknown field 'titel'"),
    ],
)
def test_a_questionnaire_level_mistake_is_reported_at_its_line(head: str, expected: str) -> None:
    key = head.split(":")[0]
    lines = [line for line in HEAD.splitlines() if not line.startswith(f"{key}:")]
    text = "\n".join([head.rstrip() + "  # <-", *lines]) + "\n" + SCALE.format(id="a")
    found = problems_of(text)
    assert any(line == 1 and expected in message for line, message in found), found


def test_every_problem_is_listed_not_just_the_first() -> None:
    text = (
        HEAD
        + "  - id: a\n    kind: slider\n    text: {vi: A, en: A}\n"
        + "  - id: b\n    kind: scale\n    factor: 7\n    text: {vi: B}\n"
    )
    assert len(problems_of(text)) == 3


def test_a_message_too_long_for_zalo_is_found_before_it_is_sent() -> None:
    """Intros are sent with the next question: two long ones overflow one message."""
    long = "Đoạn giới thiệu rất dài. " * 50
    text = (
        HEAD
        + f"  - id: i1\n    kind: intro\n    text: {{vi: '{long}', en: 'Intro'}}\n"
        + f"  - id: i2\n    kind: intro\n    text: {{vi: '{long}', en: 'Intro'}}\n"
        + SCALE.format(id="a")
    )
    questionnaire = parse_questionnaire(text, "test.yaml")
    (problem,) = fit_problems(questionnaire, TEXTS)
    assert problem.line == line_of(text, "- id: a")
    assert "item a: its vi message can reach" in problem.message


@pytest.mark.parametrize(
    "text",
    ["", "- a\n- b\n", "id: [", "just words", "id: x\n---\nid: y\n", "\t\x00"],
)
def test_a_file_that_is_no_questionnaire_is_a_problem_not_a_crash(text: str) -> None:
    assert problems_of(text)


def test_an_unreadable_path_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(QuestionnaireError) as caught:
        load_questionnaire(tmp_path)
    assert "cannot read" in str(caught.value)
    (tmp_path / "latin.yaml").write_bytes(b"id: th\xe9\xff\n")
    with pytest.raises(QuestionnaireError, match="not UTF-8"):
        load_questionnaire(tmp_path / "latin.yaml")


# --- any file at all: problems, never a crash ----------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["vi", "en", "scale", "choice", "text", "intro", "a", "b", "profile", ""]),
    st.text(max_size=30),
)
KEYS = [
    *("id", "kind", "text", "optional", "not_applicable", "factor", "criterion", "options"),
    *("when", "item", "in", "include", "vi", "en", "version", "languages", "title", "items"),
]
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=6),
    ),
    max_leaves=40,
)


@settings(deadline=None)
@given(documents, st.lists(documents, max_size=3))
def test_any_yaml_is_a_questionnaire_or_a_list_of_problems(items: object, extra: list) -> None:
    data = {"id": "fuzz", "version": "1", "languages": ["vi", "en"], "title": "x", "items": items}
    text = yaml.safe_dump(data, allow_unicode=True)
    for document in extra:
        text += "---\n" + yaml.safe_dump(document, allow_unicode=True)
    try:
        questionnaire = parse_questionnaire(text, "fuzz.yaml")
    except QuestionnaireError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert "\n" not in problem.message
            assert problem.line >= 0
    else:
        assert questionnaire.questions
        fit_problems(questionnaire, TEXTS)
