"""wake workers: on PostgreSQL, every INSERT into outbox_messages notifies the channel
`sipas_outbox` (delivered at commit), which the workers listen to (storage/wakeups.py)

Revision ID: 0019
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None

# One function for every table whose new rows a worker waits for; the trigger names the
# channel. FOR EACH STATEMENT: one notification per INSERT, however many rows it writes (and
# PostgreSQL folds equal notifications of one transaction into one).
FUNCTION = """
CREATE OR REPLACE FUNCTION sipas_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: one process, woken in memory
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER outbox_messages_notify AFTER INSERT ON outbox_messages "
        "FOR EACH STATEMENT EXECUTE FUNCTION sipas_notify('sipas_outbox')"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outbox_messages_notify ON outbox_messages")
    op.execute("DROP FUNCTION IF EXISTS sipas_notify()")
