"""The payload of the "Đã nhận" button on a message to a leader: built when the message is
queued, read back when the leader taps it (as an ordinary text event, as Zalo sends taps)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class AckKind(StrEnum):
    DIGEST = "dg"
    MESSAGE = "al"  # an alert or an alert summary: acknowledged per leader message


_ACK = re.compile(r"^(dg|al):(\d{1,15}):ack$")


@dataclass(frozen=True)
class Ack:
    kind: AckKind
    target_id: int


def digest_ack_payload(digest_id: int) -> str:
    return f"{AckKind.DIGEST}:{digest_id}:ack"


def message_ack_payload(message_id: int) -> str:
    return f"{AckKind.MESSAGE}:{message_id}:ack"


def parse_ack(text: str) -> Ack | None:
    match = _ACK.match(text.strip())
    return Ack(AckKind(match.group(1)), int(match.group(2))) if match else None
