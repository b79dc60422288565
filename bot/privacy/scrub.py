"""Personal data taken out of text: phone numbers, ID-card numbers and e-mail addresses in a
citizen's comment are replaced, before it is stored, by what they were ("[số điện thoại]"),
the rest of the comment kept as written; and Zalo ids are taken out of error texts before
they are logged or stored (`redact_ids`).

A comment is asked about the service, not about the citizen: a number written into it
(to be called back, or an ID number pasted by mistake) would make an anonymous answer name
its author, and it would reach the leaders' alerts and digests, the exports and the backups.

Patterns (Vietnamese formats):
- phone: a 0 or +84/84 and 9–10 more digits, with spaces, dots or dashes between groups
  (0912 345 678, 0912.345.678, +84 912 345 678, 024 3825 1234);
- ID card: 9 digits (CMND) or 12 digits (CCCD) in one run;
- e-mail: name@domain.tld.
Over-scrubbing is the safe side: a 9-digit amount of money in a comment is replaced too.
"""

from __future__ import annotations

import re

PHONE_MARK = "[số điện thoại]"
ID_MARK = "[số giấy tờ]"
EMAIL_MARK = "[email]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# Exactly 12 (CCCD) or 9 (CMND) digits, not part of a longer number.
_ID_CARD = re.compile(r"(?<![\d+])(?:\d{12}|\d{9})(?!\d)")
# 0 or +84/84, then 9 or 10 digits, each optionally after a space, a dot or a dash.
_PHONE = re.compile(r"(?<![\d+])(?:\+\s?84|84|0)(?:\s?\(0\))?(?:[\s.-]?\d){9,10}(?!\d)")


def phone_number_in(text: str) -> str | None:
    """The phone number a message consists of (`0912 345 678`, `+84 912.345.678`), as digits
    with a leading 0; None when the message is anything else."""
    stripped = text.strip()
    if not _PHONE.fullmatch(stripped):
        return None
    digits = "".join(ch for ch in stripped if ch.isdigit())
    return "0" + digits[2:] if digits.startswith("84") else digits


def scrub_personal_data(text: str) -> str:
    """The text with phone numbers, ID-card numbers and e-mail addresses replaced."""
    text = _EMAIL.sub(EMAIL_MARK, text)
    # IDs before phones: a 12-digit CCCD starts with 0 and must not be read as a phone + 1.
    text = _ID_CARD.sub(ID_MARK, text)
    return _PHONE.sub(PHONE_MARK, text)


ID_REDACTED = "[id]"
# Zalo user ids (and OA and app ids) are numbers of 15 to 20 digits; nothing else in an error
# text is that long a run of digits.
_LONG_NUMBER = re.compile(r"\d{12,}")


def redact_ids(text: str) -> str:
    """An error text (Zalo's own words included) without any Zalo id in it, for a log line, an
    outbox row's `last_error` or an operator's listing."""
    return _LONG_NUMBER.sub(ID_REDACTED, text)
