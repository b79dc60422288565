"""Citizens' feedback handled to the end (docs/cases.md): what a case is (kinds.py), when it
is due (deadlines.py), how a citizen quotes it (references.py), and the desk that opens,
assigns, answers and closes cases and follows each answer to the citizen (desk.py).

Sits between bot.conversation (which opens cases in a turn) and bot.delivery (the outbox and
the leaders' messages it uses); bot.reporting publishes its figures.
"""
