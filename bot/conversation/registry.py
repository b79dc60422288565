"""Which questionnaire a counter asks, and the exact version every stored survey was asked with.

A version's text is kept in the database the first time it is used. A survey in progress, and
every stored answer, is read with the text kept for its version, so editing a file changes
only the surveys started afterwards; editing it without a new version is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from bot.config import ConfigError
from storage import repositories as repo
from storage.models import Counter
from survey_flow.preview import load_checked
from survey_flow.questionnaire import (
    Questionnaire,
    QuestionnaireError,
    parse_questionnaire,
)
from survey_flow.texts import Texts, load_texts


class FlowRegistry:
    def __init__(self, default: str, *, texts: Mapping[str, Texts] | None = None) -> None:
        self.default_name = default
        self._texts = texts
        self._by_name: dict[str, Questionnaire] = {}
        self._by_version: dict[tuple[str, str], Questionnaire] = {}

    def named(self, name: str) -> Questionnaire:
        """A questionnaire by shipped id or file path, checked as `sipas-bot flows check`
        checks it; ConfigError when unusable."""
        if name not in self._by_name:
            if self._texts is None:
                self._texts = load_texts()
            try:
                self._by_name[name] = load_checked(name, self._texts)
            except QuestionnaireError as exc:
                raise ConfigError(
                    f"questionnaire {name!r} cannot be used: {exc} "
                    f"(see `sipas-bot flows check {name}`)"
                ) from None
        return self._by_name[name]

    def for_counter(self, session: Session, counter: Counter, *, now: datetime) -> Questionnaire:
        name = counter.questionnaire or counter.unit.questionnaire or self.default_name
        questionnaire = self.named(name)
        self.register(session, questionnaire, now=now)
        return questionnaire

    def for_default(self, session: Session, *, now: datetime) -> Questionnaire:
        questionnaire = self.named(self.default_name)
        self.register(session, questionnaire, now=now)
        return questionnaire

    def register(self, session: Session, questionnaire: Questionnaire, *, now: datetime) -> None:
        key = (questionnaire.id, questionnaire.version)
        if self._by_version.get(key) is questionnaire:
            return
        kept = repo.register_questionnaire(
            session, questionnaire.id, questionnaire.version, questionnaire.source_text, now=now
        )
        if kept is not None:
            raise ConfigError(
                f"questionnaire {questionnaire.id} version {questionnaire.version} "
                f"({questionnaire.source}) differs from the text already used for that version: "
                "give the edited file a new version (after editing a block, every questionnaire "
                "that includes it)"
            )
        self._by_version[key] = questionnaire

    def version(self, session: Session, questionnaire_id: str, version: str) -> Questionnaire:
        """The questionnaire a stored survey was asked with."""
        key = (questionnaire_id, version)
        if key not in self._by_version:
            text = repo.questionnaire_text(session, questionnaire_id, version)
            if text is None:
                raise LookupError(f"questionnaire {questionnaire_id} {version} was never kept")
            self._by_version[key] = parse_questionnaire(text, f"{questionnaire_id}@{version}")
        return self._by_version[key]
