"""`sipas-bot simulate`: play a citizen against a running server in sandbox mode, over HTTP.

Each line is sent to the server's /zalo/webhook as Zalo would send it (the same JSON, signed
with this machine's ZALO_APP_ID and ZALO_OA_SECRET_KEY); the bot's replies are read back from
the server's sandbox outbox (/sandbox/messages.json), which answers only in sandbox mode and
only on the same machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import click
import requests
from flask.cli import with_appcontext

from bot.cli.context import current_runtime
from bot.errors import NotReady
from bot.runtime import Runtime
from bot.web.sandbox.citizen import clean_name, signed_text_event, user_id_for

EXIT_WORDS = frozenset({"/quit", "/exit", "/q"})
TIMEOUT_SECONDS = 10


class SimulatedCitizen:
    """One simulated user talking to the server at `base_url`."""

    def __init__(
        self, runtime: Runtime, base_url: str, name: str, session: requests.Session
    ) -> None:
        self.runtime = runtime
        self.base_url = base_url.rstrip("/")
        self.name = clean_name(name)
        self.http = session
        self.seen = 0

    def _get(self, path: str, **params: Any) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = self.http.get(url, params=params, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise NotReady(
                f"cannot reach {self.base_url} ({type(exc).__name__}): is `sipas-bot serve` "
                "running there? (--url sets the address)"
            ) from None
        if response.status_code == 403:
            raise NotReady(
                f"{self.base_url} refuses the sandbox: it must run with ZALO_SANDBOX=1 and be "
                "on this machine"
            )
        if response.status_code != 200:
            raise NotReady(f"{url} answered HTTP {response.status_code}")
        return response.json()

    def start(self) -> None:
        """Skip what this user was sent before: only this conversation is shown."""
        earlier = self._get("/sandbox/messages.json", user=self.name)["messages"]
        self.seen = max((m["id"] for m in earlier), default=0)

    def say(self, text: str) -> list[dict[str, Any]]:
        """Send one message; the replies the server queued for it."""
        body, headers = signed_text_event(
            self.runtime.verifier,
            app_id=self.runtime.settings.zalo_app_id,
            oa_id=self.runtime.settings.zalo_oa_id,
            user_id=user_id_for(self.name),
            text=text,
            now=self.runtime.clock(),
        )
        url = f"{self.base_url}/zalo/webhook"
        try:
            response = self.http.post(url, data=body, headers=headers, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise NotReady(
                f"cannot reach {self.base_url} ({type(exc).__name__}): is `sipas-bot serve` "
                "running there?"
            ) from None
        if response.status_code == 401:
            raise NotReady(
                f"{url} refused the signature: this machine's ZALO_APP_ID and "
                "ZALO_OA_SECRET_KEY must be the server's (run simulate in its folder)"
            )
        if response.status_code != 200:
            raise NotReady(f"{url} answered HTTP {response.status_code}")
        # The replies are in the outbox when the webhook answers: no waiting needed.
        replies: list[dict[str, Any]] = self._get(
            "/sandbox/messages.json", user=self.name, after=self.seen
        )["messages"]
        if replies:
            self.seen = replies[-1]["id"]
        return replies


def render_reply(message: dict[str, Any]) -> str:
    titles = [b["title"] for b in message.get("buttons", [])]
    buttons = "  ".join(f"[{title}]" for title in titles)
    return f"{message['text']}\n{buttons}\n" if buttons else f"{message['text']}\n"


def run_simulation(
    citizen: SimulatedCitizen,
    counter_code: str,
    said: Sequence[str],
    *,
    read: Callable[[str], str],
    write: Callable[[str], None],
) -> None:
    """`#CODE`, then each --say line, or lines read until /quit or the end of input."""
    citizen.start()
    write(f"Simulated user {citizen.name} at {citizen.base_url} (sandbox). /quit leaves.\n")
    scripted = list(said)

    def turn(text: str) -> None:
        write(f"{citizen.name}> {text}")
        for reply in citizen.say(text):
            write(render_reply(reply))

    turn(f"#{counter_code.strip().lstrip('#').upper()}")
    if scripted:
        for text in scripted:
            turn(text)
        return
    while True:
        try:
            text = read(f"{citizen.name}> ")
        except EOFError:
            write("")
            return
        if text.strip() in EXIT_WORDS:
            return
        if text.strip():
            for reply in citizen.say(text):
                write(render_reply(reply))


@click.command("simulate")
@with_appcontext
@click.option("--counter", "counter_code", required=True, help="The counter code, e.g. HVT01.")
@click.option("--user", "name", default="citizen", show_default=True, help="Simulated user.")
@click.option(
    "--url",
    help="The running server on this machine (default http://127.0.0.1:PORT, PORT from the "
    "environment or .env, else 8000).",
)
@click.option("--say", "said", multiple=True, help="A message to send; repeat for a script.")
def simulate(counter_code: str, name: str, url: str | None, said: tuple[str, ...]) -> None:
    """Play a citizen against a running server in sandbox mode, through its real webhook.

    Sends `#COUNTER`, then each --say, or what you type (/quit leaves), as signed Zalo
    events, and prints the bot's replies. Unlike `chat`, everything is stored, as for a
    real citizen. The server must run with ZALO_SANDBOX=1 on this machine.
    """
    runtime = current_runtime()
    # The sandbox answers only on this machine, so its loopback address, not PUBLIC_BASE_URL
    # (which names the address phones use once set for a trial on the office network).
    base = url or f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"
    with requests.Session() as http:
        citizen = SimulatedCitizen(runtime, base, name, http)
        run_simulation(citizen, counter_code, said, read=input, write=click.echo)


COMMANDS: list[click.Command] = [simulate]
