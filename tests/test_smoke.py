from __future__ import annotations

from storage.models import SurveyResponse
from tests.conftest import text_event


def test_a_signed_start_opens_a_survey(signed_post, runtime) -> None:
    response = signed_post(text_event("#hvt01"))
    assert response.status_code == 200
    with runtime.session_factory() as session:
        stored = session.query(SurveyResponse).one()
        assert stored.status == "active"
        assert stored.counter.code == "HVT01"
