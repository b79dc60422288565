"""Printables: the month's A4 report and the counter posters, as console print pages and as
PDF files from `sipas-bot print` (written by WeasyPrint, read back with pypdf)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader

from bot.cli import cli
from bot.config import ConfigError, Settings
from bot.errors import OperatorError
from bot.printing.pdf import render_document, write_pdf
from bot.runtime import Runtime
from tests.conftest import FakeClock, reconfigure
from tests.console_support import Post, leader_signed_in, seed

HVT_COUNTERS = ("HVT01", "HVT02", "HVT03")


@pytest.fixture
def seeded(runtime: Runtime, signed_post: Post, clock: FakeClock) -> Runtime:
    seed(runtime, signed_post, clock)
    return runtime


def pdf_pages(path: Path) -> list[str]:
    """The text of each page of the PDF."""
    return [page.extract_text() or "" for page in PdfReader(path).pages]


def invoke(app: Flask, *args: str) -> tuple[int, str]:
    """Exit code and output; for a failure, the message `main()` prints as one line (only an
    operator's or a setting's error, never anything else, is allowed to escape)."""
    result = app.test_cli_runner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, (ConfigError, OperatorError)), result.exception
        return 2, str(result.exception)
    return result.exit_code, result.output


def test_print_posters_writes_one_page_per_counter_with_its_code(
    app: Flask, seeded: Runtime, tmp_path: Path
) -> None:
    for size in ("a4", "a5"):
        out = tmp_path / f"posters-{size}.pdf"
        code, output = invoke(
            app, "print", "posters", "--unit", "HVT", "--size", size, "--out", str(out)
        )
        assert code == 0, output
        pages = pdf_pages(out)
        assert len(pages) == len(HVT_COUNTERS)
        for page, counter in zip(pages, HVT_COUNTERS, strict=True):
            assert f"#{counter}" in page
            assert "Dịch vụ công Phường Thử" in page  # the OA's name (ZALO_OA_NAME)
            assert "quét mã QR" in page  # the steps, in Vietnamese
        width_mm = PdfReader(out).pages[0].mediabox.width / 72 * 25.4
        assert round(width_mm) == (210 if size == "a4" else 148)


def test_print_posters_needs_the_oa_name(app: Flask, seeded: Runtime, tmp_path: Path) -> None:
    reconfigure(seeded, zalo_oa_name="")
    code, output = invoke(app, "print", "posters", "--unit", "HVT", "--out", str(tmp_path / "p"))
    assert code != 0 and "ZALO_OA_NAME" in output
    assert not (tmp_path / "p").exists()


def test_print_report_writes_the_months_one_page_report(
    app: Flask, seeded: Runtime, tmp_path: Path
) -> None:
    out = tmp_path / "report.pdf"
    code, output = invoke(
        app, "print", "report", "--unit", "HVT", "--period", "2026-03", "--out", str(out)
    )
    assert code == 0, output
    pages = pdf_pages(out)
    assert len(pages) == 1
    text = pages[0]
    assert "tháng 03/2026" in text
    for counter in HVT_COUNTERS:
        assert f"#{counter}" in text
    assert "Phiếu có góp ý" in text
    # The month's feedback cases: the seeded low-rated survey's comment, not answered yet.
    line = "tiếp nhận 1 · đã trả lời 0 · đã giải quyết 0 · đúng hạn 0"
    assert line in " ".join(text.split())


@pytest.mark.parametrize("period", ["2026-13", "March", "2099-01"])
def test_print_report_refuses_a_bad_month(
    app: Flask, seeded: Runtime, tmp_path: Path, period: str
) -> None:
    code, output = invoke(
        app, "print", "report", "--unit", "HVT", "--period", period, "--out", str(tmp_path / "r")
    )
    assert code != 0 and "--period" in output


def test_print_of_an_unknown_unit_fails(app: Flask, seeded: Runtime, tmp_path: Path) -> None:
    code, output = invoke(app, "print", "posters", "--unit", "NOPE", "--out", str(tmp_path / "p"))
    assert code != 0 and "NOPE" in output


def test_the_print_pages_in_the_console(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    leader_signed_in(client, signed_post, seeded)
    report = client.get("/console/units/HVT/print/report?period=month&date=2026-03-14")
    assert report.status_code == 200
    assert "tháng 03/2026" in report.text and 'data-chart="trend"' in report.text
    assert "print.css" in report.text
    posters = client.get("/console/units/HVT/print/posters?size=a5")
    assert posters.status_code == 200
    assert posters.text.count('class="sheet poster a5"') == len(HVT_COUNTERS)
    assert posters.text.count('class="qr"') == len(HVT_COUNTERS)
    assert client.get("/console/units/HVT/print/posters?size=a3").status_code == 400
    assert client.get("/console/units/BDH/print/report").status_code == 404
    assert client.get("/console/units/BDH/print/posters").status_code == 404
    overview = client.get("/console/units/HVT").text
    assert "/console/units/HVT/print/report" in overview
    assert "/console/units/HVT/print/posters?size=a5" in overview


def test_the_qr_command_keeps_working(app: Flask, seeded: Runtime, tmp_path: Path) -> None:
    code, output = invoke(app, "qr", "--unit", "HVT", "--out", str(tmp_path / "qr"))
    assert code == 0, output
    assert sorted(p.name for p in (tmp_path / "qr").iterdir()) == sorted(
        f"{c}.{ext}" for c in HVT_COUNTERS for ext in ("png", "svg")
    )


@pytest.mark.parametrize("name", ["a\x07b", "two\nlines", "x" * 101])
def test_the_oa_name_is_one_printable_line(name: str) -> None:
    with pytest.raises(ConfigError, match="ZALO_OA_NAME"):
        Settings.from_env({"ZALO_OA_NAME": name})


def test_the_pdf_writer_reads_the_static_folder_and_nothing_else(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "a.css").write_text("p { color: red }")
    (tmp_path / "secret.css").write_text("p { color: blue }")
    mapping = {"/console/static/": static}
    html = '<link rel="stylesheet" href="/console/static/a.css"><p>Xin chào #HVT01</p>'
    result = write_pdf(html, tmp_path / "ok.pdf", static=mapping)
    assert result.pages == 1 and "#HVT01" in pdf_pages(tmp_path / "ok.pdf")[0]
    for href in ("http://example.org/x.css", "/console/static/../secret.css", "file:///etc/hosts"):
        with pytest.raises(ValueError, match="only use local files"):
            render_document(f'<link rel="stylesheet" href="{href}"><p>x</p>', mapping)
