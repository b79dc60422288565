"""Personal data (Vietnam's Decree 13/2023): what stands in for a Zalo id (pseudonyms), what is
taken out of free text before it is stored (scrub), what is redacted from error texts, and how
long what is kept stays (retention, erasure, the inventory). docs/privacy.md says it in prose.

The modules here below `retention` and `erasure` depend on nothing but the settings, so every
layer may use them; those two read and write the database and are for jobs and commands.
"""

from __future__ import annotations

from bot.privacy.pseudonyms import Pseudonymizer

__all__ = ["Pseudonymizer"]
