"""The Zalo OA API calls the bot needs, above an injected transport."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from zalo_client.errors import (
    ZaloConnectionError,
    ZaloOAuthError,
    ZaloServerError,
    error_from_response,
)
from zalo_client.limits import MAX_BUTTONS, MAX_PAYLOAD_CHARS, MAX_TEXT_CHARS, ChoiceStyle
from zalo_client.transport import Transport, TransportResponse

__all__ = [
    "CHOICE_STYLES",
    "MAX_BUTTONS",
    "MAX_PAYLOAD_CHARS",
    "MAX_TEXT_CHARS",
    "QueryButton",
    "SentMessage",
    "TokenPair",
    "UrlButton",
    "ZaloClient",
    "render_message",
]

CHOICE_STYLES = tuple(ChoiceStyle)
MAX_LIST_TITLE_CHARS = 100

# The documented lifetime of an access token, used only if a successful refresh omits it:
# the new refresh token is already spent on Zalo's side, so the pair must not be thrown away.
_DEFAULT_EXPIRES_IN = 90_000


@dataclass(frozen=True)
class QueryButton:
    """A choice; tapping it sends ``payload`` back as the user's text, hidden from the chat."""

    title: str
    payload: str


@dataclass(frozen=True)
class UrlButton:
    """A button that opens ``url`` in Zalo's browser (``oa.open.url``); nothing is sent back."""

    title: str
    url: str


Button = QueryButton | UrlButton


@dataclass(frozen=True)
class SentMessage:
    """What Zalo acknowledged for one sent message."""

    message_id: str | None
    user_id: str


@dataclass(frozen=True)
class TokenPair:
    """A fresh access token and the single-use refresh token that replaces the old one."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int


def render_message(text: str, buttons: Sequence[Button], style: str) -> dict[str, object]:
    """Build the ``message`` object for a text with choices, in one of ``CHOICE_STYLES``.

    Zalo documents no buttons for consultation messages, so how choices are shown is kept
    here alone and chosen per deployment. In the text style a URL button becomes a line with
    its address after the numbered choices.
    """
    if style not in CHOICE_STYLES:
        raise ValueError(f"choice style must be one of {CHOICE_STYLES}, not {style!r}")
    _check_text(text)
    _check_buttons(buttons, style)
    if not buttons:
        return {"text": text}
    if style == ChoiceStyle.TEXT:
        queries = [b for b in buttons if isinstance(b, QueryButton)]
        lines = [f"{number}. {button.title}" for number, button in enumerate(queries, start=1)]
        lines += [f"{b.title}: {b.url}" for b in buttons if isinstance(b, UrlButton)]
        numbered = "\n".join([text, *lines])
        _check_text(numbered)
        return {"text": numbered}
    if style == ChoiceStyle.LIST:
        elements: list[dict[str, object]] = [
            {"title": button.title, "default_action": _action(button)} for button in buttons
        ]
        elements[0]["subtitle"] = text
        payload: dict[str, object] = {"template_type": "list", "elements": elements}
    else:
        payload = {"buttons": [{"title": button.title, **_action(button)} for button in buttons]}
    return {"text": text, "attachment": {"type": "template", "payload": payload}}


def _action(button: Button) -> dict[str, object]:
    if isinstance(button, UrlButton):
        return {"type": "oa.open.url", "payload": {"url": button.url}}
    return {"type": "oa.query.hide", "payload": button.payload}


def _check_text(text: str) -> None:
    if not text:
        raise ValueError("message text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"message text has {len(text)} characters, at most {MAX_TEXT_CHARS}")


def _check_buttons(buttons: Sequence[Button], style: str) -> None:
    if len(buttons) > MAX_BUTTONS:
        raise ValueError(f"{len(buttons)} choices given, at most {MAX_BUTTONS}")
    for button in buttons:
        if not button.title:
            raise ValueError("a choice has an empty title")
        if style == "list" and len(button.title) > MAX_LIST_TITLE_CHARS:
            raise ValueError(f"list titles take at most {MAX_LIST_TITLE_CHARS} characters")
        target = button.url if isinstance(button, UrlButton) else button.payload
        if not target:
            raise ValueError("a choice has an empty payload")
        if len(target) > MAX_PAYLOAD_CHARS:
            raise ValueError(f"a choice payload exceeds {MAX_PAYLOAD_CHARS} characters")


class ZaloClient:
    """Sends messages and refreshes tokens for one Zalo Official Account."""

    def __init__(
        self,
        transport: Transport,
        *,
        api_base: str = "https://openapi.zalo.me",
        oauth_base: str = "https://oauth.zaloapp.com",
        access_token: Callable[[], str],
        choice_style: str = "buttons",
    ) -> None:
        if choice_style not in CHOICE_STYLES:
            raise ValueError(f"choice_style must be one of {CHOICE_STYLES}, not {choice_style!r}")
        self._transport = transport
        self._api_base = api_base.rstrip("/")
        self._oauth_base = oauth_base.rstrip("/")
        self._access_token = access_token
        self._choice_style = choice_style

    def send_text(self, user_id: str, text: str, *, buttons: Sequence[Button] = ()) -> SentMessage:
        """Send a consultation message, with choices rendered in the configured style.

        Raises ValueError before any request when the message breaks Zalo's limits.
        """
        if not user_id:
            raise ValueError("user_id is empty")
        message = render_message(text, buttons, self._choice_style)
        response = self._call(
            "POST",
            f"{self._api_base}/v3.0/oa/message/cs",
            headers={"access_token": self._access_token()},
            json={"recipient": {"user_id": user_id}, "message": message},
            user_id=user_id,
        )
        data = _data(response.body)
        message_id = data.get("message_id")
        return SentMessage(
            message_id=str(message_id) if isinstance(message_id, str | int) else None,
            user_id=user_id,
        )

    def get_oa_profile(self) -> dict[str, object]:
        """The OA's own profile (``data`` of ``/v2.0/oa/getoa``); a cheap check of the token."""
        response = self._call(
            "GET",
            f"{self._api_base}/v2.0/oa/getoa",
            headers={"access_token": self._access_token()},
        )
        return _data(response.body)

    def refresh_access_token(
        self, *, app_id: str, app_secret: str, refresh_token: str
    ) -> TokenPair:
        """Trade the single-use refresh token for a new pair.

        Any answer without both tokens raises ZaloOAuthError, even at HTTP 200; only HTTP 5xx
        (ZaloServerError) and no usable answer (ZaloConnectionError) are reported otherwise.
        """
        if not (app_id and app_secret and refresh_token):
            raise ValueError("app_id, app_secret and refresh_token are all required")
        url = f"{self._oauth_base}/v4/oa/access_token"
        response = self._transport.request(
            "POST",
            url,
            headers={"secret_key": app_secret},
            data={"refresh_token": refresh_token, "app_id": app_id, "grant_type": "refresh_token"},
        )
        error = error_from_response(http_status=response.status, body=response.body)
        if isinstance(error, ZaloServerError | ZaloConnectionError | ZaloOAuthError):
            raise error
        body = response.body if isinstance(response.body, Mapping) else {}
        access_token = body.get("access_token")
        new_refresh_token = body.get("refresh_token")
        if (
            error is not None
            or not isinstance(access_token, str)
            or not access_token
            or not isinstance(new_refresh_token, str)
            or not new_refresh_token
        ):
            raise ZaloOAuthError(
                "token refresh answered without a token pair",
                code=error.code if error is not None else None,
                http_status=response.status,
            )
        return TokenPair(
            access_token=access_token,
            refresh_token=new_refresh_token,
            expires_in=_expires_in(body.get("expires_in")),
        )

    def _call(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json: object | None = None,
        user_id: str | None = None,
    ) -> TransportResponse:
        try:
            response = self._transport.request(method, url, headers=headers, json=json)
        except ZaloConnectionError as exc:
            if user_id is None or exc.user_id is not None:
                raise
            raise ZaloConnectionError(
                exc.detail, may_have_arrived=exc.may_have_arrived, user_id=user_id
            ) from exc
        error = error_from_response(
            http_status=response.status, body=response.body, user_id=user_id
        )
        if error is not None:
            raise error
        return response


def _data(body: object) -> dict[str, object]:
    data = body.get("data") if isinstance(body, Mapping) else None
    return {str(key): value for key, value in data.items()} if isinstance(data, Mapping) else {}


def _expires_in(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    return _DEFAULT_EXPIRES_IN
