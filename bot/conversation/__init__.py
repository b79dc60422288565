"""A webhook event's turn: the survey service that runs the pure engine against the database,
the leaders' chat commands, and the registry of questionnaires."""
