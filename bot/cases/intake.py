"""Taking citizens' feedback in as cases (docs/cases.md, "What opens a case"): what a turn of
the chat opens (a note or a free message, an ended survey with a comment or a counted low
rating) and the acknowledgements that go with the turn's replies; what a survey the expiry
job closed opens, by the same rule; and what a citizen outside a survey is told who sends a
case reference or a phone number.

The conversation (bot.conversation, above this package) calls `CaseIntake` once per turn;
the jobs call `open_for_expired`. Everything works in the caller's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.cases.desk import CaseDesk
from bot.cases.kinds import classify
from bot.cases.references import parse_reference
from bot.delivery.window import window_closed
from bot.privacy import Pseudonymizer
from bot.privacy.scrub import phone_number_in, scrub_personal_data
from storage import repositories as repo
from storage.models import QUARANTINE_IN_INDEX, Case, CaseKind, CaseSource, QuarantineState
from survey_flow.engine import SurveyState
from survey_flow.questionnaire import Questionnaire
from survey_flow.sipas import LOW_RATINGS

log = logging.getLogger("sipas_bot.cases")

Body = dict[str, Any]


@dataclass(frozen=True)
class EndedSurvey:
    """A survey as it ended (in a turn, or closed by the expiry job), as far as cases care."""

    response_id: int
    unit_id: int
    counter_id: int
    in_index: bool  # counted, and not held for review
    language: str
    comment: str | None  # its first free-text answer that is not blank
    scores: dict[str, int]  # the factors' items: item id → value (0: not applicable)

    @classmethod
    def of_state(
        cls,
        survey: SurveyState,
        questionnaire: Questionnaire,
        *,
        response_id: int,
        unit_id: int,
        counter_id: int,
        in_index: bool,
    ) -> EndedSurvey:
        scores = {
            item_id: answer.value
            for item_id, answer in survey.answers.items()
            if answer.value is not None
            and (item := questionnaire.item(item_id)) is not None
            and item.factor is not None
        }
        texts = (a.text for a in survey.answers.values() if a.text and a.text.strip())
        return cls(
            response_id,
            unit_id,
            counter_id,
            in_index,
            survey.language,
            next(texts, None),
            scores,
        )

    @property
    def rated_low(self) -> bool:
        return any(value in LOW_RATINGS for value in self.scores.values())


class CaseIntake:
    def __init__(self, desk: CaseDesk, pseudonyms: Pseudonymizer) -> None:
        self.desk = desk
        self.pseudonyms = pseudonyms

    def answer(
        self, session: Session, *, user_id: str, language: str, text: str, now: datetime
    ) -> str | None:
        """Outside a survey: a case reference is answered with that case's status, a phone
        number is kept for the citizen's open case. None: the text is neither."""
        reference = parse_reference(text)
        if reference is not None:
            return self.desk.status_text(
                session,
                reference,
                respondent_hash=self.pseudonyms.respondent_hash(user_id),
                language=language,
            )
        phone = phone_number_in(text)
        if phone is not None:
            return self.desk.keep_phone(session, user_id, phone, language=language, now=now)
        return None

    def open_for_turn(
        self,
        session: Session,
        *,
        user_id: str,
        oa: str,
        language: str,
        notes: Sequence[str],
        survey_place: tuple[int, int] | None,
        ended: Sequence[EndedSurvey],
        replies: Sequence[Body],
        now: datetime,
    ) -> list[Body]:
        """Open the turn's cases and return its messages with their acknowledgements: a
        note's before the replies, an ended survey's added to the thanks that ended it (one
        message, not two).

        `survey_place` is the (unit, counter) of the survey the turn began in, if any: notes
        typed during it are its unit's; a message outside one belongs to the unit and counter
        of the citizen's latest survey, or to the only unit of the OA `oa` it came to (none
        when that cannot be told).
        """
        bodies = [
            self.desk.acknowledgement(case)
            for case in self._open_notes(session, user_id, oa, language, notes, survey_place, now)
        ]
        bodies += replies
        for survey in ended:
            respondent = self.pseudonyms.respondent_hash(user_id)
            case = self._open_survey_case(session, survey, respondent, user_id, now)
            if case is None:
                continue
            ack = self.desk.acknowledgement(case)
            if bodies and not bodies[-1]["buttons"]:
                bodies[-1] = {**bodies[-1], "text": f"{bodies[-1]['text']}\n\n{ack['text']}"}
            else:
                bodies.append(ack)
        return bodies

    def open_for_expired(
        self, session: Session, response_ids: Sequence[int], *, now: datetime
    ) -> int:
        """The cases of chat surveys the expiry job just closed as partial, by the rule of a
        survey that ends in the chat; the citizen is sent the reference while Zalo still
        takes their messages. Returns how many cases were opened."""
        opened = 0
        for stored, user_id, seen, oa in repo.chat_surveys(session, response_ids):
            comment = next(
                (a.text for a in stored.answers if a.factor is None and a.text and a.text.strip()),
                None,
            )
            survey = EndedSurvey(
                response_id=stored.id,
                unit_id=stored.unit_id,
                counter_id=stored.counter_id,
                in_index=stored.counted
                and QuarantineState(stored.quarantine) in QUARANTINE_IN_INDEX,
                language=stored.language,
                comment=comment,
                scores={
                    a.item_id: a.value
                    for a in stored.answers
                    if a.factor is not None and a.value is not None
                },
            )
            respondent = self.pseudonyms.respondent_hash(user_id)
            case = self._open_survey_case(session, survey, respondent, user_id, now)
            if case is None:
                continue
            opened += 1
            if not window_closed(seen, now):
                repo.enqueue_replies(
                    session, user_id, [self.desk.acknowledgement(case)], now=now, oa=oa
                )
        return opened

    def open_for_form(
        self, session: Session, survey: EndedSurvey, *, respondent_hash: str, now: datetime
    ) -> Case | None:
        """The case of a survey answered on a form (kiosk, web link, paper), by the rule of a
        survey that ends in the chat. Nobody is messaged: the page shows the reference (kiosk,
        web link), and a paper form has no one to tell. The case has no Zalo id to answer to
        (`CaseDesk.reply` refuses it: no channel to reply)."""
        return self._open_survey_case(session, survey, respondent_hash, None, now)

    def withdraw_form(
        self, session: Session, response_id: int, *, actor: str, resolution: str, now: datetime
    ) -> Case | None:
        """A form survey taken back (a paper form undone): its case, if it opened one, is
        closed as withdrawn (`CaseDesk.withdraw`)."""
        return self.desk.withdraw(session, response_id, actor=actor, resolution=resolution, now=now)

    def _open_notes(
        self,
        session: Session,
        user_id: str,
        oa: str,
        language: str,
        notes: Sequence[str],
        survey_place: tuple[int, int] | None,
        now: datetime,
    ) -> list[Case]:
        """A case for each message that answered nothing."""
        if not notes:
            return []
        respondent = self.pseudonyms.respondent_hash(user_id)
        if survey_place is not None:
            place: tuple[int | None, int | None] = survey_place
            source = CaseSource.NOTE
        else:
            place = repo.latest_place_of(session, respondent) or (
                repo.sole_unit_id(session, oa=oa),
                None,
            )
            source = CaseSource.MESSAGE
        opened = []
        for text in notes:
            scrubbed = scrub_personal_data(text)
            case = self.desk.open(
                session,
                repo.NewCase(
                    unit_id=place[0],
                    counter_id=place[1],
                    response_id=None,
                    source=source.value,
                    kind=classify(scrubbed).value,
                    text=scrubbed,
                    scores=None,
                    respondent_hash=respondent,
                    language=language,
                    user_id=user_id,
                ),
                now=now,
            )
            if case is not None:
                opened.append(case)
        return opened

    def _open_survey_case(
        self,
        session: Session,
        survey: EndedSurvey,
        respondent_hash: str,
        user_id: str | None,
        now: datetime,
    ) -> Case | None:
        """The survey's case when it has a comment, or is counted with a factor rated low (one
        case per survey: the comment's, kind phản ánh at least when rated low); None when it
        has neither or its case was opened already."""
        low = survey.in_index and survey.rated_low
        if survey.comment is None and not low:
            return None
        if survey.comment is not None:
            text = scrub_personal_data(survey.comment)
            kind = classify(text)
            if low and kind == CaseKind.SUGGESTION:
                kind = CaseKind.COMPLAINT
        else:
            text = "Đánh giá thấp: " + ", ".join(
                f"{item_id} = {value}"
                for item_id, value in survey.scores.items()
                if value in LOW_RATINGS
            )
            kind = CaseKind.COMPLAINT
        return self.desk.open(
            session,
            repo.NewCase(
                unit_id=survey.unit_id,
                counter_id=survey.counter_id,
                response_id=survey.response_id,
                source=(
                    CaseSource.COMMENT if survey.comment is not None else CaseSource.LOW_RATING
                ),
                kind=kind.value,
                text=text,
                scores=survey.scores or None,
                respondent_hash=respondent_hash,
                language=survey.language,
                user_id=user_id,
            ),
            now=now,
        )
