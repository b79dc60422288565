"""`sipas-bot flows ...`: list, check and show questionnaires.

None of these needs the database or the Zalo settings: an operator can check a file on any
machine before deploying it.
"""

from __future__ import annotations

from collections.abc import Mapping

import click

from survey_flow.preview import load_checked, transcript
from survey_flow.questionnaire import Questionnaire, shipped_blocks, shipped_ids
from survey_flow.sourcefile import FileProblems
from survey_flow.texts import LANGUAGES, Texts, load_texts


@click.group("flows")
def flows() -> None:
    """Questionnaires: check a file, show a conversation as a citizen sees it.

    The file format, blocks and versions are described in docs/questionnaires.md.
    """


@flows.command("list")
def flows_list() -> None:
    """List the shipped questionnaires and blocks."""
    texts = load_texts()
    for name in shipped_ids():
        questionnaire = _load(name, texts)
        click.echo(f"{name}  version {questionnaire.version}  {_summary(questionnaire)}")
    click.echo(f"blocks (add with `- include: NAME`): {', '.join(shipped_blocks())}")


@flows.command("check")
@click.argument("file", metavar="FILE_OR_ID")
def flows_check(file: str) -> None:
    """Check a questionnaire: one line per problem, with its line.

    FILE_OR_ID is a path to a YAML file, or the id of a shipped questionnaire. Exit status
    0 with a summary when it can be used, 2 when it has problems.
    """
    questionnaire = _load(file, load_texts())
    click.echo(
        f"{file}: ok – {questionnaire.id} version {questionnaire.version}, "
        f"languages {', '.join(questionnaire.languages)}: {_summary(questionnaire)}"
    )


@flows.command("show")
@click.argument("name", metavar="ID_OR_PATH")
@click.option(
    "--lang",
    "language",
    type=click.Choice(LANGUAGES),
    default="vi",
    show_default=True,
    help="The language the citizen chose.",
)
def flows_show(name: str, language: str) -> None:
    """Print the conversation as a citizen sees it, every question answered."""
    texts = load_texts()
    questionnaire = _load(name, texts)
    if language not in questionnaire.languages:
        click.echo(
            f"{name}: not written in {language} (languages: {', '.join(questionnaire.languages)})",
            err=True,
        )
        raise click.exceptions.Exit(2)
    click.echo(transcript(questionnaire, texts, language), nl=False)


def _load(name: str, texts: Mapping[str, Texts]) -> Questionnaire:
    """The questionnaire, checked; else one line per problem and exit status 2."""
    try:
        return load_checked(name, texts)
    except FileProblems as exc:
        for problem in exc.problems:
            click.echo(" ".join(str(problem).split("\n")))
        raise click.exceptions.Exit(2) from None


def _summary(questionnaire: Questionnaire) -> str:
    questions = questionnaire.questions
    conditional = sum(1 for item in questions if item.when is not None)
    optional = sum(1 for item in questions if item.optional)
    intros = len(questionnaire.items) - len(questions)
    blocks = ", ".join(questionnaire.blocks) or "none"
    return (
        f"{len(questions)} questions ({optional} optional, {conditional} asked only under "
        f"a condition), {intros} intros; blocks: {blocks}"
    )


COMMANDS: list[click.Command] = [flows]
