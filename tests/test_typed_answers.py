"""Typed answers as citizens write them (tests/data/typed_answers.yaml): the engine never
records a wrong level (precision 100 %) and records a level for at least 95 % of the
answers that name one (coverage). Run with `-s` to see both figures."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from survey_flow.matching import Reading, ReadingKind, read_scale
from tests.test_engine import Chat

CORPUS = Path(__file__).parent / "data" / "typed_answers.yaml"
ASK = "ask"
MIN_ENTRIES = 500
MIN_COVERAGE = 0.95


def load_corpus() -> list[tuple[str, int | str]]:
    raw = yaml.safe_load(CORPUS.read_text("utf-8"))
    return [(str(text), expected) for expected, texts in raw.items() for text in texts]


def recorded(typed: str) -> int | str:
    """The level the engine records when `typed` answers the first question of sipas-short
    (a scale without "không áp dụng"), or ASK when the citizen is asked instead."""
    chat = Chat()
    chat.scan()
    chat.say(typed)
    answer = chat.answers().get("access")
    if answer is None:
        assert chat.survey is not None and chat.survey.position == 0
        return ASK
    assert answer.value is not None
    return answer.value


def test_the_corpus_is_large_and_well_formed() -> None:
    corpus = load_corpus()
    assert len(corpus) >= MIN_ENTRIES
    assert {expected for _, expected in corpus} == {1, 2, 3, 4, 5, ASK}
    texts = [text for text, _ in corpus]
    assert len(texts) == len(set(texts)), "an answer is listed twice"


def test_precision_is_total_and_coverage_at_least_95_percent() -> None:
    corpus = load_corpus()
    wrong = []
    read = levels = covered = 0
    for text, expected in corpus:
        got = recorded(text)
        read += got != ASK
        if got != ASK and got != expected:
            wrong.append(f"{text!r}: expected {expected}, read {got}")
        if expected != ASK:
            levels += 1
            covered += got == expected
    precision = (read - len(wrong)) / read
    coverage = covered / levels
    figures = (
        f"typed answers: {len(corpus)}; precision {precision:.1%} "
        f"({len(wrong)} wrong); coverage {coverage:.1%} ({covered}/{levels} levels read)"
    )
    print(figures)
    assert not wrong, f"{figures}\n" + "\n".join(wrong)
    assert coverage >= MIN_COVERAGE, figures


@pytest.mark.parametrize(
    ("typed", "low", "high"),
    [
        ("4,5", 4, 5),
        ("4.5", 4, 5),
        ("3-4", 3, 4),
        ("4 hoặc 5", 4, 5),
        ("4 or 5", 4, 5),
        ("1 - 2", 1, 2),
        ("tốt nhưng chậm", 3, 4),
        ("rất hài lòng nhưng phải chờ", 4, 5),
        ("không hài lòng nhưng cán bộ nhiệt tình", 2, 3),
        ("5 hài lòng", 4, 5),
        ("không tệ", 3, 4),
    ],
)
def test_two_levels_at_once_are_named_back(typed: str, low: int, high: int) -> None:
    assert read_scale(typed) == Reading(ReadingKind.BETWEEN, (low, high))


@pytest.mark.parametrize(
    ("typed", "kind"),
    [
        ("không", ReadingKind.YES_NO),
        ("ko", ReadingKind.YES_NO),
        ("có", ReadingKind.YES_NO),
        ("không biết", ReadingKind.DONT_KNOW),
        ("ko bt", ReadingKind.DONT_KNOW),
        ("bỏ qua", ReadingKind.SKIP),
        ("skip", ReadingKind.SKIP),
        ("0", ReadingKind.NOT_APPLICABLE),
        ("không áp dụng", ReadingKind.NOT_APPLICABLE),
        ("N/A", ReadingKind.NOT_APPLICABLE),
    ],
)
def test_words_that_name_no_level_are_told_apart(typed: str, kind: ReadingKind) -> None:
    assert read_scale(typed).kind == kind


@pytest.mark.parametrize(
    "typed",
    [
        # Short words are never guessed: `to`, `tôi`, `tet` are not `tốt`, `te` is `tệ` only
        # as typed.
        "to",
        "tet",
        "ot",
        "oc",
        "tôi",
        # A typo that is as near to another level is not guessed (`cung`/`khong`).
        "khng hài lòng",
        "hài",
        "rất",
        # Numbers out of the scale, or out of another total.
        "6",
        "8/10",
        "3,5",
    ],
)
def test_what_could_be_a_wrong_level_is_not_read(typed: str) -> None:
    assert read_scale(typed).kind != ReadingKind.VALUE
