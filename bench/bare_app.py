"""The baseline for the ingest benchmark: a Flask endpoint that reads the body and answers
200, under the same gunicorn settings as the service:

    gunicorn --worker-class gthread --workers 2 --threads 8 'bench.bare_app:create_app()'

The service's rate divided by this one's is what the webhook's own work costs.
"""

from __future__ import annotations

from flask import Flask, request
from flask.typing import ResponseReturnValue


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/zalo/webhook")
    def receive() -> ResponseReturnValue:
        request.get_data(cache=False)
        return {"ok": True, "outcome": "bare"}, 200

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return {"status": "ok"}, 200

    return app
