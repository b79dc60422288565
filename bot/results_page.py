"""`GET /u/<unit>/results`: a unit's published satisfaction figures (opt-in per unit)."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("results", __name__)
