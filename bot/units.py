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
    opening_hours: "mon-fri 07:30-17:00, sat 07:30-11:30"  # optional, in the unit's time
                                   # zone: surveys started outside them are held for review
    counters:
      - code: HVT01
        name: Quầy 1 – Tư pháp, hộ tịch
    officers:                      # optional: who may sign in to a counter for a shift
      - code: CB01                 # (docs/channels.md); names are staff's personal data
        name: Nguyễn Văn A


Many Official Accounts on one deployment (docs/deploy.md, "A province on one deployment"):
an `oas` list names each OA and where its secrets are (never the secrets themselves), and
each unit names its OA with `oa:` (not needed when the file names one OA). Without `oas`,
the one OA is the environment's (ZALO_OA_ID, ZALO_APP_ID, …), as before.

oas:
  - id: "388613280878808645"       # the OA's id (Zalo OA admin)
    name: Phường Hoàng Văn Thụ     # printed on the posters
    app_id: "360846524940903967"   # the Zalo app the OA is linked to
    app_secret: env:HVT_APP_SECRET           # env:NAME or file:NAME (ZALO_SECRETS_FILE)
    oa_secret_key: env:HVT_OA_SECRET_KEY     # the app's webhook "OA Secret Key"
    access_token: env:HVT_ACCESS_TOKEN       # optional: the first token pair
    refresh_token: env:HVT_REFRESH_TOKEN     #   (else `sipas-bot tokens set --oa …`)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import SECRET_REFERENCE, ConfigError
from bot.opening_hours import BadOpeningHours, OpeningHours
from bot.registration_codes import weakness
from storage.models import Unit
from storage.repositories import CounterSpec, OaSpec, OfficerSpec, UnitSpec
from survey_flow.matching import fold
from survey_flow.sourcefile import FileProblems, LineDict, LineList, Problem, load_yaml

_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,31}")
FILE_KEYS = ("units", "oas")
OA_KEYS = (
    "id",
    "name",
    "app_id",
    "app_secret",
    "oa_secret_key",
    "access_token",
    "refresh_token",
)
OA_SECRET_KEYS = ("app_secret", "oa_secret_key", "access_token", "refresh_token")
OA_REQUIRED_SECRETS = ("app_secret", "oa_secret_key")
_ZALO_ID = re.compile(r"[0-9]{1,32}")
# A scalar that looks like a key or token pasted in: long, no spaces, letters and digits.
_SECRET_LOOKING = re.compile(r"[A-Za-z0-9_-]{32,}")
UNIT_KEYS = (
    "oa",
    "code",
    "name",
    "questionnaire",
    "timezone",
    "registration_code",
    "public_results",
    "require_verified",
    "leader_approval",
    "opening_hours",
    "counters",
    "officers",
)
COUNTER_KEYS = ("code", "name", "questionnaire")
OFFICER_KEYS = ("code", "name")

QuestionnaireCheck = Callable[[str], str | None]
"""Given a questionnaire name from the file, why it cannot be used, or None when it can."""


def is_code(text: str) -> bool:
    """Whether `text` (any case) can be a unit or counter code: 1–32 ASCII letters, digits,
    - or _, starting with a letter or digit."""
    return _CODE.fullmatch(text.upper()) is not None


@dataclass(frozen=True)
class UnitsFile:
    """What a units file holds: its OAs (none: the environment's one) and its units."""

    oas: list[OaSpec]
    units: list[UnitSpec]


def read_units_file(
    path: str | Path, *, check_questionnaire: QuestionnaireCheck | None = None
) -> list[UnitSpec]:
    """The units of the file (see `read_units_source`)."""
    return read_units_source(path, check_questionnaire=check_questionnaire).units


def read_units_source(
    path: str | Path, *, check_questionnaire: QuestionnaireCheck | None = None
) -> UnitsFile:
    """Parse and check the whole file; FileProblems lists every problem with its line.

    A key the format does not know is a problem (a typo such as `public_result` would
    otherwise be ignored and change what the unit publishes), and so is a questionnaire that
    `check_questionnaire` refuses."""
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
    _unknown_keys(data, FILE_KEYS, "the file", problems, source)
    _secret_looking_values(data, problems, source)
    oas = _oas(data, problems, source)
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
        unit_label = f"unit {code}" if code else "unit"
        _unknown_keys(node, UNIT_KEYS, unit_label, problems, source)
        name = _name(node, unit_label, problems, source)
        counters = _counters(node, unit_label, counter_codes, check_questionnaire, problems, source)
        timezone = _timezone(node, unit_label, problems, source)
        opening_hours = _opening_hours(node, unit_label, problems, source)
        public = _flag(node, "public_results", code, problems, source)
        require_verified = _flag(node, "require_verified", code, problems, source)
        code_lines[code] = node.line_of("registration_code")
        approval = _flag(node, "leader_approval", code, problems, source)
        due_days = _case_due_days(node, unit_label, problems, source)
        officers = _officers(node, unit_label, problems, source)
        units.append(
            UnitSpec(
                code,
                name,
                counters,
                questionnaire=_questionnaire(
                    node, unit_label, check_questionnaire, problems, source
                ),
                timezone=timezone,
                registration_code=_optional(node, "registration_code"),
                public_results=public,
                require_verified=require_verified,
                leader_approval=approval,
                opening_hours=opening_hours,
                case_due_days=due_days,
                officers=officers,
                oa_id=_unit_oa(node, unit_label, oas, problems, source),
            )
        )
    # Codes are checked once every unit and counter code is known (none may be guessed from
    # them).
    known = frozenset(fold(c) for c in unit_codes | counter_codes)
    _check_registration_codes(units, known, code_lines, problems, source)
    if problems:
        raise FileProblems(problems)
    return UnitsFile(oas, units)


def _oas(data: LineDict, problems: list[Problem], source: str) -> list[OaSpec]:
    """The `oas` list: each OA's id, name, app and secret references."""
    raw = data.get("oas")
    if raw is None:
        return []
    if not isinstance(raw, LineList) or not raw:
        problems.append(Problem(source, data.line_of("oas"), "`oas` must list at least one OA"))
        return []
    oas: list[OaSpec] = []
    seen: set[str] = set()
    for index, node in enumerate(raw):
        line = raw.line_of(index)
        if not isinstance(node, LineDict):
            problems.append(Problem(source, line, "an OA needs id, name, app_id and secrets"))
            continue
        oa_id = _zalo_id(node, "id", "OA", problems, source)
        label = f"OA {oa_id}" if oa_id else "OA"
        if oa_id in seen:
            problems.append(Problem(source, node.line_of("id"), f"{label} is listed twice"))
        seen.add(oa_id)
        _unknown_keys(node, OA_KEYS, label, problems, source)
        name = _name(node, label, problems, source)
        if len(name) > 100 or any(not c.isprintable() for c in name):
            problems.append(
                Problem(source, node.line_of("name"), f"{label}: name is one line of ≤100")
            )
        app_id = _zalo_id(node, "app_id", f"{label}: app", problems, source)
        refs: dict[str, str | None] = {}
        for key in OA_SECRET_KEYS:
            ref = _optional(node, key)
            if ref is None and key in OA_REQUIRED_SECRETS:
                problems.append(
                    Problem(source, node.line, f"{label}: `{key}` is missing (env:NAME)")
                )
            elif ref is not None and SECRET_REFERENCE.fullmatch(ref) is None:
                problems.append(
                    Problem(
                        source,
                        node.line_of(key),
                        f"{label}: `{key}` must say where the secret is (env:NAME or "
                        "file:NAME), never the secret itself",
                    )
                )
                ref = None
            refs[key] = ref
        if (refs["access_token"] is None) != (refs["refresh_token"] is None):
            problems.append(
                Problem(source, node.line, f"{label}: give access_token and refresh_token both")
            )
        oas.append(
            OaSpec(
                oa_id,
                name,
                app_id,
                app_secret_ref=refs["app_secret"] or "",
                oa_secret_key_ref=refs["oa_secret_key"] or "",
                access_token_ref=refs["access_token"],
                refresh_token_ref=refs["refresh_token"],
            )
        )
    return oas


def _unit_oa(
    node: LineDict, unit_label: str, oas: list[OaSpec], problems: list[Problem], source: str
) -> str | None:
    """The unit's OA: `oa:` naming one of `oas`; the only one when there is one; None (the
    environment's OA) without `oas`."""
    wanted = _optional(node, "oa")
    if not oas:
        if wanted is not None:
            problems.append(
                Problem(source, node.line_of("oa"), f"{unit_label}: `oa` needs an `oas` list")
            )
        return None
    if wanted is None:
        if len(oas) == 1:
            return oas[0].oa_id
        problems.append(
            Problem(source, node.line, f"{unit_label}: say which OA it belongs to (`oa:`)")
        )
        return None
    if wanted not in {oa.oa_id for oa in oas}:
        problems.append(
            Problem(source, node.line_of("oa"), f"{unit_label}: OA {wanted} is not in `oas`")
        )
        return None
    return str(wanted)


def _zalo_id(node: LineDict, key: str, what: str, problems: list[Problem], source: str) -> str:
    value = _optional(node, key)
    if value is None or _ZALO_ID.fullmatch(value) is None:
        problems.append(
            Problem(source, node.line_of(key), f"{what} id must be Zalo's id (digits, in quotes)")
        )
        return ""
    return str(value)


def _scalars(node: object, line: int) -> Iterator[tuple[str, int]]:
    """Every text scalar of a parsed file with its line."""
    if isinstance(node, LineDict):
        for key, value in node.items():
            if isinstance(value, LineDict | LineList):
                yield from _scalars(value, node.line_of(key))
            else:
                yield node.scalar_text.get(key, str(value)), node.line_of(key)
    elif isinstance(node, LineList):
        for index, value in enumerate(node):
            yield from _scalars(value, node.line_of(index))
    elif node is not None:
        yield str(node), line


def _secret_looking_values(data: LineDict, problems: list[Problem], source: str) -> None:
    """A value that looks like a key or token pasted in is refused: the file is copied and
    committed; secrets belong in the environment or the secrets file (named as env:NAME)."""
    for text, line in _scalars(data, data.line):
        value = text.strip()
        if (
            _SECRET_LOOKING.fullmatch(value)
            and any(c.isdigit() for c in value)
            and any(c.isalpha() for c in value)
        ):
            problems.append(
                Problem(
                    source,
                    line,
                    "this value looks like a secret (a key or token): keep it in the "
                    "environment or ZALO_SECRETS_FILE and name it here as env:NAME or file:NAME",
                )
            )


def _counters(
    node: LineDict,
    unit_label: str,
    counter_codes: set[str],
    check_questionnaire: QuestionnaireCheck | None,
    problems: list[Problem],
    source: str,
) -> list[CounterSpec]:
    counters: list[CounterSpec] = []
    raw_counters = node.get("counters")
    if not isinstance(raw_counters, LineList) or not raw_counters:
        problems.append(
            Problem(
                source,
                node.line_of("counters"),
                f"{unit_label}: `counters` must list at least one counter",
            )
        )
        return counters
    for c_index, c_node in enumerate(raw_counters):
        if not isinstance(c_node, LineDict):
            problems.append(
                Problem(source, raw_counters.line_of(c_index), "a counter needs code and name")
            )
            continue
        c_code = _code(c_node, "counter", counter_codes, problems, source)
        c_label = f"counter {c_code}" if c_code else f"{unit_label}: counter"
        _unknown_keys(c_node, COUNTER_KEYS, c_label, problems, source)
        c_name = _name(c_node, c_label, problems, source)
        c_form = _questionnaire(c_node, c_label, check_questionnaire, problems, source)
        counters.append(CounterSpec(c_code, c_name, c_form))
    return counters


def _officers(
    node: LineDict, unit_label: str, problems: list[Problem], source: str
) -> tuple[OfficerSpec, ...]:
    """The unit's officers (optional): a code (unique within the unit) and a name each."""
    raw = node.get("officers")
    if raw is None:
        return ()
    if not isinstance(raw, LineList):
        problems.append(
            Problem(
                source,
                node.line_of("officers"),
                f"{unit_label}: `officers` must be a list of code and name",
            )
        )
        return ()
    officers: list[OfficerSpec] = []
    codes: set[str] = set()
    for index, o_node in enumerate(raw):
        if not isinstance(o_node, LineDict):
            problems.append(
                Problem(source, raw.line_of(index), f"{unit_label}: an officer needs code and name")
            )
            continue
        o_code = _code(o_node, "officer", codes, problems, source)
        o_label = f"{unit_label}: officer {o_code}" if o_code else f"{unit_label}: officer"
        _unknown_keys(o_node, OFFICER_KEYS, o_label, problems, source)
        officers.append(OfficerSpec(o_code, _name(o_node, o_label, problems, source)))
    return tuple(officers)


def _timezone(node: LineDict, unit_label: str, problems: list[Problem], source: str) -> Any:
    timezone = _optional(node, "timezone")
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                Problem(
                    source, node.line_of("timezone"), f"{unit_label}: unknown time zone {timezone}"
                )
            )
    return timezone


def _opening_hours(node: LineDict, unit_label: str, problems: list[Problem], source: str) -> Any:
    opening_hours = _optional(node, "opening_hours")
    if opening_hours is None:
        return None
    try:
        OpeningHours.parse(opening_hours)
    except BadOpeningHours as exc:
        problems.append(
            Problem(source, node.line_of("opening_hours"), f"{unit_label}: opening_hours {exc}")
        )
        return None
    return opening_hours


def _case_due_days(
    node: LineDict, unit_label: str, problems: list[Problem], source: str
) -> int | None:
    due_days = node.get("case_due_days")
    if due_days is None:
        return None
    if isinstance(due_days, bool) or not isinstance(due_days, int) or not 1 <= due_days <= 90:
        problems.append(
            Problem(
                source,
                node.line_of("case_due_days"),
                f"{unit_label}: case_due_days must be a whole number of working days, 1–90",
            )
        )
        return None
    return due_days


def _check_registration_codes(
    units: list[UnitSpec],
    known: frozenset[str],
    code_lines: dict[str, int],
    problems: list[Problem],
    source: str,
) -> None:
    """A registration code must be strong and guessable from no unit or counter code."""
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


def _unknown_keys(
    node: LineDict, known: tuple[str, ...], what: str, problems: list[Problem], source: str
) -> None:
    for key in node:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f" (did you mean `{close[0]}`?)" if close else f" (known: {', '.join(known)})"
        problems.append(Problem(source, node.line_of(key), f"{what}: unknown key `{key}`{hint}"))


def _questionnaire(
    node: LineDict,
    what: str,
    check: QuestionnaireCheck | None,
    problems: list[Problem],
    source: str,
) -> str | None:
    name: str | None = _optional(node, "questionnaire")
    if name is not None and check is not None:
        reason = check(name)
        if reason is not None:
            problems.append(Problem(source, node.line_of("questionnaire"), f"{what}: {reason}"))
    return name


def _code(node: LineDict, what: str, seen: set[str], problems: list[Problem], source: str) -> str:
    raw = node.get("code")
    # The code as written: YAML would read `0012` as the number 10.
    written = node.scalar_text.get("code") if raw is not None else None
    code = (written or "").strip().upper()
    if raw is None or not code:
        problems.append(Problem(source, node.line_of("code"), f"a {what} code is missing"))
        return ""
    if not is_code(code):
        problems.append(
            Problem(
                source,
                node.line_of("code"),
                f"{what} code {written.strip() if written else code}: "
                "use 1–32 letters, digits, - or _",
            )
        )
        return ""
    if code in seen:
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


def unit_zone(unit: Unit, default: ZoneInfo) -> ZoneInfo:
    """The time zone the unit's dates and opening hours are read in (`timezone`, else
    `default`)."""
    if not unit.timezone:
        return default
    try:
        return ZoneInfo(unit.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unit {unit.code}: unknown time zone {unit.timezone!r}") from None
