"""Downloads from the console, under the same scope rules as the pages: the XLSX report
(bot/reporting/xlsx.py) and the survey export as CSV or XLSX (bot/reporting/export.py) of the
unit, or of one counter, over the chosen period. The figures per officer and the export's
`officer` column only for the unit's leaders and operators (`can_act`), never a viewer."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from flask import Response, abort, request, send_file
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from bot.reporting import export, xlsx
from bot.reporting.periods import unit_zone
from bot.reporting.report import build_report
from bot.web.console.base import blueprint, console_runtime, unit_or_404
from bot.web.console.pages import chosen_period

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _counter_code(unit_counters: set[str]) -> str | None:
    code = request.args.get("counter", "").upper()[:32] or None
    if code is not None and code not in unit_counters:
        abort(404)
    return code


def _file_name(unit_code: str, counter_code: str | None, first_day: str, suffix: str) -> str:
    return f"sipas-{unit_code}{'-' + counter_code if counter_code else ''}-{first_day}.{suffix}"


@blueprint.get("/units/<code>/report.xlsx")
@login_required
def report_xlsx(code: str) -> ResponseReturnValue:
    runtime = console_runtime()
    with runtime.session_factory() as db:
        unit = unit_or_404(db, current_user, code)
        counter_code = _counter_code({c.code for c in unit.counters})
        choice = chosen_period(unit_zone(unit, runtime.settings.tz), runtime.clock())
        report = build_report(
            db,
            unit_codes=[unit.code],
            counter_code=counter_code,
            period=choice.period,
            min_answers=runtime.settings.report_min_answers,
            comment_limit=None,
            with_officers=current_user.can_act,
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.xlsx"
        xlsx.write_xlsx(report, path)
        data = path.read_bytes()
    name = _file_name(unit.code, counter_code, choice.period.first_day.isoformat(), "xlsx")
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=name)


@blueprint.get("/units/<code>/export.<fmt>")
@login_required
def survey_export(code: str, fmt: str) -> ResponseReturnValue:
    if fmt not in ("csv", "xlsx"):
        abort(404)
    runtime = console_runtime()
    with runtime.session_factory() as db:
        unit = unit_or_404(db, current_user, code)
        counter_code = _counter_code({c.code for c in unit.counters})
        zone = unit_zone(unit, runtime.settings.tz)
        period = chosen_period(zone, runtime.clock()).period
        where = export.ExportFilter(
            unit_code=unit.code,
            counter_code=counter_code,
            start=period.start,
            end=period.end,
            with_officers=current_user.can_act,
        )
        name = _file_name(unit.code, counter_code, period.first_day.isoformat(), fmt)
        if fmt == "csv":
            out = io.StringIO()
            export.write_csv(export.export_rows(db, runtime.flows, zone=zone, where=where), out)
            return Response(
                "\ufeff" + out.getvalue(),  # a BOM: spreadsheets then read the UTF-8 right
                mimetype="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "export.xlsx"
            export.write_xlsx(
                export.export_records(db, runtime.flows, zone=zone, where=where), path
            )
            data = path.read_bytes()
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=name)
