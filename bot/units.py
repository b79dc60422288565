"""The units file: units (wards, departments) with their counters, as YAML.

units:
  - code: HVT
    name: Phường Hoàng Văn Thụ
    questionnaire: sipas-short     # optional: a shipped id or a file path
    timezone: Asia/Ho_Chi_Minh     # optional: default TIMEZONE
    registration_code: HVT-7KQ2-M9XD-4TPA  # optional: leaders send DANGKY <code>; keep it
                                   # secret; a short or guessable one is refused
                                   # (`sipas-bot units new-code --unit HVT` makes one)
    leader_approval: false         # optional: a leader's DANGKY waits for `leaders approve`
    public_results: false          # optional: publish /u/<code>/results
    require_verified: false        # optional: only rotating or visit codes start a survey
    counters:
      - code: HVT01
        name: Quầy 1 – Tư pháp, hộ tịch
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.registration_codes import weakness
from storage.repositories import CounterSpec, UnitSpec
from survey_flow.matching import fold
from survey_flow.sourcefile import FileProblems, LineDict, LineList, Problem, load_yaml

_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")


def read_units_file(path: str | Path) -> list[UnitSpec]:
    """Parse and check the whole file; FileProblems lists every problem with its line."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise FileProblems([Problem(source, 0, f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise FileProblems([Problem(source, 0, "not UTF-8 text")]) from None
    data = load_yaml(text, source)
    problems: list[Problem] = []
    if not isinstance(data, LineDict) or not isinstance(data.get("units"), LineList):
        line = data.line_of("units") if isinstance(data, LineDict) else 1
        raise FileProblems([Problem(source, line, "expected `units:` followed by a list of units")])
    units: list[UnitSpec] = []
    unit_codes: set[str] = set()
    counter_codes: set[str] = set()
    code_lines: dict[str, int] = {}
    for index, node in enumerate(data["units"]):
        line = data["units"].line_of(index)
        if not isinstance(node, LineDict):
            problems.append(Problem(source, line, "a unit needs code, name and counters"))
            continue
        code = _code(node, "unit", unit_codes, problems, source)
        name = _name(node, f"unit {code}", problems, source)
        counters: list[CounterSpec] = []
        raw_counters = node.get("counters")
        if not isinstance(raw_counters, LineList) or not raw_counters:
            problems.append(
                Problem(
                    source,
                    node.line_of("counters"),
                    f"unit {code}: `counters` must list at least one counter",
                )
            )
        else:
            for c_index, c_node in enumerate(raw_counters):
                if not isinstance(c_node, LineDict):
                    problems.append(
                        Problem(
                            source, raw_counters.line_of(c_index), "a counter needs code and name"
                        )
                    )
                    continue
                c_code = _code(c_node, "counter", counter_codes, problems, source)
                c_name = _name(c_node, f"counter {c_code}", problems, source)
                counters.append(CounterSpec(c_code, c_name, _optional(c_node, "questionnaire")))
        timezone = _optional(node, "timezone")
        if timezone is not None:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                problems.append(
                    Problem(
                        source,
                        node.line_of("timezone"),
                        f"unit {code}: unknown time zone {timezone!r}",
                    )
                )
        public = _flag(node, "public_results", code, problems, source)
        require_verified = _flag(node, "require_verified", code, problems, source)
        code_lines[code] = node.line_of("registration_code")
        approval = node.get("leader_approval", False)
        if not isinstance(approval, bool):
            problems.append(
                Problem(
                    source,
                    node.line_of("leader_approval"),
                    f"unit {code}: leader_approval must be true or false",
                )
            )
            approval = False
        due_days = node.get("case_due_days")
        if due_days is not None and (
            isinstance(due_days, bool) or not isinstance(due_days, int) or not 1 <= due_days <= 90
        ):
            problems.append(
                Problem(
                    source,
                    node.line_of("case_due_days"),
                    f"unit {code}: case_due_days must be a whole number of working days, 1–90",
                )
            )
            due_days = None
        units.append(
            UnitSpec(
                code,
                name,
                counters,
                questionnaire=_optional(node, "questionnaire"),
                timezone=timezone,
                registration_code=_optional(node, "registration_code"),
                public_results=public,
                require_verified=require_verified,
                leader_approval=approval,
                case_due_days=due_days,
            )
        )
    # Codes are checked once every unit and counter code is known (none may be guessed from
    # them).
    known = frozenset(fold(c) for c in unit_codes | counter_codes)
    for unit in units:
        if unit.registration_code is None:
            continue
        why = weakness(
            unit.registration_code, unit_code=unit.code, other_codes=known - {fold(unit.code)}
        )
        if why is not None:
            problems.append(
                Problem(
                    source,
                    code_lines.get(unit.code, 0),
                    f"unit {unit.code}: registration_code {why}; "
                    f"`sipas-bot units new-code --unit {unit.code}` makes a strong one",
                )
            )
    if problems:
        raise FileProblems(problems)
    return units


def _code(node: LineDict, what: str, seen: set[str], problems: list[Problem], source: str) -> str:
    raw = node.get("code")
    # The code as written: YAML would read `0012` as the number 10.
    written = node.scalar_text.get("code") if raw is not None else None
    code = (written or "").strip().upper()
    if not _CODE.match(code):
        problems.append(
            Problem(
                source,
                node.line_of("code"),
                f"{what} code {raw!r}: use 1–32 letters, digits, - or _",
            )
        )
    elif code in seen:
        problems.append(Problem(source, node.line_of("code"), f"{what} code {code} is used twice"))
    seen.add(code)
    return code


def _name(node: LineDict, what: str, problems: list[Problem], source: str) -> str:
    name = node.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem(source, node.line_of("name"), f"{what}: name is missing"))
        return ""
    return name.strip()


def _flag(node: LineDict, key: str, unit: str, problems: list[Problem], source: str) -> bool:
    value = node.get(key, False)
    if not isinstance(value, bool):
        problems.append(
            Problem(source, node.line_of(key), f"unit {unit}: {key} must be true or false")
        )
        return False
    return value


def _optional(node: LineDict, key: str) -> Any:
    """A text setting as written (`004821` stays 004821, though YAML reads a number)."""
    if node.get(key) is None:
        return None
    return node.scalar_text.get(key, str(node[key])).strip()
