"""Questionnaires are versioned data: a YAML file per form, checked before it is ever asked.

A file names its id, version and languages and lists items in order. Kinds:
`scale` (1–5 with the SIPAS labels, optional "not applicable"), `choice` (numbered options;
up to 5 become buttons, more become a numbered list answered by typing the number),
`text` (free text, skippable when optional) and `intro` (a section heading, not a question).
An item may carry `when: {item: ID, in: [values]}` to be asked only after a matching answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from survey_flow.sipas import CRITERIA_BY_FACTOR, FACTORS
from survey_flow.sourcefile import FileProblems, LineDict, LineList, Problem, line_of, load_yaml

KINDS = ("scale", "choice", "text", "intro")
MAX_BUTTONS = 5
BUTTON_TITLE_MAX = 20
TEXT_MAX = 1500  # leaves room for the progress line and hints within Zalo's 2,000
NOT_APPLICABLE = 0  # the stored value of a "không áp dụng" answer on a scale item
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")

QuestionnaireError = FileProblems


@dataclass(frozen=True)
class Option:
    value: int
    label: Mapping[str, str]


@dataclass(frozen=True)
class Condition:
    item: str
    values: frozenset[int]


@dataclass(frozen=True)
class Item:
    id: str
    kind: str
    text: Mapping[str, str]
    optional: bool = False
    not_applicable: bool = False
    factor: int | None = None
    criterion: int | None = None
    options: tuple[Option, ...] = ()
    when: Condition | None = None

    @property
    def is_question(self) -> bool:
        return self.kind != "intro"


@dataclass(frozen=True)
class Questionnaire:
    id: str
    version: str
    languages: tuple[str, ...]
    title: Mapping[str, str]
    items: tuple[Item, ...]
    source: str = field(default="", compare=False)
    source_text: str = field(default="", compare=False, repr=False)

    def index_of(self, item_id: str) -> int | None:
        for index, item in enumerate(self.items):
            if item.id == item_id:
                return index
        return None

    def item(self, item_id: str) -> Item | None:
        index = self.index_of(item_id)
        return None if index is None else self.items[index]


class _Checker:
    """Collects every problem in a file instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.source, line, message))

    def translations(
        self, node: Any, line: int, what: str, languages: tuple[str, ...]
    ) -> dict[str, str]:
        if isinstance(node, str) and len(languages) == 1:
            return {languages[0]: node}
        if not isinstance(node, dict):
            self.add(line, f"{what}: expected a text per language ({', '.join(languages)})")
            return {}
        result: dict[str, str] = {}
        for language in languages:
            value = node.get(language)
            if not isinstance(value, str) or not value.strip():
                self.add(line_of(node, language), f"{what}: missing {language} translation")
            else:
                result[language] = value.strip()
        return result


def _parse_item(
    check: _Checker, node: Any, line: int, languages: tuple[str, ...], seen: dict[str, Item]
) -> Item | None:
    if not isinstance(node, LineDict):
        check.add(line, "an item must be a mapping with id, kind and text")
        return None
    item_id = node.get("id")
    if not isinstance(item_id, str) or not _ID.match(item_id):
        check.add(
            node.line_of("id"), f"item id {item_id!r}: use lower-case letters, digits, - or _"
        )
        item_id = f"?{line}"
    elif item_id in seen:
        check.add(node.line_of("id"), f"item id {item_id!r} is used twice")
    known = {
        "id",
        "kind",
        "text",
        "optional",
        "not_applicable",
        "factor",
        "criterion",
        "options",
        "when",
    }
    for key in node:
        if key not in known:
            check.add(node.line_of(key), f"item {item_id}: unknown field {key!r}")
    kind = node.get("kind")
    if kind not in KINDS:
        check.add(
            node.line_of("kind"),
            f"item {item_id}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})",
        )
        return None
    text = check.translations(node.get("text"), node.line_of("text"), f"item {item_id}", languages)
    for language, value in text.items():
        if len(value) > TEXT_MAX:
            check.add(
                node.line_of("text"),
                f"item {item_id}: {language} text is longer than {TEXT_MAX} characters",
            )

    factor = node.get("factor")
    criterion = node.get("criterion")
    if kind == "scale":
        if factor not in FACTORS:
            check.add(node.line_of("factor"), f"item {item_id}: a scale item needs factor 1–5")
            factor = None
        if criterion is not None and (
            factor is None or criterion not in CRITERIA_BY_FACTOR[factor]
        ):
            check.add(
                node.line_of("criterion"),
                f"item {item_id}: criterion {criterion!r} is not one of factor {factor}'s",
            )
            criterion = None
    elif factor is not None or criterion is not None:
        check.add(node.line_of("factor"), f"item {item_id}: only scale items name a factor")
        factor = criterion = None

    options: list[Option] = []
    if kind == "choice":
        raw = node.get("options")
        if not isinstance(raw, LineList) or len(raw) < 2:
            check.add(node.line_of("options"), f"item {item_id}: a choice needs at least 2 options")
        else:
            for number, option in enumerate(raw, start=1):
                label = check.translations(
                    option, raw.line_of(number - 1), f"item {item_id} option {number}", languages
                )
                if len(raw) <= MAX_BUTTONS:
                    for language, value in label.items():
                        if len(value) > BUTTON_TITLE_MAX:
                            check.add(
                                raw.line_of(number - 1),
                                f"item {item_id} option {number}: {language} title "
                                f"{value!r} is over Zalo's {BUTTON_TITLE_MAX}-character "
                                "button limit",
                            )
                options.append(Option(number, label))
    elif "options" in node:
        check.add(node.line_of("options"), f"item {item_id}: only choice items have options")

    when = None
    raw_when = node.get("when")
    if raw_when is not None:
        when = _parse_condition(check, raw_when, node.line_of("when"), item_id, seen)

    optional = node.get("optional", kind == "text")
    if not isinstance(optional, bool):
        check.add(node.line_of("optional"), f"item {item_id}: optional must be true or false")
        optional = False
    not_applicable = node.get("not_applicable", False)
    if not_applicable and kind != "scale":
        check.add(
            node.line_of("not_applicable"),
            f"item {item_id}: only scale items can be answered 'not applicable'",
        )
    return Item(
        id=item_id,
        kind=kind,
        text=text,
        optional=optional if kind != "intro" else True,
        not_applicable=bool(not_applicable),
        factor=factor,
        criterion=criterion,
        options=tuple(options),
        when=when,
    )


def _parse_condition(
    check: _Checker, node: Any, line: int, item_id: str, seen: dict[str, Item]
) -> Condition | None:
    if not isinstance(node, dict) or not isinstance(node.get("item"), str):
        check.add(line, f"item {item_id}: when needs 'item' and 'in'")
        return None
    target = node["item"]
    values = node.get("in")
    if target not in seen:
        check.add(
            line, f"item {item_id}: condition points to {target!r}, which is not an earlier item"
        )
        return None
    earlier = seen[target]
    if earlier.kind not in ("scale", "choice"):
        check.add(line, f"item {item_id}: condition on {target!r}, which has no numbered answers")
        return None
    if not isinstance(values, list) or not values or not all(isinstance(v, int) for v in values):
        check.add(line, f"item {item_id}: 'in' must list the answer numbers that ask this item")
        return None
    return Condition(target, frozenset(values))


def parse_questionnaire(text: str, source: str) -> Questionnaire:
    """Read and check a questionnaire; raises QuestionnaireError listing every problem."""
    data = load_yaml(text, source)
    check = _Checker(source)
    if not isinstance(data, LineDict):
        raise FileProblems([Problem(source, 1, "expected a mapping with id, version and items")])
    qid = data.get("id")
    if not isinstance(qid, str) or not _ID.match(qid):
        check.add(data.line_of("id"), "id: use lower-case letters, digits, - or _")
        qid = "?"
    version = data.get("version")
    if not isinstance(version, str | int | float) or isinstance(version, bool):
        check.add(data.line_of("version"), "version is missing")
        version = "?"
    raw_languages = data.get("languages")
    if (
        not isinstance(raw_languages, list)
        or not raw_languages
        or not all(language in ("vi", "en") for language in raw_languages)
    ):
        check.add(data.line_of("languages"), "languages must list vi and/or en")
        raw_languages = ["vi"]
    languages = tuple(raw_languages)
    if "vi" not in languages:
        check.add(data.line_of("languages"), "languages must include vi")
    title = check.translations(data.get("title"), data.line_of("title"), "title", languages)
    raw_items = data.get("items")
    items: list[Item] = []
    seen: dict[str, Item] = {}
    if not isinstance(raw_items, LineList) or not raw_items:
        check.add(data.line_of("items"), "items: expected a list of at least one item")
    else:
        for index, node in enumerate(raw_items):
            item = _parse_item(check, node, raw_items.line_of(index), languages, seen)
            if item is not None:
                items.append(item)
                seen.setdefault(item.id, item)
        if items and not any(item.is_question for item in items):
            check.add(raw_items.line, "items: no question to ask")
    if check.problems:
        raise FileProblems(check.problems)
    return Questionnaire(
        id=qid,
        version=str(version),
        languages=languages,
        title=title,
        items=tuple(items),
        source=source,
        source_text=text,
    )


def load_questionnaire(path: str | Path) -> Questionnaire:
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise FileProblems([Problem(str(path), 0, f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise FileProblems([Problem(str(path), 0, "not UTF-8 text")]) from None
    return parse_questionnaire(text, str(path))


def shipped_ids() -> list[str]:
    folder = resources.files("survey_flow").joinpath("questionnaires")
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_shipped(questionnaire_id: str) -> Questionnaire:
    if questionnaire_id not in shipped_ids():
        raise FileProblems(
            [
                Problem(
                    questionnaire_id,
                    0,
                    f"no shipped questionnaire has this id (shipped: {', '.join(shipped_ids())})",
                )
            ]
        )
    resource = resources.files("survey_flow").joinpath(f"questionnaires/{questionnaire_id}.yaml")
    return parse_questionnaire(resource.read_text("utf-8"), f"{questionnaire_id}.yaml")


def resolve(name_or_path: str) -> Questionnaire:
    """A shipped questionnaire by id, or an operator's file by path."""
    if name_or_path in shipped_ids():
        return load_shipped(name_or_path)
    return load_questionnaire(name_or_path)
