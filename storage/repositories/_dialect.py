"""Statements that differ by backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault


def dialect_insert(session: Session, model: type[Any]) -> Any:
    """An INSERT that can say ON CONFLICT DO NOTHING on both supported backends."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


class UpdateWithInsert:
    """PostgreSQL: an UPDATE of one table and an INSERT of rows into another in one statement
    and one round trip, `WITH … AS (UPDATE …) INSERT … VALUES (…), (…)`: the UPDATE is a
    data-modifying CTE, run to completion whether or not the INSERT refers to it. Both see the
    same snapshot (the one the statement starts with), so neither may need to read what the
    other writes: an UPDATE and an INSERT into a table it does not read qualify.

    The statement is built once per number of rows (the rows are bind parameters named
    `row<i>_<column>`, next to the UPDATE's own) and kept: building a statement costs more
    CPU than running it."""

    def __init__(self, name: str, update: Any, table: Table, columns: Sequence[str]) -> None:
        self._name, self._update, self._table = name, update, table
        self._columns = tuple(columns)
        self._statements: dict[int, Any] = {}

    def statement(self, rows: int) -> Any:
        """The statement for `rows` rows (at least one)."""
        statement = self._statements.get(rows)
        if statement is None:
            # A column left out takes its scalar default as a constant: SQLAlchemy binds the
            # defaults of a multi-row VALUES to parameters that it leaves NULL here.
            defaults = {
                column.name: literal(column.default.arg, column.type)
                for column in self._table.columns
                if column.name not in self._columns
                and isinstance(column.default, ScalarElementColumnDefault)
            }
            values = [
                {
                    **defaults,
                    **{
                        column: bindparam(f"row{i}_{column}", type_=self._table.c[column].type)
                        for column in self._columns
                    },
                }
                for i in range(rows)
            ]
            statement = (
                postgresql.insert(self._table)
                .values(values)
                .add_cte(self._update.cte(self._name), nest_here=True)
            )
            self._statements[rows] = statement
        return statement

    def execute(
        self,
        connection: Connection,
        update: Mapping[str, Any],
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """Run the UPDATE with the parameters `update` and insert `rows` (each with a value
        for every column named at construction)."""
        parameters = dict(update)
        for i, row in enumerate(rows):
            for column in self._columns:
                parameters[f"row{i}_{column}"] = row[column]
        connection.execute(self.statement(len(rows)), parameters)
