"""What an operator asked for that cannot be done, as exceptions domain code raises and the
CLI turns into one line (`sipas-bot: error: …`, exit status 2).

    OperatorError
    ├── UnknownCode       a unit, counter, leader or message that does not exist
    ├── BadPeriod         a date or period that cannot be read or is out of order
    ├── BadArguments      options that do not go together
    ├── NotReady          the database or the tokens are not set up for this yet
    ├── CaseClosed        a case that is closed cannot be assigned, answered or closed again
    └── UnwritableFile    (bot.files) a file that cannot be written

Settings that are missing or invalid are `bot.config.ConfigError`, not these.
"""

from __future__ import annotations


class OperatorError(Exception):
    """A request that cannot be served; the message is one line saying what to do."""


class UnknownCode(OperatorError):
    """No unit, counter, leader or message has the code or id given."""


class BadPeriod(OperatorError):
    """A date or period that cannot be read, is in the future, or ends before it starts."""


class BadArguments(OperatorError):
    """Options that are missing or do not go together."""


class NotReady(OperatorError):
    """The deployment is not set up for this yet (schema, tokens, units)."""


class CaseClosed(OperatorError):
    """A closed case is not changed any more."""


class NoReplyChannel(OperatorError):
    """A case answered on a form (the counter's tablet, the web link, a paper form) has no
    Zalo conversation to send a reply to."""
