"""Whether a survey counts in the index, and recording it: its answers, its counting decision,
the quarantine hold, and its place in the roll-up of counts (storage/repositories/rollup/),
all in the caller's transaction.

Every channel stores its answers through `Counting.record_answers`: the Zalo turn
(bot/conversation/service.py), the tablet and the web link (bot/conversation/forms.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.conversation.quarantine import QuarantineRules
from bot.privacy.scrub import scrub_personal_data
from storage import repositories as repo
from survey_flow.counting import qualifies
from survey_flow.engine import CANCELLED, COMPLETED, PARTIAL, SurveyState
from survey_flow.questionnaire import Questionnaire

log = logging.getLogger("sipas_bot.conversations")

# The statuses a counted survey is in the index with (storage.stats.COUNTED_STATUSES).
ENDED = (COMPLETED, PARTIAL)


class Counting:
    """The counting rule of one deployment: the cooldown between a citizen's counted surveys
    of a counter, the quarantine rules, and the zone of the roll-up's local days."""

    def __init__(
        self, *, cooldown: timedelta, quarantine: QuarantineRules, default_zone: str
    ) -> None:
        self.cooldown = cooldown
        self.quarantine = quarantine
        self.default_zone = default_zone

    def before_change(
        self, session: Session, response_id: int, *, status: str, decided: bool
    ) -> None:
        """Call before changing a stored survey that was `status` and `decided`: a survey in
        the roll-up leaves it until `record_answers` puts it back as it becomes."""
        if decided and status in ENDED:
            repo.take_out(session, [response_id])

    def record_answers(
        self,
        session: Session,
        survey: SurveyState,
        questionnaire: Questionnaire,
        *,
        response_id: int,
        columns: Mapping[str, Any] | None,
        kept: Mapping[str, tuple[int | None, str | None]],
        respondent: str,
        counter_id: int,
        decided: bool,
        counted: bool,
        now: datetime,
    ) -> bool:
        """Write the survey's row (`columns`: language, status, position, updated_at,
        completed_at; None when the caller has just inserted it) and its answers over those
        `kept` from before, take its counting decision (see `decide`) and put it in the
        roll-up when it ended; returns whether it is counted."""
        added: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        for item_id, answer in survey.answers.items():
            # A comment is stored without the phone numbers, ID numbers and e-mail addresses
            # written into it (docs/privacy.md); one kept from an earlier turn is so already.
            text = scrub_personal_data(answer.text) if answer.text is not None else None
            values = {"value": answer.value, "text": text, "answered_at": now}
            if item_id not in kept:
                item = questionnaire.item(item_id)
                added.append(
                    {
                        "item_id": item_id,
                        "factor": item.factor if item else None,
                        "criterion": item.criterion if item else None,
                        **values,
                    }
                )
            elif kept[item_id] != (answer.value, text):
                changed.append({"item_id": item_id, **values})
        removed = [item_id for item_id in kept if item_id not in survey.answers]
        repo.write_answers(
            session, response_id, columns=columns, added=added, changed=changed, removed=removed
        )
        in_index = self.decide(
            session,
            survey,
            questionnaire,
            response_id=response_id,
            respondent=respondent,
            counter_id=counter_id,
            started_at=survey.started_at,
            decided=decided,
            counted=counted,
            now=now,
        )
        if survey.status in ENDED:
            repo.put_in(session, [response_id], default_zone=self.default_zone)
        return in_index

    def decide(
        self,
        session: Session,
        survey: SurveyState,
        questionnaire: Questionnaire,
        *,
        response_id: int,
        respondent: str,
        counter_id: int,
        started_at: datetime,
        decided: bool,
        counted: bool,
        now: datetime,
    ) -> bool:
        """Take the survey's counting decision the first time it qualifies; returns whether
        it is in the index (`counted` in: whether it was, as decided before).

        The first survey of a citizen at a counter that qualifies (survey_flow/counting.py)
        is counted; one that qualifies within SURVEY_COOLDOWN_HOURS of a counted one is a
        repeat. A counted survey that matches a suspicious pattern (QuarantineRules) is held
        for review, in the same transaction. The decision is taken under the conversation's
        row lock, so a citizen's surveys are decided one at a time. A cancelled survey is
        withdrawn by the citizen: its decision is undone, so it neither counts nor takes the
        next survey's place.
        """
        if survey.status == CANCELLED:
            if decided:
                repo.set_counting(
                    session, response_id, counted=False, repeat=False, qualified_at=None
                )
            return False
        if decided or not qualifies(questionnaire, survey.answers):
            return counted
        repeat = repo.counted_since(
            session, respondent_hash=respondent, counter_id=counter_id, since=now - self.cooldown
        )
        repo.set_counting(session, response_id, counted=not repeat, repeat=repeat, qualified_at=now)
        rule = None
        if not repeat:
            counter = repo.find_counter_by_id(session, counter_id)
            assert counter is not None
            rule = self.quarantine.hold_rule(
                session,
                response_id=response_id,
                respondent=respondent,
                counter=counter,
                started_at=started_at,
                method=survey.method,
                now=now,
            )
            if rule is not None:
                repo.hold_survey(session, response_id, rule)
        log.info(
            "event=survey_qualified user=%s counter_id=%d outcome=%s",
            respondent[:12],
            counter_id,
            "repeat" if repeat else "counted" if rule is None else f"held:{rule.value}",
        )
        return not repeat and rule is None
