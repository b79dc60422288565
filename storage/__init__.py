"""Persistence: SQLAlchemy 2 models, the engine and session factory, and repositories.

Knows SQL and nothing of Zalo or Flask. Repositories receive a session and never commit:
the edges (a webhook request, a job, a CLI command) own the transaction.
"""
