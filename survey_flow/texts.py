"""Citizen-facing texts, one YAML file per language under locales/."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from string import Formatter

from survey_flow.sourcefile import FileProblems, LineDict, Problem, load_yaml
from zalo_client.limits import BUTTON_TITLE_MAX

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"  # what a citizen gets in a language we have no texts for


@dataclass(frozen=True)
class Texts:
    language: str
    strings: Mapping[str, str]
    scale: Mapping[int, str]

    def __call__(self, key: str, **values: object) -> str:
        return self.strings[key].format(**values)


def _load_one(language: str) -> Texts:
    source = f"survey_flow/locales/{language}.yaml"
    data = load_yaml(
        resources.files("survey_flow").joinpath(f"locales/{language}.yaml").read_text("utf-8"),
        source,
    )
    if not isinstance(data, LineDict):
        raise FileProblems([Problem(source, 0, "expected a mapping of text keys")])
    scale = data.pop("scale", {})
    return Texts(
        language=language,
        strings={str(k): str(v) for k, v in data.items()},
        scale={int(k): str(v) for k, v in scale.items()},
    )


def texts_for(texts: Mapping[str, Texts], language: str | None) -> Texts:
    """The texts of `language`, or Vietnamese when there are none (or no language is known)."""
    return texts.get(language or DEFAULT_LANGUAGE) or texts[DEFAULT_LANGUAGE]


class LocalTexts(dict[str, Texts]):
    """Every language's texts, by language code, with the fallback to Vietnamese."""

    def of(self, language: str | None) -> Texts:
        return texts_for(self, language)


def load_texts() -> LocalTexts:
    """Every language's texts, checked: the same keys and {placeholders} in every language,
    a label for each scale point, button titles within Zalo's limit."""
    texts = {language: _load_one(language) for language in LANGUAGES}
    reference = texts["vi"]
    problems: list[Problem] = []
    for language, t in texts.items():
        source = f"survey_flow/locales/{language}.yaml"
        differ = set(reference.strings) ^ set(t.strings)
        if differ:
            problems.append(Problem(source, 0, f"keys differ from vi: {', '.join(sorted(differ))}"))
        if set(t.scale) != {1, 2, 3, 4, 5}:
            problems.append(Problem(source, 0, "scale: needs a label for each of 1–5"))
        for key in set(reference.strings) & set(t.strings):
            if _fields(t.strings[key]) != _fields(reference.strings[key]):
                problems.append(Problem(source, 0, f"{key}: placeholders differ from vi"))
        for title in [*t.scale.values(), t.strings.get("skip", "")]:
            if not title or len(title) > BUTTON_TITLE_MAX:
                problems.append(
                    Problem(source, 0, f"button title {title!r}: 1–{BUTTON_TITLE_MAX} characters")
                )
    if problems:
        raise FileProblems(problems)
    return LocalTexts(texts)


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name}
