"""The Zalo API client against a faked network edge: requests sent and outcomes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
import requests
import responses

from zalo_client import (
    QueryButton,
    RequestsTransport,
    SentMessage,
    TokenPair,
    UrlButton,
    ZaloAuthError,
    ZaloClient,
    ZaloConnectionError,
    ZaloError,
    ZaloInvalidRequest,
    ZaloNotAuthorised,
    ZaloOAuthError,
    ZaloQuotaExceeded,
    ZaloRateLimited,
    ZaloServerError,
    ZaloUserUnreachable,
    ZaloWindowClosed,
    error_from_response,
    render_message,
)

SEND_URL = "https://openapi.zalo.me/v3.0/oa/message/cs"
PROFILE_URL = "https://openapi.zalo.me/v2.0/oa/getoa"
REFRESH_URL = "https://oauth.zaloapp.com/v4/oa/access_token"
TOKEN = "access-token-value"
USER = "2512523625412515"
SUCCESS = {
    "data": {
        "message_id": "63ecf43f0df7dba892e6",
        "user_id": USER,
        "sent_time": "1626926349402",
        "quota": {},
    },
    "error": 0,
    "message": "Success",
}
CHOICES = [
    QueryButton("Rất hài lòng", "#sv:q1:5"),
    QueryButton("Hài lòng", "#sv:q1:4"),
    QueryButton("Bình thường", "#sv:q1:3"),
    QueryButton("Chưa hài lòng", "#sv:q1:2"),
    QueryButton("Rất không hài lòng", "#sv:q1:1"),
]


@pytest.fixture
def zalo() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def make_client(choice_style: str = "buttons") -> ZaloClient:
    return ZaloClient(
        RequestsTransport(requests.Session()),
        access_token=lambda: TOKEN,
        choice_style=choice_style,
    )


def sent_json(mock: responses.RequestsMock) -> object:
    assert len(mock.calls) == 1
    body = mock.calls[0].request.body
    assert body is not None
    return json.loads(body)


def test_send_text_only(zalo: responses.RequestsMock) -> None:
    zalo.post(SEND_URL, json=SUCCESS)

    sent = make_client().send_text(USER, "Cảm ơn bạn!")

    assert sent == SentMessage(message_id="63ecf43f0df7dba892e6", user_id=USER)
    request = zalo.calls[0].request
    assert request.headers["access_token"] == TOKEN
    assert "Authorization" not in request.headers
    assert request.headers["Content-Type"] == "application/json"
    assert sent_json(zalo) == {"recipient": {"user_id": USER}, "message": {"text": "Cảm ơn bạn!"}}


def test_send_text_with_five_buttons(zalo: responses.RequestsMock) -> None:
    zalo.post(SEND_URL, json=SUCCESS)

    make_client().send_text(USER, "Bạn hài lòng?", buttons=CHOICES)

    assert sent_json(zalo) == {
        "recipient": {"user_id": USER},
        "message": {
            "text": "Bạn hài lòng?",
            "attachment": {
                "type": "template",
                "payload": {
                    "buttons": [
                        {"title": "Rất hài lòng", "type": "oa.query.hide", "payload": "#sv:q1:5"},
                        {"title": "Hài lòng", "type": "oa.query.hide", "payload": "#sv:q1:4"},
                        {"title": "Bình thường", "type": "oa.query.hide", "payload": "#sv:q1:3"},
                        {"title": "Chưa hài lòng", "type": "oa.query.hide", "payload": "#sv:q1:2"},
                        {
                            "title": "Rất không hài lòng",
                            "type": "oa.query.hide",
                            "payload": "#sv:q1:1",
                        },
                    ]
                },
            },
        },
    }


def test_send_text_list_style(zalo: responses.RequestsMock) -> None:
    zalo.post(SEND_URL, json=SUCCESS)

    make_client("list").send_text(USER, "Bạn hài lòng?", buttons=CHOICES[:2])

    assert sent_json(zalo) == {
        "recipient": {"user_id": USER},
        "message": {
            "text": "Bạn hài lòng?",
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "list",
                    "elements": [
                        {
                            "title": "Rất hài lòng",
                            "subtitle": "Bạn hài lòng?",
                            "default_action": {"type": "oa.query.hide", "payload": "#sv:q1:5"},
                        },
                        {
                            "title": "Hài lòng",
                            "default_action": {"type": "oa.query.hide", "payload": "#sv:q1:4"},
                        },
                    ],
                },
            },
        },
    }


def test_send_text_text_style(zalo: responses.RequestsMock) -> None:
    zalo.post(SEND_URL, json=SUCCESS)

    make_client("text").send_text(USER, "Bạn hài lòng?", buttons=CHOICES[:3])

    assert sent_json(zalo) == {
        "recipient": {"user_id": USER},
        "message": {"text": "Bạn hài lòng?\n1. Rất hài lòng\n2. Hài lòng\n3. Bình thường"},
    }


@pytest.mark.parametrize("style", ["buttons", "list", "text"])
def test_without_buttons_every_style_sends_plain_text(style: str) -> None:
    assert render_message("Xin chào", [], style) == {"text": "Xin chào"}


def test_unknown_choice_style_is_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        make_client("carousel")


def test_default_timeout_is_sent(zalo: responses.RequestsMock) -> None:
    zalo.post(SEND_URL, json=SUCCESS)

    make_client().send_text(USER, "Xin chào")

    sent_kwargs = zalo.calls[0].request.req_kwargs  # type: ignore[attr-defined]
    assert sent_kwargs["timeout"] == (3.05, 10)


@pytest.mark.parametrize(
    ("text", "buttons"),
    [
        ("Bạn hài lòng?", [*CHOICES, QueryButton("Khác", "#sv:q1:0")]),
        ("", []),
        ("x" * 2001, []),
        ("Bạn hài lòng?", [QueryButton("Có", "p" * 1001)]),
        ("Bạn hài lòng?", [QueryButton("", "#sv:q1:5")]),
        ("Bạn hài lòng?", [QueryButton("Có", "")]),
    ],
    ids=["six-buttons", "empty-text", "long-text", "long-payload", "empty-title", "empty-payload"],
)
def test_invalid_message_raises_and_sends_nothing(
    zalo: responses.RequestsMock, text: str, buttons: list[QueryButton]
) -> None:
    zalo.post(SEND_URL, json=SUCCESS)

    with pytest.raises(ValueError):
        make_client().send_text(USER, text, buttons=buttons)

    assert len(zalo.calls) == 0


def test_limits_themselves_are_accepted(zalo: responses.RequestsMock) -> None:
    zalo.post(SEND_URL, json=SUCCESS)

    make_client().send_text(USER, "x" * 2000, buttons=[QueryButton("Có", "p" * 1000)])

    assert len(zalo.calls) == 1


def test_text_style_checks_the_length_after_numbering(zalo: responses.RequestsMock) -> None:
    zalo.post(SEND_URL, json=SUCCESS)

    with pytest.raises(ValueError):
        make_client("text").send_text(USER, "x" * 1995, buttons=CHOICES[:1])

    assert len(zalo.calls) == 0


def test_list_style_limits_title_length() -> None:
    with pytest.raises(ValueError):
        render_message("Bạn hài lòng?", [QueryButton("t" * 101, "#sv:q1:5")], "list")


@pytest.mark.parametrize(
    ("code", "error_class", "should_retry"),
    [
        (-32, ZaloRateLimited, True),
        (-201, ZaloInvalidRequest, False),
        (-211, ZaloQuotaExceeded, True),
        (-213, ZaloUserUnreachable, False),
        (-216, ZaloAuthError, False),
        (-220, ZaloAuthError, False),
        (-124, ZaloAuthError, False),
        (-223, ZaloNotAuthorised, False),
        (-224, ZaloNotAuthorised, False),
        (-227, ZaloUserUnreachable, False),
        (-230, ZaloWindowClosed, False),
        (-232, ZaloWindowClosed, False),
        (-999, ZaloInvalidRequest, False),
    ],
)
def test_error_code_at_http_200_raises_its_class(
    zalo: responses.RequestsMock, code: int, error_class: type[ZaloError], should_retry: bool
) -> None:
    zalo.post(SEND_URL, json={"error": code, "message": f"Zalo says no to {USER}"}, status=200)

    with pytest.raises(error_class) as caught:
        make_client().send_text(USER, "Xin chào")

    error = caught.value
    assert type(error) is error_class
    assert error.should_retry is should_retry
    assert (error.code, error.http_status, error.user_id) == (code, 200, USER)
    assert str(code) in str(error)
    # Who it was for is on the error, never in its text (which is logged and stored).
    assert USER not in str(error)
    assert "Zalo says no to <user>" in str(error)
    assert TOKEN not in str(error)


def test_http_502_is_a_server_error(zalo: responses.RequestsMock) -> None:
    zalo.post(SEND_URL, body="<html>Bad Gateway</html>", status=502)

    with pytest.raises(ZaloServerError) as caught:
        make_client().send_text(USER, "Xin chào")

    assert caught.value.should_retry is True
    assert (caught.value.http_status, caught.value.user_id) == (502, USER)


def test_non_json_body_at_http_200_is_a_connection_error(zalo: responses.RequestsMock) -> None:
    zalo.post(SEND_URL, body="<html>captive portal</html>", status=200)

    with pytest.raises(ZaloConnectionError) as caught:
        make_client().send_text(USER, "Xin chào")

    assert caught.value.should_retry is True


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectTimeout(),
        requests.exceptions.ReadTimeout(),
        requests.exceptions.ConnectionError(),
    ],
)
def test_network_failure_is_a_connection_error(
    zalo: responses.RequestsMock, failure: Exception
) -> None:
    zalo.post(SEND_URL, body=failure)

    with pytest.raises(ZaloConnectionError) as caught:
        make_client().send_text(USER, "Xin chào")

    assert caught.value.should_retry is True
    assert caught.value.user_id == USER


def test_get_oa_profile(zalo: responses.RequestsMock) -> None:
    profile = {"oa_id": "388613280878808645", "name": "UBND phường"}
    zalo.get(PROFILE_URL, json={"data": profile, "error": 0, "message": "Success"})

    assert make_client().get_oa_profile() == profile
    assert zalo.calls[0].request.headers["access_token"] == TOKEN


def test_get_oa_profile_with_expired_token(zalo: responses.RequestsMock) -> None:
    zalo.get(PROFILE_URL, json={"error": -216, "message": "Access token is invalid"})

    with pytest.raises(ZaloAuthError):
        make_client().get_oa_profile()


def test_refresh_success(zalo: responses.RequestsMock) -> None:
    zalo.post(
        REFRESH_URL,
        json={"access_token": "new-access", "refresh_token": "new-refresh", "expires_in": "90000"},
    )

    pair = make_client().refresh_access_token(
        app_id="360846524940903967", app_secret="app-secret", refresh_token="old-refresh"
    )

    assert pair == TokenPair(
        access_token="new-access", refresh_token="new-refresh", expires_in=90000
    )
    request = zalo.calls[0].request
    assert request.headers["secret_key"] == "app-secret"
    assert "access_token" not in request.headers
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert isinstance(request.body, str)
    assert parse_qs(request.body) == {
        "refresh_token": ["old-refresh"],
        "app_id": ["360846524940903967"],
        "grant_type": ["refresh_token"],
    }


def test_token_pair_repr_hides_tokens() -> None:
    pair = TokenPair(access_token="new-access", refresh_token="new-refresh", expires_in=90000)
    assert "new-access" not in repr(pair)
    assert "new-refresh" not in repr(pair)


def test_refresh_error_name_at_http_200(zalo: responses.RequestsMock) -> None:
    zalo.post(
        REFRESH_URL,
        json={
            "error_name": "Invalid refresh token",
            "error_description": "Refresh token is invalid or expired",
            "error": -14020,
        },
        status=200,
    )

    with pytest.raises(ZaloOAuthError) as caught:
        make_client().refresh_access_token(
            app_id="360846524940903967", app_secret="app-secret", refresh_token="old-refresh"
        )

    assert caught.value.error_name == "Invalid refresh token"
    assert caught.value.should_retry is False
    assert "app-secret" not in str(caught.value)
    assert "old-refresh" not in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"access_token": "new-access", "expires_in": "90000"},
        {"refresh_token": "new-refresh", "expires_in": "90000"},
        {"access_token": "", "refresh_token": "new-refresh"},
        {"error": -216, "message": "Access token is invalid"},
    ],
    ids=["empty", "no-refresh-token", "no-access-token", "empty-access-token", "api-error"],
)
def test_refresh_without_a_token_pair_is_an_oauth_error(
    zalo: responses.RequestsMock, body: dict[str, object]
) -> None:
    zalo.post(REFRESH_URL, json=body)

    with pytest.raises(ZaloOAuthError):
        make_client().refresh_access_token(
            app_id="360846524940903967", app_secret="app-secret", refresh_token="old-refresh"
        )


def test_refresh_http_5xx_is_a_server_error(zalo: responses.RequestsMock) -> None:
    zalo.post(REFRESH_URL, body="upstream down", status=503)

    with pytest.raises(ZaloServerError):
        make_client().refresh_access_token(
            app_id="360846524940903967", app_secret="app-secret", refresh_token="old-refresh"
        )


def test_refresh_keeps_a_pair_whose_expiry_is_unreadable(zalo: responses.RequestsMock) -> None:
    zalo.post(REFRESH_URL, json={"access_token": "a", "refresh_token": "r", "expires_in": "soon"})

    pair = make_client().refresh_access_token(
        app_id="360846524940903967", app_secret="app-secret", refresh_token="old-refresh"
    )

    assert (pair.access_token, pair.refresh_token, pair.expires_in) == ("a", "r", 90000)


@pytest.mark.parametrize(
    ("http_status", "body", "expected"),
    [
        (200, {"error": 0, "message": "Success", "data": {}}, None),
        (200, {"access_token": "a", "refresh_token": "r"}, None),
        (200, {"error": -230, "message": "outside window"}, ZaloWindowClosed),
        (200, {"error": "-32"}, ZaloRateLimited),
        (200, {"error": "bad"}, ZaloInvalidRequest),
        (200, None, ZaloConnectionError),
        (429, None, ZaloRateLimited),
        (404, None, ZaloInvalidRequest),
        (400, {"error": 0}, ZaloInvalidRequest),
        (500, {"error": 0}, ZaloServerError),
        (200, {"error_name": "Invalid app id"}, ZaloOAuthError),
    ],
)
def test_error_from_response(
    http_status: int, body: object, expected: type[ZaloError] | None
) -> None:
    error = error_from_response(http_status=http_status, body=body, user_id=USER)
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected
        assert error.user_id == USER
        assert error.http_status == http_status


def test_a_url_button_opens_a_page_in_each_style() -> None:
    ack, view = QueryButton("Đã nhận", "dg:1:ack"), UrlButton("Xem chi tiết", "https://x.vn/c")
    buttons = render_message("Báo cáo", [ack, view], "buttons")
    assert buttons["attachment"]["payload"]["buttons"][1] == {  # type: ignore[index]
        "title": "Xem chi tiết",
        "type": "oa.open.url",
        "payload": {"url": "https://x.vn/c"},
    }
    listed = render_message("Báo cáo", [ack, view], "list")
    element = listed["attachment"]["payload"]["elements"][1]  # type: ignore[index]
    assert element["default_action"] == {
        "type": "oa.open.url",
        "payload": {"url": "https://x.vn/c"},
    }
    assert render_message("Báo cáo", [ack, view], "text") == {
        "text": "Báo cáo\n1. Đã nhận\nXem chi tiết: https://x.vn/c"
    }


def _proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An office behind a proxy with its own CA, the token host exempted."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "ALL_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "oauth.zaloapp.com")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/office-ca.pem")


def test_the_environment_s_proxy_and_ca_bundle_are_read_once_per_host(
    monkeypatch: pytest.MonkeyPatch, zalo: responses.RequestsMock
) -> None:
    _proxy_environment(monkeypatch)
    api, oauth = "https://openapi.zalo.me/v3.0/oa/message/cs", "https://oauth.zaloapp.com/v4/x"
    zalo.add(responses.POST, api, json={"error": 0})
    zalo.add(responses.POST, oauth, json={})
    transport = RequestsTransport(requests.Session())
    transport.request("POST", api, headers={})
    monkeypatch.setenv("HTTPS_PROXY", "http://elsewhere.example:8080")  # read once: kept
    transport.request("POST", api, headers={})
    transport.request("POST", oauth, headers={})  # exempted by NO_PROXY
    sent = [call.request.req_kwargs for call in zalo.calls]  # type: ignore[union-attr]
    assert [kwargs["proxies"].get("https") for kwargs in sent] == [
        "http://proxy.example:3128",
        "http://proxy.example:3128",
        None,
    ]
    assert [kwargs["verify"] for kwargs in sent] == ["/etc/office-ca.pem"] * 3


def test_a_session_told_not_to_trust_the_environment_is_not_given_it(
    monkeypatch: pytest.MonkeyPatch, zalo: responses.RequestsMock
) -> None:
    _proxy_environment(monkeypatch)
    api = "https://openapi.zalo.me/v3.0/oa/message/cs"
    zalo.add(responses.POST, api, json={"error": 0})
    session = requests.Session()
    session.trust_env = False
    RequestsTransport(session).request("POST", api, headers={})
    sent = zalo.calls[0].request.req_kwargs  # type: ignore[union-attr]
    assert not sent["proxies"] and sent["verify"] is True
