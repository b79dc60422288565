"""A real run anyone can repeat: the installed `sipas-bot` command, a server process, signed
webhooks over HTTP and a fake Zalo API on localhost; the server is killed mid-survey."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import APP_ID, ENV_PREFIXES, EXAMPLE_UNITS, text_event
from tests.fake_zalo import MESSAGE_PATH, FakeZalo, Fault

SIPAS_BOT = Path(sys.executable).with_name("sipas-bot")
OA_SECRET = "e2e-oa-secret-key"
ACCESS_TOKEN = "e2e-access-token"
USER = "5550000000000000001"
COMMAND_TIMEOUT = 120  # an upper bound for a failing command, not a speed target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path


@dataclass
class Deployment:
    """A folder, an environment (no .env) and the processes started in them."""

    folder: Path
    env: dict[str, str]
    servers: list[Server] = field(default_factory=list)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(SIPAS_BOT), *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        assert done.returncode == 0, f"sipas-bot {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done

    def serve(self) -> Server:
        port = free_port()
        log = self.folder / f"serve-{len(self.servers)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(SIPAS_BOT), "serve", "--port", str(port)],
                cwd=self.folder,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        self.servers.append(server)
        wait_until_healthy(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            if server.process.poll() is None:
                server.process.kill()
            server.process.wait(timeout=10)


def wait_until_healthy(server: Server, *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"sipas-bot serve exited:\n{server.log.read_text('utf-8', 'replace')}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"sipas-bot serve not healthy in {timeout} s:\n{server.log.read_text('utf-8')}")


def outbox_pending(server: Server) -> int:
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as answer:
        pending: int = json.load(answer)["outbox"]["pending"]
        return pending


def wait_until_outbox_empty(server: Server, *, timeout: float = 60.0) -> None:
    """Until the sender has recorded every delivery (not only made it), so a kill now
    leaves no lease behind to wait out."""
    deadline = time.monotonic() + timeout
    while outbox_pending(server):
        assert time.monotonic() < deadline, "the outbox did not empty"
        time.sleep(0.05)


def post_event(
    server: Server, event: dict[str, Any], *, secret: str = OA_SECRET
) -> tuple[int, dict[str, Any]]:
    """POST an event signed as Zalo signs: sha256(app_id + raw body + timestamp + secret)."""
    body = json.dumps(event, ensure_ascii=False).encode("utf-8")
    mac = hashlib.sha256(
        APP_ID.encode() + body + str(event["timestamp"]).encode() + secret.encode()
    ).hexdigest()
    request = urllib.request.Request(
        f"{server.url}/zalo/webhook",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-ZEvent-Signature": f"mac={mac}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def answer(server: Server, text: str) -> None:
    """The citizen sends `text` (typed, or a button's payload); the server must handle it."""
    assert post_event(server, text_event(text, user_id=USER)) == (
        200,
        {"ok": True, "outcome": "handled"},
    )


def button_payload(message: dict[str, Any], value: int) -> str:
    """The payload of button `value` (1..5) of a message as Zalo received it."""
    buttons = message["message"]["attachment"]["payload"]["buttons"]
    payload: str = buttons[value - 1]["payload"]
    return payload


def progress_line(message: dict[str, Any]) -> str:
    """The "Câu n/m" line of a delivered question (what was recorded may come before it)."""
    text: str = message["message"]["text"]
    (line,) = re.findall(r"^Câu \d+/\d+$", text, re.MULTILINE)
    return str(line)


@pytest.fixture
def fake_zalo() -> Iterator[FakeZalo]:
    # The very first message meets a 502: the real sender must retry it, in order.
    with FakeZalo(faults=[Fault(status=502)]) as zalo:
        yield zalo


@pytest.fixture
def deployment(tmp_path: Path, fake_zalo: FakeZalo) -> Iterator[Deployment]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env = {
        **inherited,
        "ZALO_APP_ID": APP_ID,
        "ZALO_APP_SECRET": "e2e-app-secret",
        "ZALO_OA_SECRET_KEY": OA_SECRET,
        "PRIVACY_PEPPER": "e2e-privacy-pepper-0123",
        "CONSOLE_SECRET_KEY": "end-to-end-console-secret-key-32-chars",
        "ZALO_OA_ID": "388613280878808645",
        "ZALO_ACCESS_TOKEN": ACCESS_TOKEN,
        "ZALO_REFRESH_TOKEN": "e2e-refresh-token",
        "ZALO_API_BASE": fake_zalo.url,
        "ZALO_OAUTH_BASE": fake_zalo.url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
        "FLASK_SKIP_DOTENV": "1",
        "LOG_LEVEL": "INFO",
    }
    deployed = Deployment(tmp_path, env)
    try:
        yield deployed
    finally:
        deployed.stop_all()


def test_a_survey_survives_a_killed_server_and_ends_in_the_export(
    deployment: Deployment, fake_zalo: FakeZalo, tmp_path: Path
) -> None:
    deployment.run("db", "upgrade")
    deployment.run("units", "import", str(EXAMPLE_UNITS))
    server = deployment.serve()

    assert post_event(server, text_event("#HVT01", user_id=USER), secret="wrong")[0] == 401
    start = text_event("#hvt01", user_id=USER)
    assert post_event(server, start) == (200, {"ok": True, "outcome": "handled"})
    assert post_event(server, start)[1]["outcome"] == "duplicate"

    for count, value in [(2, 1), (3, 2)]:  # question 1, then question 2
        question = fake_zalo.wait_for_delivered(count)[-1]
        answer(server, button_payload(question, value))
    fake_zalo.wait_for_delivered(4)
    wait_until_outbox_empty(server)

    server.process.send_signal(signal.SIGKILL)
    assert server.process.wait(timeout=10) == -signal.SIGKILL
    server = deployment.serve()

    question = fake_zalo.delivered[-1]
    assert progress_line(question) == "Câu 3/6"
    for count, value in [(4, 3), (5, 4), (6, 5)]:
        question = fake_zalo.wait_for_delivered(count)[count - 1]
        answer(server, button_payload(question, value))
    fake_zalo.wait_for_delivered(8)
    answer(server, "Nhân viên rất nhiệt tình.")
    delivered = fake_zalo.wait_for_delivered(9)

    assert {body["recipient"]["user_id"] for body in delivered} == {USER}
    assert "Quầy 1 – Tư pháp, hộ tịch" in delivered[0]["message"]["text"]
    questions = [*delivered[1:6], delivered[7]]  # after question 5: the "không áp dụng" offer
    assert [progress_line(body) for body in questions] == [f"Câu {n}/6" for n in range(1, 7)]
    assert "không áp dụng" in delivered[6]["message"]["text"]
    assert "cảm ơn" in delivered[8]["message"]["text"]
    assert len(fake_zalo.received) == 10  # the nine replies, and the first one once more
    assert fake_zalo.received[0] == fake_zalo.received[1] == delivered[0]
    assert {call.headers.get("access_token") for call in fake_zalo.calls} == {ACCESS_TOKEN}

    server.process.terminate()
    server.process.wait(timeout=10)
    export = tmp_path / "export.csv"
    deployment.run("export", "--format", "csv", "--out", str(export))
    with export.open(encoding="utf-8", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["unit_code"], row["counter_code"], row["status"]) == ("HVT", "HVT01", "completed")
    answers = [row[item] for item in ["access", "procedure", "staff", "result", "feedback"]]
    assert answers == ["1", "2", "3", "4", "5"]
    assert row["comment"] == "Nhân viên rất nhiệt tình."


# --- the fake itself -----------------------------------------------------------------------


def test_the_fake_answers_scripted_faults_in_order_then_success() -> None:
    with FakeZalo(faults=[Fault(error=-32), Fault(status=502), Fault(delay=0.05)]) as zalo:
        url = f"{zalo.url}{MESSAGE_PATH}"
        body = {"recipient": {"user_id": "1"}, "message": {"text": "xin chào"}}
        answers = [requests.post(url, json=body, timeout=5) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 502, 200, 200]
    assert [a.json()["error"] for a in answers if a.status_code == 200] == [-32, 0, 0]
    assert zalo.received == [body] * 4
    assert zalo.delivered == [body] * 2


def test_the_fake_fails_at_the_configured_rate() -> None:
    with FakeZalo(failure_rate=0.5, failure=Fault(error=-211), seed=7) as zalo:
        url = f"{zalo.url}{MESSAGE_PATH}"
        for n in range(40):
            requests.post(url, json={"recipient": {"user_id": str(n)}}, timeout=5)

    failed = len(zalo.received) - len(zalo.delivered)
    assert len(zalo.received) == 40
    assert 8 <= failed <= 32
    assert {call.error for call in zalo.calls} == {0, -211}
