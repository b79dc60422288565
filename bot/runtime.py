"""Everything a request, a job or a command needs, built once by the app factory: the
database, the questionnaires and texts, the Zalo client and tokens, the mailer, and the
services of conversations, digests, alerts and leader messages. Jobs and commands take them
from here; none rebuilds one from the settings."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.cases.deadlines import WorkingCalendar, read_holidays_file
from bot.cases.desk import CaseDesk, CaseRules
from bot.cases.intake import CaseIntake
from bot.config import ConfigError, Settings, default_database_path
from bot.conversation.counting import Counting
from bot.conversation.forms import FormSurveys
from bot.conversation.inbox import Inbox
from bot.conversation.limits import MessageBucket
from bot.conversation.paper import PaperForms
from bot.conversation.presence import RotatingCodes
from bot.conversation.quarantine import QuarantineRules
from bot.conversation.registry import FlowRegistry
from bot.conversation.service import AccountLimits, SurveyService
from bot.delivery.accounts import OfficialAccounts, environment_oa
from bot.delivery.leader_messages import LeaderMail
from bot.delivery.mailer import Mailer
from bot.delivery.sender import Deliver, OutboxSender, RateLimiter, sandbox_delivery, zalo_delivery
from bot.delivery.sign_in_links import SignInLinks
from bot.delivery.tokens import TokenStore
from bot.directory import CounterDirectory
from bot.privacy import Pseudonymizer
from bot.reporting.alerts import AlertService
from bot.reporting.digests import DigestService
from storage.db import make_engine, make_session_factory
from storage.models import Unit
from survey_flow.texts import LocalTexts, load_texts
from zalo_client import RequestsTransport, SignatureVerifier, ZaloClient


def utc_now() -> datetime:
    return datetime.now(UTC)


def case_rules(settings: Settings) -> CaseRules:
    """The case rules of the settings; a bad holidays file stops start-up with its lines."""
    calendar = (
        read_holidays_file(settings.cases_holidays_file)
        if settings.cases_holidays_file
        else WorkingCalendar()
    )
    return CaseRules(
        due_days=settings.cases_due_working_days,
        overdue_alert_days=settings.cases_overdue_alert_days,
        calendar=calendar,
        zone=settings.tz,
    )


def build_mailer(settings: Settings) -> tuple[Mailer | None, str | None]:
    """The mailer (None without SMTP_HOST) and, for half-set SMTP settings, what is wrong:
    `check` reports it and serving refuses to start, but other commands still run."""
    try:
        return Mailer.from_settings(settings), None
    except ConfigError as exc:
        return None, str(exc)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    service: SurveyService
    forms: FormSurveys
    cases: CaseDesk
    case_intake: CaseIntake
    flows: FlowRegistry
    verifier: SignatureVerifier
    deliver: Deliver
    tokens: TokenStore | None
    pseudonyms: Pseudonymizer
    texts: LocalTexts
    mailer: Mailer | None
    leader_mail: LeaderMail
    digests: DigestService
    alerts: AlertService
    rotating: RotatingCodes
    sign_in_links: SignInLinks | None  # None while the console is not set up
    paper: PaperForms
    inbox: Inbox  # WEBHOOK_INTAKE=queued: events stored by the webhook, run by the workers
    mail_problem: str | None = None  # half-configured SMTP: `check` says it, serving stops
    clock: Callable[[], datetime] = utc_now
    transport: RequestsTransport | None = None
    sender_wakeup: threading.Event = field(default_factory=threading.Event)
    # Set by the webhook when it stored an event: this process's inbox threads run it now.
    inbox_wakeup: threading.Event = field(default_factory=threading.Event)
    # The OAs served: the environment's one, or the units file's `oas` (docs/deploy.md).
    oas: OfficialAccounts | None = None

    @property
    def accounts(self) -> OfficialAccounts:
        assert self.oas is not None, "Runtime.build sets the OAs"
        return self.oas

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        deliver: Deliver | None = None,
    ) -> Runtime:
        database = make_url(settings.database_url).database
        if database and Path(database).absolute() == default_database_path():
            default_database_path().parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url)
        pseudonyms = Pseudonymizer.from_settings(settings)
        session_factory = make_session_factory(engine)
        flows = FlowRegistry(settings.survey_flow)
        flows.named(settings.survey_flow)  # an invalid default questionnaire stops start-up
        tokens: TokenStore | None = None
        transport: RequestsTransport | None = None
        if not settings.zalo_sandbox:
            transport = RequestsTransport()
            client = ZaloClient(
                transport,
                api_base=settings.zalo_api_base,
                oauth_base=settings.zalo_oauth_base,
                access_token=lambda: tokens.access_token() if tokens else "",
                choice_style=settings.zalo_choice_style,
            )
            tokens = TokenStore(
                session_factory,
                client,
                app_id=settings.zalo_app_id,
                app_secret=settings.zalo_app_secret,
                clock=clock,
                seed=(settings.zalo_access_token, settings.zalo_refresh_token),
            )
            if deliver is None:
                deliver = zalo_delivery(client, tokens)
        if deliver is None:
            deliver = sandbox_delivery(pseudonyms)
        texts = load_texts()
        mailer, mail_problem = build_mailer(settings)
        email_ready = mailer is not None
        cases = CaseDesk(case_rules(settings), texts, email_ready=email_ready)
        case_intake = CaseIntake(cases, pseudonyms)
        rotating = RotatingCodes(
            settings.presence_secret,
            step_seconds=settings.presence_code_step_seconds,
            valid_steps=settings.presence_code_valid_steps,
        )
        links = SignInLinks.from_settings(settings)
        verifier = SignatureVerifier(settings.zalo_app_id, settings.zalo_oa_secret_key)
        oas = OfficialAccounts(
            settings,
            session_factory,
            environment=environment_oa(
                settings, verifier=verifier, tokens=tokens, deliver=deliver, limiter=None
            ),
            clock=clock,
            transport=transport,
        )
        service = SurveyService(
            texts=texts,
            flows=flows,
            policy=settings.policy,
            cooldown=timedelta(hours=settings.survey_cooldown_hours),
            limits=AccountLimits(
                messages=MessageBucket(
                    settings.account_message_burst, settings.account_messages_per_minute
                ),
                starts_per_day=settings.account_starts_per_day,
            ),
            rotating=rotating,
            pseudonyms=pseudonyms,
            sign_in_links=links,
            counting=Counting(
                cooldown=timedelta(hours=settings.survey_cooldown_hours),
                quarantine=QuarantineRules.from_settings(settings),
                default_zone=settings.timezone,
            ),
            intake=case_intake,
            directory=CounterDirectory(
                check_every=timedelta(seconds=settings.directory_check_seconds)
            ),
        )
        forms = FormSurveys(
            service,
            intake=case_intake,
            kiosk_per_hour=settings.kiosk_surveys_per_hour,
            submit_window=timedelta(hours=settings.form_submit_hours),
        )
        return cls(
            settings=settings,
            engine=engine,
            session_factory=session_factory,
            service=service,
            forms=forms,
            paper=PaperForms(forms, default_zone=settings.tz),
            inbox=Inbox(session_factory, service, pseudonyms=pseudonyms, clock=clock),
            cases=cases,
            case_intake=case_intake,
            rotating=rotating,
            flows=flows,
            verifier=verifier,
            deliver=deliver,
            tokens=tokens,
            texts=texts,
            mailer=mailer,
            mail_problem=mail_problem,
            leader_mail=LeaderMail(session_factory, mailer, texts, clock=clock),
            pseudonyms=pseudonyms,
            digests=DigestService(settings, texts, email_ready=email_ready, links=links),
            alerts=AlertService(settings, texts, email_ready=email_ready, links=links),
            sign_in_links=links,
            clock=clock,
            transport=transport,
            oas=oas,
        )

    def oa_shown(self, unit: Unit) -> tuple[str, str]:
        """The (id, name) of the OA a unit's citizens use, as posters and the landing page
        show it: the units file's OA, or the environment's (ZALO_OA_ID, ZALO_OA_NAME)."""
        if unit.oa_id is None:
            return self.settings.zalo_oa_id, self.settings.zalo_oa_name
        served = self.accounts.get(unit.oa_id)
        return unit.oa_id, served.name if served is not None else ""

    def sender(self, *, concurrency: int = 4, **kwargs: object) -> OutboxSender:
        """The outbox sender, with the HTTP connection pool sized for its sending threads
        (they are its only users of the database through the token store's cache, one at a
        time, so the engine's pool of 5 + 10 fits any concurrency)."""
        if self.transport is not None:
            # + the web threads and jobs of this process that call Zalo too
            self.transport.keep_connections(concurrency + 8)
        return OutboxSender(
            self.session_factory,
            self.deliver,
            pseudonyms=self.pseudonyms,
            concurrency=concurrency,
            clock=self.clock,
            max_age=timedelta(hours=self.settings.outbox_max_age_hours),
            lease=timedelta(seconds=self.settings.outbox_lease_seconds),
            limiter=RateLimiter(self.settings.zalo_rate_per_minute),
            **{"lanes": self.accounts.lane if self.accounts.multiple else None, **kwargs},  # type: ignore[arg-type]
        )
