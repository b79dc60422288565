"""Citizen-facing texts, one YAML file per language under locales/."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from survey_flow.sourcefile import FileProblems, LineDict, Problem, load_yaml

LANGUAGES = ("vi", "en")


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


def load_texts() -> dict[str, Texts]:
    """Every language's texts; all languages must have the same keys."""
    texts = {language: _load_one(language) for language in LANGUAGES}
    reference = set(texts["vi"].strings)
    for language, t in texts.items():
        missing = reference ^ set(t.strings)
        if missing or set(t.scale) != {1, 2, 3, 4, 5}:
            raise FileProblems(
                [Problem(f"survey_flow/locales/{language}.yaml", 0, f"keys differ: {missing}")]
            )
    return texts
