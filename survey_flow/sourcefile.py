"""YAML that remembers where each mapping and value came from, for errors an operator can act on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file, at a line (1-based; 0 when it concerns the whole file)."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return (
            f"{self.source}:{self.line}: {self.message}"
            if self.line
            else (f"{self.source}: {self.message}")
        )


class FileProblems(Exception):
    """A file could not be used; `problems` lists everything found, each with its line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class LineDict(dict[str, Any]):
    """A mapping from YAML with the line of the mapping and of each key."""

    line: int = 0
    key_lines: dict[str, int]
    repeated: list[tuple[str, int]]  # keys given more than once (the last one wins), with lines
    scalar_text: dict[str, str]  # the text as written of each scalar value (`0012`, not 10)

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    result.repeated = []
    result.scalar_text = {}
    for key_node, value_node in node.value:
        key = str(loader.construct_object(key_node, deep=True))
        if key in result:
            result.repeated.append((key, key_node.start_mark.line + 1))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.ScalarNode):
            result.scalar_text[key] = str(value_node.value)
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML, raising FileProblems with the line for a syntax error."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise FileProblems([_syntax_problem(exc, source)]) from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise FileProblems([Problem(source, 0, f"not valid YAML: {exc}")]) from None


def load_yaml_documents(text: str, source: str) -> list[Any]:
    """Every document of a YAML stream (documents are separated by `---` lines)."""
    try:
        return list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        raise FileProblems([_syntax_problem(exc, source)]) from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise FileProblems([Problem(source, 0, f"not valid YAML: {exc}")]) from None


def _syntax_problem(exc: yaml.MarkedYAMLError, source: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 0
    return Problem(source, line, f"not valid YAML: {exc.problem}")


def line_of(node: Any, key: str | int | None = None) -> int:
    if isinstance(node, LineDict):
        return node.line_of(key) if isinstance(key, str) else node.line
    if isinstance(node, LineList):
        return node.line_of(key) if isinstance(key, int) else node.line
    return 0
