"""Telling what a citizen's feedback is, by a few words (docs/cases.md).

A simple rule, read in order on the text folded without diacritics: a "?" or a question word
→ câu hỏi; a complaint word → phản ánh; a recommending word → kiến nghị; anything else →
góp ý. Officials see the kind beside the text and can read it otherwise; the monthly figures
count by it.
"""

from __future__ import annotations

import re

from storage.models import CaseKind
from survey_flow.matching import fold

KIND_LABELS: dict[CaseKind, str] = {
    CaseKind.SUGGESTION: "góp ý",
    CaseKind.COMPLAINT: "phản ánh",
    CaseKind.RECOMMENDATION: "kiến nghị",
    CaseKind.QUESTION: "câu hỏi",
}

_QUESTION_WORDS = (
    "cho hoi",
    "xin hoi",
    "bao gio",
    "khi nao",
    "bao lau",
    "the nao",
    "lam sao",
    "o dau",
    "tai sao",
    "vi sao",
    "co duoc khong",
    "duoc khong",
    "chua a",
    "phai khong",
)
_COMPLAINT_WORDS = (
    "phan anh",
    "phan nan",
    "buc xuc",
    "khong hai long",
    "khong nhiet tinh",
    "thai do",
    "kho de",
    "nhung nhieu",
    "hach dich",
    "voi vinh",
    "tieu cuc",
    "cham tre",
    "tre hen",
    "qua han",
    "cau kinh",
    "khieu nai",
    "te qua",
)
_RECOMMENDATION_WORDS = ("kien nghi", "de nghi", "de xuat", "mong muon", "nen bo tri", "can them")


def _has(folded: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", folded) for word in words)


def classify(text: str) -> CaseKind:
    """The kind of a citizen's text, by the rule above."""
    folded = fold(text)
    if "?" in text or "？" in text or _has(folded, _QUESTION_WORDS):
        return CaseKind.QUESTION
    if _has(folded, _COMPLAINT_WORDS):
        return CaseKind.COMPLAINT
    if _has(folded, _RECOMMENDATION_WORDS):
        return CaseKind.RECOMMENDATION
    return CaseKind.SUGGESTION
