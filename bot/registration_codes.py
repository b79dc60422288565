"""Leaders' registration codes: what makes one too easy to guess, how a strong one is made, and
which unit a typed code names.

A code is `DANGKY`'s only secret, and whoever guesses one receives alerts quoting citizens'
comments, so `units import` refuses a code that is short or guessable, and `sipas-bot units
new-code` makes one like `HVT-7KQ2-M9XD-4TPA`: the unit's code, then 12 characters drawn from
31 letters and digits that cannot be misread (no 0/O, 1/I/L), about 59 bits.

Starting a code with its unit's code is what makes the per-unit lockout exact: a guess can only
match unit HVT's code if it starts with `HVT-`, so every guess at it is counted against HVT.
"""

from __future__ import annotations

import secrets

from survey_flow.matching import fold

MIN_SECRET_LENGTH = 10
MIN_DISTINCT = 6
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
# Words an operator may reach for, folded (no case, no diacritics): a code containing one is
# guessable however long it is.
COMMON_WORDS = (
    "password",
    "matkhau",
    "dangky",
    "sipas",
    "admin",
    "ubnd",
    "phuong",
    "motcua",
    "lanhdao",
    "chutich",
    "qwerty",
    "abcdef",
    "123456",
    "654321",
)
_SEPARATORS = "-_. "


def secret_part(code: str, unit_code: str) -> str:
    """The code without its unit's code in front and without separators, folded."""
    folded = fold(code.strip())
    unit = fold(unit_code)
    if folded.startswith(unit):
        folded = folded[len(unit) :]
    return "".join(ch for ch in folded if ch not in _SEPARATORS)


def weakness(code: str, *, unit_code: str, other_codes: frozenset[str] = frozenset()) -> str | None:
    """Why a unit's registration code is too easy to guess, or None when it is not.

    `other_codes` are the unit and counter codes of the file, folded: a code that is one of
    them (or contains one, beside its own unit's) is refused too.
    """
    secret = secret_part(code, unit_code)
    if len(secret) < MIN_SECRET_LENGTH:
        return (
            f"needs at least {MIN_SECRET_LENGTH} letters and digits besides the unit code and "
            "dashes"
        )
    if secret.isdigit():
        return "is digits only"
    if secret.isalpha():
        return "is letters only (a word or a name): mix in digits"
    if len(set(secret)) < MIN_DISTINCT:
        return f"repeats characters: use at least {MIN_DISTINCT} different ones"
    for word in COMMON_WORDS:
        if word in secret:
            return f"contains the common word {word!r}"
    for other in other_codes:
        if len(other) >= 3 and other in secret:
            return f"contains the unit or counter code {other.upper()}"
    return None


def new_code(unit_code: str | None = None) -> str:
    """A strong code, `<UNIT>-XXXX-XXXX-XXXX` (without the prefix when no unit is given)."""
    while True:
        secret = "".join(secrets.choice(ALPHABET) for _ in range(12))
        code = "-".join(secret[i : i + 4] for i in range(0, 12, 4))
        if unit_code:
            code = f"{unit_code.upper()}-{code}"
        # Rarely the draw is all letters or has a common word: draw again.
        if weakness(code, unit_code=unit_code or "") is None:
            return code


def named_unit_code(given: str) -> str:
    """The part of a typed code before its first dash, folded: the unit a guess names when
    codes start with their unit's code."""
    return fold(given.strip()).split("-", 1)[0]
