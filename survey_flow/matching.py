"""Reading what a citizen typed, the way people type on a phone.

Case, spacing and Vietnamese diacritics never matter; abbreviations (`ko`, `hok`, `dc`),
casual words (`tốt`, `tạm được`, `quá tệ`), number words, `5 sao`, `4/5`, emoji and small
typos are understood through the vocabulary in locales/answers.yaml. What is not clearly one
answer is said to be so, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources

import yaml
from rapidfuzz.distance import OSA, Levenshtein

_NON_WORD = re.compile(r"[^\w/#:.-]+")
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Lower case, no diacritics (đ → d), punctuation dropped, single spaces.

    `Rất  hài lòng!` and `rat hai long` both fold to `rat hai long`.
    """
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    stripped = _NON_WORD.sub(" ", stripped.lower())
    return _SPACES.sub(" ", stripped).strip(" .-")


_NUMBER = re.compile(r"^(\d{1,2})(?:\s*(?:/\s*\d+|sao|diem|d|\*|stars?|points?))?$")


def leading_number(folded: str) -> int | None:
    """`5`, `5 sao`, `5/5`, `4 diem` → the number; anything else → None."""
    match = _NUMBER.match(folded)
    return int(match.group(1)) if match else None


COMMAND_WORDS: dict[str, frozenset[str]] = {
    "restart": frozenset({"lam lai", "bat dau lai", "restart", "start over"}),
    "cancel": frozenset({"huy", "huy bo", "cancel", "thoi"}),
    "help": frozenset({"huong dan", "tro giup", "help", "?"}),
    "back": frozenset({"sua", "sua lai", "sua cau truoc", "quay lai", "back", "undo"}),
    "lang:en": frozenset({"english", "tieng anh", "en"}),
    "lang:vi": frozenset({"tieng viet", "vietnamese", "vi"}),
}

SKIP_WORDS = frozenset({"bo qua", "skip", "khong co", "khong", "no", "none", "-"})


def command_of(folded: str) -> str | None:
    for command, words in COMMAND_WORDS.items():
        if folded in words:
            return command
    return None


def command_in(text: str) -> str | None:
    """The command a message is (`restart`, `cancel`, `help`, `lang:en`, `lang:vi`), or None."""
    if text.strip() in ("?", "？"):
        return "help"
    return command_of(fold(text))


# --- reading a typed answer ----------------------------------------------------------------
#
# The vocabulary is data (locales/answers.yaml). A typed message is folded, cut into words,
# numbers and signs, its abbreviations expanded; then it is read, in this order, as a
# number ("5 sao", "4/5", "4,5"), as phrases of the vocabulary (longest first), as emoji or
# stars, and last as a phrase with a small typo. Whatever is not clearly one answer is
# returned as such (BETWEEN, NONE, …): the engine asks back and never records a guess.


class ReadingKind(StrEnum):
    """What a typed message says about a scale or a choice."""

    VALUE = "value"  # one level (or option): values == (v,)
    BETWEEN = "between"  # two levels (or options) named at once: values == (a, b), a < b
    NOT_APPLICABLE = "not_applicable"  # "không áp dụng", 0
    DONT_KNOW = "dont_know"  # "không biết"
    YES_NO = "yes_no"  # a bare "không" / "có": names no level
    SKIP = "skip"  # "bỏ qua"
    NONE = "none"  # nothing understood


@dataclass(frozen=True)
class Reading:
    """A typed message's meaning: its kind, and the level(s) or option(s) it names."""

    kind: ReadingKind
    values: tuple[int, ...] = ()


NOTHING = Reading(ReadingKind.NONE)


@dataclass(frozen=True)
class Vocabulary:
    """locales/answers.yaml, folded and cut into words once."""

    abbreviations: Mapping[str, tuple[str, ...]]
    fillers: frozenset[tuple[str, ...]]
    long_fillers: frozenset[tuple[str, ...]]  # the fillers of two words or more
    units: frozenset[str]
    out_of: frozenset[tuple[str, ...]]
    separators: frozenset[str]
    number_words: Mapping[str, int]
    contrast: frozenset[tuple[str, ...]]
    negations: frozenset[str]
    phrases: Mapping[tuple[str, ...], Reading]
    emoji: Mapping[str, int]
    stars: frozenset[str]


_TOKEN = re.compile(r"[0-9]+(?:[.,][0-9]+)?|[^\W\d_]+|[/*~,?-]")
_RUN = re.compile(r"([^\W\d_])\1{2,}")  # `tottt`, `okkk`, `hài lònggg`
_EMOJI_NOISE = re.compile("[\ufe0f\ufe0e\u200d\U0001f3fb-\U0001f3ff]")
_MIDDLE = 3
_DECIMAL = re.compile(r"^([0-9])[.,]([0-9])$")
_ASCII_NUMBER = re.compile(r"^[0-9]")  # `¹`, `٣` are digits to Python, not to a citizen


def _integer(token: str) -> bool:
    return token.isascii() and token.isdigit()


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _words(phrase: str) -> tuple[str, ...]:
    return tuple(_strip_marks(phrase).split())


@cache
def vocabulary() -> Vocabulary:
    """The shipped vocabulary (read once: it is package data, not configuration)."""
    raw = yaml.safe_load(
        resources.files("survey_flow").joinpath("locales/answers.yaml").read_text("utf-8")
    )
    abbreviations = {
        short: _words(full) for full, shorts in raw["abbreviations"].items() for short in shorts
    }

    def normal(phrase: str) -> tuple[str, ...]:
        return tuple(w for word in _words(phrase) for w in abbreviations.get(word, (word,)))

    phrases: dict[tuple[str, ...], Reading] = {}

    def add(entries: list[str], reading: Reading) -> None:
        for entry in entries:
            key = normal(str(entry))
            if phrases.get(key, reading) != reading:
                raise ValueError(f"answers.yaml: {entry!r} has two meanings")
            phrases[key] = reading

    for level, entries in raw["levels"].items():
        add(entries, Reading(ReadingKind.VALUE, (int(level),)))
    for pair, entries in raw["between"].items():
        low, high = sorted(int(v) for v in str(pair).split(","))
        add(entries, Reading(ReadingKind.BETWEEN, (low, high)))
    add(raw["not_applicable"], Reading(ReadingKind.NOT_APPLICABLE))
    add(raw["dont_know"], Reading(ReadingKind.DONT_KNOW))
    add(raw["yes_no"], Reading(ReadingKind.YES_NO))
    add(raw["skip"], Reading(ReadingKind.SKIP))
    fillers = frozenset(normal(f) for f in raw["fillers"])
    return Vocabulary(
        abbreviations=abbreviations,
        fillers=fillers,
        long_fillers=frozenset(f for f in fillers if len(f) > 1),
        units=frozenset(str(u) for u in raw["units"]),
        out_of=frozenset(normal(o) for o in raw["out_of"]),
        separators=frozenset(str(s) for s in raw["number_separators"]),
        number_words={
            unicodedata.normalize("NFC", str(word)): int(n)
            for n, words in raw["number_words"].items()
            for word in words
        },
        contrast=frozenset(normal(c) for c in raw["contrast"]),
        negations=frozenset(str(n) for n in raw["negations"]),
        phrases=phrases,
        emoji={
            _EMOJI_NOISE.sub("", e): int(level)
            for level, marks in raw["emoji"].items()
            for e in marks
        },
        stars=frozenset(raw["stars"]),
    )


@dataclass(frozen=True)
class _Typed:
    """A message cut up: its tokens (words expanded, numbers, signs), emoji levels, stars."""

    tokens: tuple[str, ...]
    emoji: tuple[int, ...]
    stars: int
    question: bool
    number_words: Mapping[str, int]  # folded word → number, for number words typed as such

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(t for t in self.tokens if t.isalpha())


def _cut(text: str, v: Vocabulary) -> _Typed:
    clean = _EMOJI_NOISE.sub("", text)
    emoji = tuple(v.emoji[ch] for ch in clean if ch in v.emoji)
    stars = sum(1 for ch in clean if ch in v.stars)
    tokens: list[str] = []
    for token in _TOKEN.findall(_RUN.sub(r"\1", _strip_marks(clean))):
        tokens += v.abbreviations.get(token, (token,))
    # A number word counts only as typed: `hai` is two, `hài` (of hài lòng) is not.
    numbers = {
        _strip_marks(word): v.number_words[word]
        for word in re.findall(r"[^\W\d_]+", unicodedata.normalize("NFC", clean.lower()))
        if word in v.number_words
    }
    return _Typed(tuple(tokens), emoji, stars, "?" in clean or "？" in clean, numbers)


def _without(words: tuple[str, ...], drop: frozenset[tuple[str, ...]]) -> tuple[str, ...]:
    """`words` without any of the `drop` phrases (longest first)."""
    kept: list[str] = []
    i = 0
    longest = max((len(d) for d in drop), default=0)
    while i < len(words):
        for size in range(min(longest, len(words) - i), 0, -1):
            if words[i : i + size] in drop:
                i += size
                break
        else:
            kept.append(words[i])
            i += 1
    return tuple(kept)


def _number_reading(typed: _Typed, v: Vocabulary, top: int) -> Reading | None:
    """A message made of numbers only (and fillers, units): `5`, `5 sao`, `4/5`, `năm`,
    `4,5`, `3-4`, `4 hoặc 5`. None when the message is not one; NONE when it makes no
    sense as an answer (`6`, `3/10`, `1 2 3`)."""
    stars = typed.stars + (len(typed.tokens) if set(typed.tokens) == {"*"} else 0)
    if stars and set(typed.tokens) <= {"*"}:
        # ⭐⭐⭐⭐ or ****: as many stars as the level.
        return Reading(ReadingKind.VALUE, (stars,)) if stars <= top else NOTHING
    tokens = tuple(t for t in typed.tokens if t != "?")
    tokens = _without(tokens, v.fillers)
    tokens = tuple("/" if (t,) in v.out_of else t for t in tokens)
    numbers: list[str] = []
    slash = False
    for token in tokens:
        if token in v.units:
            continue
        if token in v.separators:
            numbers.append(",")
        elif token == "/":
            slash = True
            numbers.append("/")
        elif token in typed.number_words:
            numbers.append(str(typed.number_words[token]))
        elif _ASCII_NUMBER.match(token):
            numbers.append(token)
        else:
            return None
    if not any(_ASCII_NUMBER.match(n) for n in numbers):
        return None
    if slash:
        # `4/5`, `4 trên 5`: a rating out of 5; out of anything else is no level of ours.
        if len(numbers) == 3 and numbers[1] == "/" and numbers[2] == "5" and _integer(numbers[0]):
            numbers = numbers[:1]
        else:
            return NOTHING
    if len(numbers) == 1 and (decimal := _DECIMAL.match(numbers[0])):
        # `4,5`, `4.5`: a decimal between two neighbours, or a list of two of them.
        low, high = int(decimal[1]), int(decimal[2])
        return _two(low, high, top) if high == low + 1 else NOTHING
    if not all(_integer(n) or n == "," for n in numbers) or numbers[0] == ",":
        return NOTHING
    values = [int(n) for n in numbers if n != ","]
    if len(values) == 1:
        value = values[0]
        if value == 0:
            return Reading(ReadingKind.NOT_APPLICABLE)
        return Reading(ReadingKind.VALUE, (value,)) if 1 <= value <= top else NOTHING
    if len(values) == 2:
        return _two(values[0], values[1], top)
    return NOTHING


def _two(a: int, b: int, top: int) -> Reading:
    if not (1 <= a <= top and 1 <= b <= top):
        return NOTHING
    if a == b:
        return Reading(ReadingKind.VALUE, (a,))
    return Reading(ReadingKind.BETWEEN, (min(a, b), max(a, b)))


def _phrases(
    words: tuple[str, ...], phrases: Mapping[tuple[str, ...], Reading]
) -> tuple[list[tuple[Reading, int, int]], tuple[str, ...]]:
    """The phrases found in `words`, longest first from the left, each with its length in
    words and where it starts, and the words left over."""
    found: list[tuple[Reading, int, int]] = []
    rest: list[str] = []
    longest = max(len(p) for p in phrases)
    i = 0
    while i < len(words):
        for size in range(min(longest, len(words) - i), 0, -1):
            reading = phrases.get(words[i : i + size])
            if reading is not None:
                found.append((reading, size, i))
                i += size
                break
        else:
            rest.append(words[i])
            i += 1
    return found, tuple(rest)


def _fuzzy(words: tuple[str, ...], phrases: Mapping[tuple[str, ...], Reading]) -> Reading:
    """A small typo (`hài lòg`, `kông hài lòng`): the one meaning a phrase of the same words
    has within a safe edit distance, when no phrase of another meaning comes close.

    Word by word (see `_word_distance`); words typed together (`khônghàilòng`) are compared
    without spaces, exactly. Of the phrases of every other meaning, the nearest (as text)
    must be at least 2 edits further than the phrase found.
    """
    if not words:
        return NOTHING
    typed = " ".join(words)
    joined = "".join(words)
    candidates: dict[Reading, int] = {}
    as_text: dict[Reading, int] = {}
    for phrase, reading in phrases.items():
        text = " ".join(phrase)
        as_text[reading] = min(as_text.get(reading, 99), Levenshtein.distance(typed, text))
        if len(phrase) == len(words):
            distance = _word_distance(words, phrase)
        else:
            distance = 0 if "".join(phrase) == joined else None
        if distance is not None:
            candidates[reading] = min(candidates.get(reading, 99), distance)
    if len(candidates) != 1:
        return NOTHING
    (winner,) = candidates
    nearest = as_text[winner]
    if any(other < nearest + 2 for reading, other in as_text.items() if reading != winner):
        return NOTHING
    return winner


def _word_distance(typed: tuple[str, ...], phrase: tuple[str, ...]) -> int | None:
    """Edits between two phrases of as many words, or None when they are too far apart.

    A vocabulary word of 4 letters or more may be one edit off (two from 8 letters): `lòg`
    is `lòng`. A short one (`tốt`, `ok`, `rất`) is never guessed on its own: it may be one
    edit off only beside a word of 4 letters or more typed exactly (`tuyệt vờj`), and only
    if no other word is off. A typed word of 1 or 2 letters is never guessed at all.
    """
    off = [(word, target) for word, target in zip(typed, phrase, strict=True) if word != target]
    if not off:
        return 0
    anchored = any(
        word == target and len(word) >= 4 for word, target in zip(typed, phrase, strict=True)
    )
    total = 0
    for word, target in off:
        distance = OSA.distance(word, target)  # a swap of two letters (`hìa`) is one edit
        if len(word) <= 2:
            return None
        if len(target) <= 3:
            if not anchored or len(off) > 1 or distance > 1:
                return None
        elif distance > (1 if len(target) < 8 else 2):
            return None
        total += distance
    return total


def _emoji_reading(levels: tuple[int, ...]) -> Reading:
    distinct = sorted(set(levels))
    if len(distinct) == 1:
        return Reading(ReadingKind.VALUE, (distinct[0],))
    if len(distinct) == 2 and distinct[1] - distinct[0] == 1:
        return Reading(ReadingKind.BETWEEN, (distinct[0], distinct[1]))
    return NOTHING


def _contains(words: tuple[str, ...], phrases: frozenset[tuple[str, ...]]) -> bool:
    return any(words[i : i + len(p)] == p for p in phrases for i in range(len(words) - len(p) + 1))


def read_scale(text: str) -> Reading:
    """What `text`, typed in answer to a question on the 5-level scale, says.

    A VALUE only when the message clearly names one level; two levels named at once
    (`4,5`, `3-4`, `tốt nhưng chậm`) are BETWEEN; anything unclear is NONE.
    """
    v = vocabulary()
    typed = _cut(text, v)
    number = _number_reading(typed, v, 5)
    if number is not None:
        return number
    # "cảm ơn" goes before phrases are looked for: its `ơn` is not `ổn`.
    spoken = _without(typed.words, v.long_fillers)
    words = _without(spoken, v.fillers)
    found, rest = _phrases(spoken, v.phrases)
    rest = _without(rest, v.fillers)
    if (rest or not found) and not typed.question:
        near = _fuzzy(words, v.phrases)
        if near != NOTHING:
            # `kông hài lòng` is a typo of one phrase, not `hài lòng` after an unknown word.
            return near
    if not found:
        return _emoji_reading(typed.emoji) if not words and typed.emoji else NOTHING
    readings = {reading for reading, _, _ in found}
    if len(readings) > 1:
        values = sorted({r.values[0] for r in readings if r.kind == ReadingKind.VALUE})
        if len(values) == 2 and len(readings) == 2:
            return Reading(ReadingKind.BETWEEN, (values[0], values[1]))
        return NOTHING
    reading = found[0][0]
    if typed.emoji and reading.kind == ReadingKind.VALUE:
        polarity = _polarity(reading.values[0])
        if any(_polarity(level) not in (polarity, 0) for level in typed.emoji):
            return NOTHING
    digits = [t for t in typed.tokens if _ASCII_NUMBER.match(t)]
    if digits:
        # `5 rất hài lòng` agrees with itself; `5 hài lòng` names two levels.
        if reading.kind != ReadingKind.VALUE or len(digits) != 1 or not _integer(digits[0]):
            return NOTHING
        return _two(reading.values[0], int(digits[0]), 5)
    if not rest:
        return reading
    if reading.kind != ReadingKind.VALUE:
        return NOTHING
    if _contains(rest, v.contrast):
        # "tốt nhưng chậm": the level named, or its neighbour towards the middle.
        level = reading.values[0]
        other = level - 1 if level > _MIDDLE else level + 1 if level < _MIDDLE else 2
        return Reading(ReadingKind.BETWEEN, (min(level, other), max(level, other)))
    if typed.question or any(_near_negation(word, v) for word in rest):
        return NOTHING
    # "rất hài lòng với cán bộ": a phrase of two words or more that opens the message says
    # it even with more words after it. Words before it may turn it around ("chẳng hề hài
    # lòng"), and a lone `tốt` or `được` among other words may be about something else.
    _, size, start = found[0]
    opens = not _without(spoken[:start], v.fillers)
    return reading if size >= 2 and opens else NOTHING


def _near_negation(word: str, v: Vocabulary) -> bool:
    """`không`, `chưa`, `not`, or a typo of one (`kông`)."""
    return any(
        word == negation or (len(word) >= 4 and Levenshtein.distance(word, negation) <= 1)
        for negation in v.negations
    )


def _polarity(level: int) -> int:
    return (level > _MIDDLE) - (level < _MIDDLE)


def read_choice(text: str, options: Sequence[Sequence[str]]) -> Reading:
    """What `text` says about a choice between `options` (each given by its labels in every
    language; option n is numbered n): its words (abbreviations expanded, `trên 60`), its
    number, or its words with a small typo. Two numbers at once are BETWEEN."""
    v = vocabulary()
    typed = _cut(text, v)
    labels: dict[tuple[str, ...], Reading] = {}
    for value, option in enumerate(options, start=1):
        for label in option:
            key = _spelled(_cut(label, v))
            if key and labels.get(key) not in (None, Reading(ReadingKind.VALUE, (value,))):
                labels[key] = NOTHING  # two options with the same words: neither
            else:
                labels[key] = Reading(ReadingKind.VALUE, (value,))
    spelled = _spelled(typed)
    exact = labels.get(spelled) or labels.get(_without(spelled, v.fillers))
    if exact is not None:
        return exact
    number = _number_reading(typed, v, len(options))
    if number is not None and number.kind != ReadingKind.NOT_APPLICABLE:
        return number
    if v.phrases.get(typed.words, NOTHING).kind == ReadingKind.SKIP:
        return v.phrases[typed.words]
    words = _without(typed.words, v.fillers)
    return _fuzzy(words, {k: r for k, r in labels.items() if r != NOTHING and k})


def _spelled(typed: _Typed) -> tuple[str, ...]:
    """The words and numbers of a message, without signs: `18-25` and `18–25` are alike."""
    return tuple(token for token in typed.tokens if token.isalnum())
