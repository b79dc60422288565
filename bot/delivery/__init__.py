"""Getting messages out: the outbox sender (Zalo's window, rate limit, retries, order), the
OA's tokens, e-mail, and the messages to leaders that fall back to e-mail."""
