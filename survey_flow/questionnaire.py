"""Questionnaires are versioned data: a YAML file per form, checked before it is ever asked.

A file names its id, version and languages and lists items in order. Kinds:
`scale` (1–5 with the SIPAS labels, optional "not applicable"), `choice` (numbered options;
up to 5 become buttons, more become a numbered list answered by typing the number),
`text` (free text, skippable when optional) and `intro` (a section heading, not a question).
An item may carry `when: {item: ID, in: [values]}` to be asked only after a matching answer.

An item `- include: NAME` puts a block's items in its place: a shipped block from
`questionnaires/blocks/NAME.yaml`, or a `.yaml` file next to the questionnaire. The text kept
for a version (`source_text`) is the file followed by each included block as another YAML
document, so a stored survey never depends on a block file that changed since.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from survey_flow.sipas import CRITERIA_BY_FACTOR, FACTORS
from survey_flow.sourcefile import (
    FileProblems,
    LineDict,
    LineList,
    Problem,
    line_of,
    load_yaml,
    load_yaml_documents,
)
from survey_flow.texts import LANGUAGES
from zalo_client.limits import BUTTON_TITLE_MAX, MAX_BUTTONS

KINDS = ("scale", "choice", "text", "intro")
MAX_OPTIONS = 20  # beyond 5 the options are a numbered list; past 20 nobody reads it in a chat
TEXT_MAX = 1500  # leaves room for the progress line and hints within Zalo's 2,000
NOT_APPLICABLE = 0  # the stored value of a "không áp dụng" answer on a scale item
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_QUESTIONNAIRE_FIELDS = ("id", "version", "languages", "title", "items")
_BLOCK_FIELDS = ("block", "items")
_ITEM_FIELDS = (
    "id",
    "kind",
    "text",
    "optional",
    "not_applicable",
    "factor",
    "criterion",
    "options",
    "when",
)

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
    source: str = field(default="", compare=False)  # the file (or block file) it is written in
    line: int = field(default=0, compare=False)

    @property
    def is_question(self) -> bool:
        return self.kind != "intro"

    def valid_values(self) -> frozenset[int]:
        """The numbers an answer to this item may hold (empty for text and intros)."""
        if self.kind == "scale":
            return frozenset(range(1, 6)) | ({NOT_APPLICABLE} if self.not_applicable else set())
        if self.kind == "choice":
            return frozenset(option.value for option in self.options)
        return frozenset()


@dataclass(frozen=True)
class Questionnaire:
    id: str
    version: str
    languages: tuple[str, ...]
    title: Mapping[str, str]
    items: tuple[Item, ...]
    blocks: tuple[str, ...] = ()
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

    @property
    def questions(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.is_question)


class _Checker:
    """Collects every problem in a file instead of stopping at the first."""

    def __init__(self, source: str, problems: list[Problem] | None = None) -> None:
        self.source = source
        self.problems: list[Problem] = [] if problems is None else problems

    def for_source(self, source: str) -> _Checker:
        """A checker for another file (a block) reporting into the same list."""
        return _Checker(source, self.problems)

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.source, line, message))

    def fields(self, node: LineDict, known: Iterable[str], what: str) -> None:
        for key, line in node.repeated:
            self.add(line, f"{what}: {key!r} is given twice")
        for key in node:
            if key not in known:
                self.add(node.line_of(key), f"{what}: unknown field {key!r}")

    def translations(
        self, node: Any, line: int, what: str, languages: tuple[str, ...]
    ) -> dict[str, str]:
        if isinstance(node, str) and len(languages) == 1:
            return {languages[0]: node.strip()} if node.strip() else self._empty(line, what)
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

    def _empty(self, line: int, what: str) -> dict[str, str]:
        self.add(line, f"{what}: the text is empty")
        return {}


@dataclass(frozen=True)
class _Raw:
    """An item as written, with where to report its problems (the file or a block file)."""

    node: Any
    line: int
    check: _Checker


def _parse_item(
    raw: _Raw,
    languages: tuple[str, ...],
    seen: dict[str, Item],
    positions: Mapping[str, int],
    index: int,
) -> Item | None:
    check, node, line = raw.check, raw.node, raw.line
    if not isinstance(node, LineDict):
        check.add(line, "an item must be a mapping with id, kind and text")
        return None
    item_id = node.get("id")
    if not isinstance(item_id, str) or not _ID.match(item_id):
        check.add(
            node.line_of("id"),
            f"item id {item_id!r}: use 1–48 lower-case letters, digits, - or _",
        )
        item_id = f"?{line}"
    elif item_id in seen:
        check.add(node.line_of("id"), f"item id {item_id!r} is used twice")
    check.fields(node, _ITEM_FIELDS, f"item {item_id}")
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

    factor, criterion = _parse_factor(check, node, item_id, kind)
    options = _parse_options(check, node, item_id, kind, languages)

    when = None
    if node.get("when") is not None:
        when = _parse_condition(check, node, item_id, seen, positions, index)

    optional = node.get("optional", kind == "text")
    if not isinstance(optional, bool):
        check.add(node.line_of("optional"), f"item {item_id}: optional must be true or false")
        optional = False
    not_applicable = node.get("not_applicable", False)
    if not isinstance(not_applicable, bool):
        check.add(
            node.line_of("not_applicable"),
            f"item {item_id}: not_applicable must be true or false",
        )
        not_applicable = False
    elif not_applicable and kind != "scale":
        check.add(
            node.line_of("not_applicable"),
            f"item {item_id}: only scale items can be answered 'not applicable'",
        )
        not_applicable = False
    return Item(
        id=item_id,
        kind=kind,
        text=text,
        optional=optional if kind != "intro" else True,
        not_applicable=not_applicable,
        factor=factor,
        criterion=criterion,
        options=options,
        when=when,
        source=check.source,
        line=line,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_factor(
    check: _Checker, node: LineDict, item_id: str, kind: str
) -> tuple[int | None, int | None]:
    factor = node.get("factor")
    criterion = node.get("criterion")
    if kind != "scale":
        if factor is not None or criterion is not None:
            key = "factor" if factor is not None else "criterion"
            check.add(node.line_of(key), f"item {item_id}: only scale items name a factor")
        return None, None
    if not _is_int(factor) or factor not in FACTORS:
        check.add(
            node.line_of("factor"), f"item {item_id}: a scale item needs factor 1–5 (SIPAS factor)"
        )
        return None, None
    if criterion is not None and (
        not _is_int(criterion) or criterion not in CRITERIA_BY_FACTOR[factor]
    ):
        numbers = CRITERIA_BY_FACTOR[factor]
        check.add(
            node.line_of("criterion"),
            f"item {item_id}: criterion {criterion!r} is not one of factor {factor}'s "
            f"({numbers[0]}–{numbers[-1]})",
        )
        return factor, None
    return factor, criterion


def _parse_options(
    check: _Checker, node: LineDict, item_id: str, kind: str, languages: tuple[str, ...]
) -> tuple[Option, ...]:
    if kind != "choice":
        if "options" in node:
            check.add(node.line_of("options"), f"item {item_id}: only choice items have options")
        return ()
    raw = node.get("options")
    if not isinstance(raw, LineList) or len(raw) < 2:
        check.add(node.line_of("options"), f"item {item_id}: a choice needs at least 2 options")
        return ()
    if len(raw) > MAX_OPTIONS:
        check.add(
            node.line_of("options"),
            f"item {item_id}: {len(raw)} options, at most {MAX_OPTIONS} "
            f"(up to {MAX_BUTTONS} are buttons, more a numbered list)",
        )
    options: list[Option] = []
    for number, option in enumerate(raw, start=1):
        line = raw.line_of(number - 1)
        label = check.translations(option, line, f"item {item_id} option {number}", languages)
        if len(raw) <= MAX_BUTTONS:
            for language, value in label.items():
                if len(value) > BUTTON_TITLE_MAX:
                    check.add(
                        line,
                        f"item {item_id} option {number}: {language} button title {value!r} "
                        f"has {len(value)} characters, over Zalo's {BUTTON_TITLE_MAX}",
                    )
        options.append(Option(number, label))
    return tuple(options)


def _parse_condition(
    check: _Checker,
    node: LineDict,
    item_id: str,
    seen: Mapping[str, Item],
    positions: Mapping[str, int],
    index: int,
) -> Condition | None:
    raw = node["when"]
    line = node.line_of("when")
    if not isinstance(raw, LineDict) or not isinstance(raw.get("item"), str) or "in" not in raw:
        check.add(line, f"item {item_id}: when needs 'item' (an earlier item's id) and 'in'")
        return None
    check.fields(raw, ("item", "in"), f"item {item_id}: when")
    target = raw["item"]
    values = raw["in"]
    if target not in seen:
        position = positions.get(target)
        if position is None:
            check.add(line, f"item {item_id}: condition points to {target!r}: no item has that id")
        elif position == index:
            check.add(line, f"item {item_id}: condition points to the item itself")
        else:
            check.add(
                line,
                f"item {item_id}: condition points to {target!r}, which comes later; "
                "a condition can only look at an earlier answer",
            )
        return None
    earlier = seen[target]
    if earlier.kind not in ("scale", "choice"):
        check.add(line, f"item {item_id}: condition on {target!r}, which has no numbered answers")
        return None
    if not isinstance(values, list) or not values or not all(_is_int(v) for v in values):
        check.add(
            raw.line_of("in"),
            f"item {item_id}: 'in' must list the answer numbers that ask this item",
        )
        return None
    invalid = sorted(set(values) - earlier.valid_values())
    if invalid:
        check.add(
            raw.line_of("in"),
            f"item {item_id}: {target!r} cannot be answered "
            f"{', '.join(str(v) for v in invalid)} "
            f"(its answers: {', '.join(str(v) for v in sorted(earlier.valid_values()))})",
        )
        return None
    return Condition(target, frozenset(values))


def _read_block(check: _Checker, name: str, line: int, folder: Path | None) -> tuple[str, str]:
    """The text and source name of a block; FileProblems when it cannot be read."""
    if name in shipped_blocks():
        resource = resources.files("survey_flow").joinpath(f"questionnaires/blocks/{name}.yaml")
        return resource.read_text("utf-8"), f"blocks/{name}.yaml"
    if not name.endswith((".yaml", ".yml")):
        raise FileProblems(
            [
                Problem(
                    check.source,
                    line,
                    f"include {name!r}: no shipped block has that name "
                    f"(shipped: {', '.join(shipped_blocks())}; or a path to a .yaml file)",
                )
            ]
        )
    path = Path(name)
    if not path.is_absolute() and folder is not None:
        path = folder / path
    try:
        return path.read_text("utf-8"), str(path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise FileProblems([Problem(check.source, line, f"include {name!r}: {reason}")]) from None
    except UnicodeDecodeError:
        raise FileProblems(
            [Problem(check.source, line, f"include {name!r}: not UTF-8 text")]
        ) from None
    except ValueError:
        raise FileProblems(
            [Problem(check.source, line, f"include {name!r}: not a usable path")]
        ) from None


def _block_items(check: _Checker, document: Any, name: str, line: int) -> list[_Raw]:
    if not isinstance(document, LineDict) or not isinstance(document.get("items"), LineList):
        check.add(
            line_of(document) or line, f"block {name}: expected `block: NAME` and `items:` a list"
        )
        return []
    check.fields(document, _BLOCK_FIELDS, f"block {name}")
    if not isinstance(document.get("block"), str) or not _ID.match(document["block"]):
        check.add(document.line_of("block"), f"block {name}: `block:` must name it (an id)")
    items = document["items"]
    result: list[_Raw] = []
    for index, node in enumerate(items):
        if isinstance(node, LineDict) and "include" in node:
            check.add(items.line_of(index), f"block {name}: a block cannot include another block")
            continue
        result.append(_Raw(node, items.line_of(index), check))
    if not result:
        check.add(items.line, f"block {name}: no items")
    return result


def _expand(
    check: _Checker, raw_items: LineList, kept: list[Any], folder: Path | None
) -> tuple[list[_Raw], list[tuple[str, str]]]:
    """The items with each `include:` replaced by its block's items, and the blocks read.

    `kept` holds the blocks of a stored version (the documents after the first); when there
    are any, they answer the includes in order and no block file is read.
    """
    result: list[_Raw] = []
    blocks: list[tuple[str, str]] = []
    for index, node in enumerate(raw_items):
        line = raw_items.line_of(index)
        if not (isinstance(node, LineDict) and "include" in node):
            result.append(_Raw(node, line, check))
            continue
        name = node["include"]
        if len(node) > 1:
            check.add(line, "an include item takes nothing but the block's name")
        if not isinstance(name, str) or not name.strip():
            check.add(line, "include: name a block (e.g. `- include: profile`)")
            continue
        if name in (included for included, _ in blocks):
            check.add(line, f"block {name!r} is included twice")
            continue
        if kept:
            if len(blocks) >= len(kept):
                check.add(line, f"include {name!r}: the kept text has no document for it")
                continue
            blocks.append((name, ""))
            result.extend(_block_items(check, kept[len(blocks) - 1], name, line))
            continue
        try:
            text, source = _read_block(check, name, line, folder)
            document = load_yaml(text, source)
        except FileProblems as exc:
            check.problems.extend(exc.problems)
            continue
        blocks.append((name, text))
        result.extend(_block_items(check.for_source(source), document, name, line))
    if kept and len(kept) != len(blocks):
        check.add(
            0,
            f"the file holds {len(kept) + 1} YAML documents: a questionnaire is one document; "
            "add blocks with `- include: NAME` instead",
        )
    return result, blocks


def _bundle(text: str, blocks: list[tuple[str, str]]) -> str:
    """The text kept for a version: the file, then each included block as another document."""
    if not blocks:
        return text
    parts = [text.rstrip("\n") + "\n"]
    for name, block_text in blocks:
        parts.append(f"--- # include: {name}\n{block_text.rstrip()}\n")
    return "".join(parts)


def parse_questionnaire(text: str, source: str, *, folder: Path | None = None) -> Questionnaire:
    """Read and check a questionnaire; raises QuestionnaireError listing every problem.

    `folder` is where included block files named by a relative path are looked for.
    """
    documents = load_yaml_documents(text, source)
    check = _Checker(source)
    data = documents[0] if documents else None
    kept = documents[1:]
    if not isinstance(data, LineDict):
        raise FileProblems([Problem(source, 1, "expected a mapping with id, version and items")])
    check.fields(data, _QUESTIONNAIRE_FIELDS, "questionnaire")
    qid = data.get("id")
    if not isinstance(qid, str) or not _ID.match(qid):
        check.add(data.line_of("id"), "id: use 1–48 lower-case letters, digits, - or _")
        qid = "?"
    version = _parse_version(check, data)
    raw_languages = data.get("languages")
    if (
        not isinstance(raw_languages, list)
        or not raw_languages
        or not all(language in LANGUAGES for language in raw_languages)
        or len(set(raw_languages)) != len(raw_languages)
    ):
        check.add(data.line_of("languages"), "languages must list vi and/or en, e.g. [vi, en]")
        raw_languages = ["vi"]
    languages = tuple(raw_languages)
    if "vi" not in languages:
        check.add(data.line_of("languages"), "languages must include vi")
    title = check.translations(data.get("title"), data.line_of("title"), "title", languages)
    raw_items = data.get("items")
    items: list[Item] = []
    blocks: list[tuple[str, str]] = []
    if not isinstance(raw_items, LineList) or not raw_items:
        check.add(data.line_of("items"), "items: expected a list of at least one item")
    else:
        expanded, blocks = _expand(check, raw_items, kept, folder)
        positions: dict[str, int] = {}
        for index, raw in enumerate(expanded):
            if isinstance(raw.node, LineDict) and isinstance(raw.node.get("id"), str):
                positions.setdefault(raw.node["id"], index)
        seen: dict[str, Item] = {}
        for index, raw in enumerate(expanded):
            item = _parse_item(raw, languages, seen, positions, index)
            if item is not None:
                items.append(item)
                seen.setdefault(item.id, item)
        if items and not any(item.is_question for item in items):
            check.add(raw_items.line, "items: no question to ask")
    if check.problems:
        # The file's own problems first, then each block's, each in line order.
        raise FileProblems(
            sorted(check.problems, key=lambda p: (p.source != source, p.source, p.line))
        )
    return Questionnaire(
        id=qid,
        version=version,
        languages=languages,
        title=title,
        items=tuple(items),
        blocks=tuple(name for name, _ in blocks),
        source=source,
        source_text=text if kept else _bundle(text, blocks),
    )


def _parse_version(check: _Checker, data: LineDict) -> str:
    version = data.get("version")
    line = data.line_of("version")
    if isinstance(version, float):
        check.add(
            line,
            'version: put it in quotes, e.g. version: "2026.1" (unquoted, a number such as '
            "2026.10 reads as 2026.1)",
        )
        return "?"
    if not isinstance(version, str | int) or isinstance(version, bool):
        check.add(line, 'version is missing (e.g. version: "2026.1")')
        return "?"
    if not _VERSION.match(str(version)):
        check.add(line, "version: use up to 32 letters, digits, '.', '-' or '_'")
        return "?"
    return str(version)


def load_questionnaire(path: str | Path) -> Questionnaire:
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise FileProblems([Problem(str(path), 0, f"cannot read: {reason}")]) from None
    except UnicodeDecodeError:
        raise FileProblems([Problem(str(path), 0, "not UTF-8 text")]) from None
    except ValueError:
        raise FileProblems([Problem(repr(str(path)), 0, "not a usable path")]) from None
    return parse_questionnaire(text, str(path), folder=path.parent)


def _yaml_names(folder: str) -> list[str]:
    directory = resources.files("survey_flow").joinpath(folder)
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in directory.iterdir()
        if entry.name.endswith(".yaml") and entry.is_file()
    )


def shipped_ids() -> list[str]:
    return _yaml_names("questionnaires")


def shipped_blocks() -> list[str]:
    return _yaml_names("questionnaires/blocks")


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
    if not name_or_path.endswith((".yaml", ".yml")) and not Path(name_or_path).exists():
        raise FileProblems(
            [
                Problem(
                    name_or_path,
                    0,
                    "no shipped questionnaire has this id and no file this path "
                    f"(shipped: {', '.join(shipped_ids())})",
                )
            ]
        )
    return load_questionnaire(name_or_path)
