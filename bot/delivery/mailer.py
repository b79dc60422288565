"""E-mail for leaders whom Zalo cannot reach (its 7-day window closed): smtplib, nothing more.

SMTP_HOST empty means no e-mail. STARTTLS is used when SMTP_STARTTLS=1 (the default); port
465 means TLS from the first byte (SMTPS). SMTP_USER/SMTP_PASSWORD log in when set.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from bot.config import ConfigError, Settings

SMTPS_PORT = 465


class MailError(Exception):
    """The message could not be handed to the SMTP server; says why (never the password)."""


@dataclass(frozen=True)
class Mailer:
    host: str
    port: int
    sender: str
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer | None:
        """The configured mailer, None when SMTP_HOST is empty; ConfigError when half set."""
        if not settings.smtp_host:
            return None
        if "@" not in settings.smtp_from:
            raise ConfigError(
                "SMTP_FROM must be an e-mail address (e.g. sipas@phuong.gov.vn) when SMTP_HOST "
                "is set"
            )
        if settings.smtp_password and not settings.smtp_user:
            raise ConfigError("SMTP_USER must be set when SMTP_PASSWORD is")
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )

    def send(self, to: str, subject: str, text: str, html_body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[-1])
        message.set_content(text)
        message.add_alternative(html_body, subtype="html")
        try:
            with self._connect() as smtp:
                if self.starttls and self.port != SMTPS_PORT:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:  # OSError covers timeouts
            raise MailError(f"{type(exc).__name__}: {exc}"[:500]) from exc

    def _connect(self) -> smtplib.SMTP:
        if self.port == SMTPS_PORT:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        smtp.ehlo()
        return smtp


def render_html(subject: str, text: str) -> str:
    """The same content as the text, as simple HTML: lines as paragraphs, "• " lines as a list."""
    parts = [
        "<!doctype html>",
        '<html lang="vi"><head><meta charset="utf-8">',
        f"<title>{html.escape(subject)}</title></head>",
        '<body style="font-family: Arial, sans-serif; line-height: 1.5">',
        f"<h2>{html.escape(subject)}</h2>",
    ]
    in_list = False
    for line in text.splitlines():
        bullet = line.startswith("• ")
        if bullet and not in_list:
            parts.append("<ul>")
        if not bullet and in_list:
            parts.append("</ul>")
        in_list = bullet
        if bullet:
            parts.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            parts.append(f"<p>{html.escape(line)}</p>")
    if in_list:
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
