"""Statements that differ by backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Integer, Table, bindparam, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault


def dialect_insert(session: Session, model: type[Any]) -> Any:
    """An INSERT that can say ON CONFLICT DO NOTHING on both supported backends."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


class UpdateWithInsert:
    """PostgreSQL: an UPDATE of one table and an INSERT of rows into another in one statement
    and one round trip, `WITH … AS (UPDATE …) INSERT … SELECT …`: the UPDATE is a
    data-modifying CTE, run to completion whether or not the INSERT refers to it. Both see the
    same snapshot (the one the statement starts with), so neither may need to read what the
    other writes: an UPDATE and an INSERT into a table it does not read qualify.

    The rows are a UNION ALL of one SELECT of bind parameters per row (`row<i>_<column>`, next
    to the UPDATE's own), inserted ORDER BY their position, so their ids follow their order
    as with an executemany (SQLAlchemy's own "insertmanyvalues" relies on the same ORDER BY).
    Not a multi-row VALUES: SQLAlchemy does not cache the compiled form of one, and compiling
    costs more CPU than running the statement. Built once per number of rows and kept."""

    def __init__(self, name: str, update: Any, table: Table, columns: Sequence[str]) -> None:
        self._name, self._update, self._table = name, update, table
        self._columns = tuple(columns)
        self._statements: dict[int, Any] = {}

    def statement(self, rows: int) -> Any:
        """The statement for `rows` rows (at least one)."""
        statement = self._statements.get(rows)
        if statement is None:
            statement = self._build(rows)
            self._statements[rows] = statement
        return statement

    def _build(self, rows: int) -> Any:
        # A column left out takes its scalar default, a constant in each row's SELECT.
        defaults = [
            literal(column.default.arg, column.type).label(column.name)
            for column in self._table.columns
            if column.name not in self._columns
            and isinstance(column.default, ScalarElementColumnDefault)
        ]
        selects = [
            select(
                *(
                    bindparam(f"row{i}_{name}", type_=self._table.c[name].type).label(name)
                    for name in self._columns
                ),
                *defaults,
                literal(i, Integer()).label("row_position"),
            )
            for i in range(rows)
        ]
        source = (union_all(*selects) if rows > 1 else selects[0]).subquery("row_values")
        names = [*self._columns, *(default.name for default in defaults)]
        chosen = select(*(source.c[name] for name in names)).order_by(source.c.row_position)
        insert = postgresql.insert(self._table).from_select(names, chosen, include_defaults=False)
        return insert.add_cte(self._update.cte(self._name), nest_here=True)

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
