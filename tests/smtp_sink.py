"""A local SMTP server for tests: enough of RFC 5321 for smtplib to hand over a message, which
it keeps (parsed) instead of delivering. Runs in a thread on 127.0.0.1 and a free port.

It advertises STARTTLS but cannot do TLS: it records that the client asked and answers 454,
so a test can check that SMTP_STARTTLS is honoured without certificates.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        """The decoded text of the text/<subtype> part."""
        for part in self.message.walk():
            if part.get_content_type() == f"text/{subtype}":
                content: str = part.get_content()
                return content
        raise KeyError(subtype)


@dataclass
class SmtpSink:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Received] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    _server: socket.socket | None = None
    _thread: threading.Thread | None = None

    def __enter__(self) -> SmtpSink:
        self._server = socket.create_server((self.host, 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="smtp-sink", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        assert self._thread is not None and self._server is not None
        self._thread.join(timeout=5)
        self._server.close()

    def _serve(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                self._session(connection.makefile("rb"), connection)

    def _session(self, reader: object, connection: socket.socket) -> None:
        def send(line: str) -> None:
            connection.sendall(f"{line}\r\n".encode())

        def read_line() -> str:
            raw = reader.readline()  # type: ignore[attr-defined]
            return "" if not raw else raw.decode("utf-8", "replace").rstrip("\r\n")

        send("220 sink ESMTP ready")
        sender, recipients = "", []
        while True:
            line = read_line()
            if not line:
                return
            verb = line.split(" ", 1)[0].upper()
            self.commands.append(verb)
            if verb in ("EHLO", "HELO"):
                send("250-sink")
                send("250-8BITMIME")
                send("250-SMTPUTF8")
                send("250-AUTH PLAIN LOGIN")
                send("250 STARTTLS")
            elif verb == "STARTTLS":
                send("454 TLS not available in this test sink")
            elif verb == "AUTH":
                send("235 authenticated")
            elif verb == "MAIL":
                sender, recipients = line.split(":", 1)[1].split()[0].strip("<>"), []
                send("250 OK")
            elif verb == "RCPT":
                recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                send("250 OK")
            elif verb == "DATA":
                send("354 end with <CRLF>.<CRLF>")
                chunks = []
                while True:
                    raw = reader.readline()  # type: ignore[attr-defined]
                    if raw in (b".\r\n", b".\n", b""):
                        break
                    chunks.append(raw[1:] if raw.startswith(b"..") else raw)
                parsed = message_from_bytes(b"".join(chunks), policy=policy.default)
                assert isinstance(parsed, EmailMessage)
                self.messages.append(Received(sender, recipients, parsed))
                send("250 queued")
            elif verb == "RSET" or verb == "NOOP":
                send("250 OK")
            elif verb == "QUIT":
                send("221 bye")
                return
            else:
                send("502 not implemented")
