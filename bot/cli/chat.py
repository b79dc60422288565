"""`sipas-bot chat`: a survey in the terminal, through the same engine and storage code as Zalo.

The trial runs on a scratch in-memory database holding a copy of the counter's unit, so
nothing typed here ends up in the real results.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from bot.cases.intake import CaseIntake
from bot.cli.context import current_runtime, require_schema
from bot.conversation.service import SurveyService
from bot.errors import UnknownCode
from bot.privacy import Pseudonymizer
from bot.runtime import Runtime
from storage import repositories as repo
from storage.db import make_engine, make_session_factory
from storage.models import Base, OutboxMessage, OutboxStatus
from storage.repositories import CounterSpec, UnitSpec

EXIT_WORDS = frozenset({"/quit", "/exit", "/q"})


def run_chat(
    runtime: Runtime,
    counter_code: str,
    *,
    read: Callable[[str], str],
    write: Callable[[str], None],
) -> None:
    """Chat until the survey ends, the citizen types /quit or input runs out."""
    with runtime.session_factory() as session:
        counter = repo.find_counter(session, counter_code)
        if counter is None:
            raise UnknownCode(
                f"no counter has the code {counter_code.upper()} (see `sipas-bot units list`)"
            )
        unit = UnitSpec(
            counter.unit.code,
            counter.unit.name,
            [CounterSpec(c.code, c.name, c.questionnaire) for c in counter.unit.counters],
            counter.unit.questionnaire,
        )
        code = counter.code

    scratch = make_engine("sqlite://")
    Base.metadata.create_all(scratch)
    sessions = make_session_factory(scratch)
    with sessions.begin() as session:
        repo.upsert_units(session, [unit], now=runtime.clock())
    user_id = f"terminal-{secrets.token_hex(4)}"
    # The scratch database gets scratch pseudonyms: the trial needs no PRIVACY_PEPPER, and
    # nothing hashed here can be compared with the real surveys.
    pseudonyms = Pseudonymizer(secrets.token_hex(16))
    service = SurveyService(
        texts=runtime.texts,
        flows=runtime.flows,
        policy=runtime.service.policy,
        cooldown=runtime.service.cooldown,
        limits=runtime.service.limits,
        rotating=runtime.rotating,
        pseudonyms=pseudonyms,
        counting=runtime.service.counting,
        intake=CaseIntake(runtime.cases, pseudonyms),
    )

    write(
        f"Trying counter #{code} in the terminal (nothing is stored). "
        "Type answers as a citizen would; /quit leaves.\n"
    )

    def turn(text: str) -> bool:
        """One message from the citizen; True while a survey is open."""
        with sessions.begin() as session:
            row = repo.lock_conversation(session, user_id, now=runtime.clock())
            service.converse(session, row, text, now=runtime.clock())
            for message in session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.user_id == user_id, OutboxMessage.status == OutboxStatus.PENDING
                )
                .order_by(OutboxMessage.id)
            ):
                write(_render(message.body))
                message.status = "sent"
            return row.open_response_id is not None

    open_survey = turn(f"#{code}")
    while open_survey:
        try:
            text = read("> ")
        except EOFError:
            write("")
            break
        if text.strip() in EXIT_WORDS:
            break
        open_survey = turn(text)
    scratch.dispose()


def _render(body: dict[str, object]) -> str:
    text = str(body.get("text", ""))
    buttons = body.get("buttons")
    titles = [str(b["title"]) for b in buttons] if isinstance(buttons, list) else []
    line = "  ".join(f"[{title}]" for title in titles)
    return f"{text}\n{line}\n" if line else f"{text}\n"


@click.command("chat")
@with_appcontext
@click.option("--counter", "counter_code", required=True, help="The counter code, e.g. HVT01.")
def chat(counter_code: str) -> None:
    """Try a counter's survey in the terminal, with no Zalo account (nothing is stored)."""
    runtime = current_runtime()
    require_schema(runtime)

    def read(prompt: str) -> str:
        return input(prompt)

    run_chat(runtime, counter_code, read=read, write=click.echo)


COMMANDS: list[click.Command] = [chat]
