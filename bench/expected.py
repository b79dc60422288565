"""What each citizen should receive: the texts the OA sends for a survey's script, computed by
the app itself (sandbox, SQLite, in this process), for the end-to-end benchmarks
(bench/concurrent_surveys.py, bench/province_day.py).

The closing words of a survey carry the code of the case opened for a low rating, and a case
is opened only when the survey is counted and not held for review, which depends on the
other surveys of the run: the benches read which surveys opened one after the run
(`respondents_with_a_case`) and compare texts with the case's code left out (`normalise`).
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from bench.common import APP_ID, EXAMPLE_UNITS, OA_SECRET
from bench.events import Signer
from survey_flow.sipas import LOW_RATINGS

ANSWERS = 5
CASE_CODE = re.compile(r"\b[A-Z]{2}-\d{4}-\d{6}\b")


def survey_script(counter: str, values: tuple[int, ...]) -> list[str]:
    """A citizen's events: the counter's code, the answers typed, then `bỏ qua`."""
    return [f"#{counter}", *map(str, values), "bỏ qua"]


def normalise(text: str) -> str:
    """A text with its case code (numbered in the order cases open) left out."""
    return CASE_CODE.sub("<case>", text)


class Expectations:
    """The texts the OA sends for a script, from the app itself (sandbox, SQLite, in this
    process), as Zalo would receive them (rendered in the configured choice style). Holds
    examples/units.yaml; `runtime` is there to add more units. Its own surveys are never held
    for review (the burst rule is lifted: they all come from new accounts at a few counters),
    so a low rating always opens a case here; whether one did in the run is the run's."""

    def __init__(self) -> None:
        from bot.config import Settings
        from bot.units import read_units_file
        from bot.web import create_app, runtime_of
        from storage import migrate
        from storage import repositories as repo
        from zalo_client import SIGNATURE_HEADER

        self._tmp = tempfile.TemporaryDirectory(prefix="sipas-bench-expect-")
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.settings = Settings(
            zalo_app_id=APP_ID,
            zalo_oa_secret_key=OA_SECRET,
            zalo_sandbox=True,
            database_url=f"sqlite:///{self._tmp.name}/expect.db",
            integrity_burst_surveys=1_000_000,
        )

        def capture(user_id: str, body: dict[str, Any]) -> str | None:
            self.sent.append((user_id, body))
            return None

        self.app = create_app(self.settings, deliver=capture)
        self.runtime = runtime_of(self.app)
        migrate.upgrade(self.runtime.engine)
        with self.runtime.session_factory.begin() as session:
            repo.upsert_units(session, read_units_file(EXAMPLE_UNITS), now=dt.datetime.now(dt.UTC))
        self.client = self.app.test_client()
        self.header = SIGNATURE_HEADER
        self.signer = Signer()
        self._n = 0

    def texts(self, script: Sequence[str]) -> list[str]:
        from zalo_client import QueryButton
        from zalo_client.api import render_message

        self._n += 1
        user = str(8_100_000_000_000_000_000 + self._n)  # numeric, as Zalo's ids are
        for text in script:
            event = self.signer.text_event(user, text, "x")
            response = self.client.post(
                "/zalo/webhook",
                data=event.body,
                headers={self.header: event.signature},
                content_type="application/json",
            )
            assert response.status_code == 200, response.data
        self.sent.clear()
        self.runtime.sender().drain()
        out = []
        for user_id, body in self.sent:
            assert user_id == user
            buttons = [QueryButton(b["title"], b["payload"]) for b in body.get("buttons", [])]
            message = render_message(body["text"], buttons, self.settings.zalo_choice_style)
            out.append(str(message.get("text", "")))
        return out

    def close(self) -> None:
        self.runtime.engine.dispose()
        self._tmp.cleanup()


class Steps(Protocol):
    """The texts the OA sends after each event of a survey at `counter` answered `values`
    (case codes normalised); `case`: whether the survey opened a case (None: whether an
    answer is low, i.e. the survey counted and not held)."""

    def __call__(
        self, counter: str, values: tuple[int, ...], case: bool | None = None
    ) -> list[list[str]]: ...


def expected_steps(
    expectations: Expectations,
    reference: str,
    *,
    samples: Sequence[tuple[str, tuple[int, ...]]],
    place_name: Callable[[str], str] | None = None,
) -> Steps:
    """`steps(counter, values, case)` for surveys of ANSWERS answers. An answer's
    acknowledgement names the answer, so the texts are computed at the `reference` counter
    for each answer given five times, and a survey's are put together from them
    (answer i's texts from the run where every answer was that one). Each sample (counter,
    values) is then run through the app and must give the texts put together: refused if the
    counter (beyond its name, `place_name(counter)` in the texts) or the earlier answers
    change them."""

    def run(counter: str, values: tuple[int, ...]) -> list[list[str]]:
        script = survey_script(counter, values)
        cumulative = [expectations.texts(script[: i + 1]) for i in range(len(script))]
        out, before = [], 0
        for texts in cumulative:
            out.append(texts[before:])
            before = len(texts)
        return out

    uniform = {v: run(reference, (v,) * ANSWERS) for v in range(1, 6)}
    if not CASE_CODE.search(uniform[1][-1][-1]) or CASE_CODE.search(uniform[5][-1][-1]):
        raise RuntimeError("a case's code expected in the closing words after low ratings only")

    def steps(counter: str, values: tuple[int, ...], case: bool | None = None) -> list[list[str]]:
        out = list(uniform[values[0]])
        for i, value in enumerate(values, start=1):
            out[i] = uniform[value][i]
        # The closing words: with a case's code when a case was opened, which is when an
        # answer is low (`case` None) and the survey is counted and not held for review.
        if case is None:
            case = any(v in LOW_RATINGS for v in values)
        out[-1] = uniform[1 if case else 5][-1]
        texts = [[normalise(t) for t in step] for step in out]
        if place_name is None or counter == reference:
            return texts
        ours, theirs = place_name(reference), place_name(counter)
        return [[t.replace(ours, theirs) for t in step] for step in texts]

    for counter, values in samples:
        got = [[normalise(t) for t in step] for step in run(counter, values)]
        if got != steps(counter, values):
            raise RuntimeError(
                f"the replies at {counter} for {values} are not the expected ones: {got}"
            )
    if any(not step for step in steps(reference, (3,) * ANSWERS)):
        raise RuntimeError("an event the OA does not answer: a citizen would wait forever")
    return steps


def respondents_with_a_case(url: str) -> set[str]:
    """The respondent hashes of the surveys that opened a case, in the database at `url`."""
    from sqlalchemy import text

    from storage.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT r.respondent_hash FROM cases c "
                    "JOIN survey_responses r ON r.id = c.response_id"
                )
            )
            return {str(row[0]) for row in rows}
    finally:
        engine.dispose()
