"""`sipas-bot qr` (PNG and SVG per counter) and the pages: the landing page a QR code opens,
the sandbox outbox and the health check."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qrcode
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, ImageOps
from sqlalchemy import func, select

from bot.cli import cli
from bot.config import Settings
from bot.privacy import user_tag
from bot.runtime import Runtime
from bot.web import create_app, runtime_of
from storage import migrate
from storage import repositories as repo
from storage.models import OutboxMessage
from tests.cli_runner import assert_one_error_line, run_cli
from tests.conftest import (
    APP_ID,
    EXAMPLE_UNITS,
    OA_SECRET,
    FakeClock,
    encode,
    make_settings,
    text_event,
)
from zalo_client import SIGNATURE_HEADER, SignatureVerifier

QR_TEMPLATE = "https://qr.sipas.example.vn/s/{counter}?src=qr"
OA_ID = "388613280878808645"
CITIZEN = "246845883529197922"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The conftest settings with a QR template that does not start with the base URL."""
    return make_settings(database_url, qr_url_template=QR_TEMPLATE)


# --- qr ------------------------------------------------------------------------------------------


def qr_modules(png: Path) -> list[list[bool]]:
    """The dark/light modules of the QR symbol at the top of the PNG (quiet zone removed)."""
    image = Image.open(png).convert("L")
    square = image.crop((0, 0, image.width, image.width))
    bbox = ImageOps.invert(square).getbbox()
    assert bbox is not None, "no dark pixel in the QR area"
    left, top, right, _ = bbox
    # The top row of the finder pattern in the corner is 7 dark modules.
    run = 0
    while square.getpixel((left + run, top)) < 128:
        run += 1
    size = run / 7
    count = round((right - left) / size)
    assert count * size == right - left
    return [
        [
            square.getpixel((int(left + (x + 0.5) * size), int(top + (y + 0.5) * size))) < 128
            for x in range(count)
        ]
        for y in range(count)
    ]


def qr_matrix(data: str) -> set[tuple[tuple[bool, ...], ...]]:
    """The symbols `qrcode` makes for `data`, one per error correction level."""
    symbols = set()
    for level in (
        qrcode.constants.ERROR_CORRECT_L,
        qrcode.constants.ERROR_CORRECT_M,
        qrcode.constants.ERROR_CORRECT_Q,
        qrcode.constants.ERROR_CORRECT_H,
    ):
        code = qrcode.QRCode(error_correction=level, border=0)
        code.add_data(data)
        code.make(fit=True)
        symbols.add(tuple(tuple(row) for row in code.get_matrix()))
    return symbols


def write_codes(app: Flask, out: Path, unit: str = "HVT") -> Any:
    result = app.test_cli_runner().invoke(cli, ["qr", "--unit", unit, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result


def test_qr_writes_a_png_and_an_svg_per_counter(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "codes"
    write_codes(app, out)
    assert sorted(p.name for p in out.iterdir()) == [
        f"HVT0{n}.{ext}" for n in (1, 2, 3) for ext in ("png", "svg")
    ]


def test_qr_prints_each_counters_url_from_the_template(app: Flask, tmp_path: Path) -> None:
    result = write_codes(app, tmp_path / "codes")
    printed = dict(re.findall(r"^#(\w+)\s+(\S+)\s+->", result.stdout, re.MULTILINE))
    assert printed == {
        code: f"https://qr.sipas.example.vn/s/{code}?src=qr" for code in ("HVT01", "HVT02", "HVT03")
    }


def test_the_png_is_the_qr_code_with_a_caption_under_it(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "codes"
    write_codes(app, out)
    with Image.open(out / "HVT01.png") as image:
        image.load()
    assert image.format == "PNG"
    assert image.width <= image.height < 1.5 * image.width
    band = ImageOps.invert(
        image.convert("L").crop((0, image.width, image.width, image.height))
    ).getbbox()
    assert band is not None, "no caption under the code"


@pytest.mark.parametrize("code", ["HVT01", "HVT03"])
def test_the_png_encodes_the_counters_url(app: Flask, tmp_path: Path, code: str) -> None:
    out = tmp_path / "codes"
    write_codes(app, out)
    found = tuple(tuple(row) for row in qr_modules(out / f"{code}.png"))
    assert found in qr_matrix(f"https://qr.sipas.example.vn/s/{code}?src=qr")
    assert found not in qr_matrix(f"https://sipas.example.vn/q/{code}")


def test_the_svg_is_xml_with_a_path(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "codes"
    write_codes(app, out)
    root = ET.parse(out / "HVT02.svg").getroot()
    assert root.tag.rpartition("}")[2] == "svg"
    paths = [el for el in root.iter() if el.tag.rpartition("}")[2] == "path"]
    assert paths
    assert len(paths[0].get("d", "")) > 100


def test_qr_for_an_unknown_unit_exits_2_in_one_line(
    app: Flask, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "codes"
    result = run_cli(
        "qr", "--unit", "XYZ", "--out", str(out), env={"DATABASE_URL": settings.database_url}
    )
    assert_one_error_line(result, "XYZ")
    assert not out.exists()


# --- the landing page ----------------------------------------------------------------------------


def test_the_landing_page_tells_the_citizen_what_to_send(client: FlaskClient) -> None:
    response = client.get("/q/HVT01")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert '<html lang="vi">' in html
    assert "Đánh giá sự hài lòng" in html
    assert "UBND phường Hoàng Văn Thụ" in html
    assert "Quầy 1 – Tư pháp, hộ tịch" in html
    assert "#HVT01" in html
    assert f'href="https://zalo.me/{OA_ID}"' in html


def test_the_landing_page_accepts_a_lower_case_code(client: FlaskClient) -> None:
    response = client.get("/q/hvt02")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "#HVT02" in html
    assert "Quầy 2 – Địa chính, xây dựng" in html


def test_an_unknown_counter_is_a_404_in_vietnamese(client: FlaskClient) -> None:
    response = client.get("/q/NOPE1")
    assert response.status_code == 404
    assert "Không tìm thấy quầy #NOPE1" in response.get_data(as_text=True)


def test_an_unknown_code_is_escaped_on_the_404_page(client: FlaskClient) -> None:
    response = client.get("/q/%3Cimg%20src=x%20onerror=alert(1)%3E")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "<IMG" not in html.upper()
    assert "&lt;IMG SRC=X ONERROR=ALERT(1)&gt;" in html


def test_without_an_oa_id_the_landing_page_has_no_zalo_link(
    database_url: str, clock: FakeClock
) -> None:
    app = create_app(make_settings(database_url, zalo_oa_id=""), clock=clock)
    runtime = runtime_of(app)
    migrate.upgrade(runtime.engine)
    with runtime.session_factory.begin() as session:
        repo.upsert_units(session, _example_units(), now=clock())
    html = app.test_client().get("/q/HVT01").get_data(as_text=True)
    runtime.engine.dispose()
    assert "#HVT01" in html
    assert "zalo.me" not in html


def _example_units() -> Any:
    from bot.units import read_units_file

    return read_units_file(EXAMPLE_UNITS)


# --- /sandbox ------------------------------------------------------------------------------------


@pytest.fixture
def sandbox_app(database_url: str, clock: FakeClock) -> Iterator[Flask]:
    app = create_app(make_settings(database_url, zalo_sandbox=True), clock=clock)
    runtime = runtime_of(app)
    migrate.upgrade(runtime.engine)
    with runtime.session_factory.begin() as session:
        repo.upsert_units(session, _example_units(), now=clock())
    yield app
    runtime.engine.dispose()


def post_signed(client: FlaskClient, event: dict[str, Any]) -> Any:
    body = encode(event)
    signature = SignatureVerifier(APP_ID, OA_SECRET).sign(body, str(event["timestamp"]))
    return client.post(
        "/zalo/webhook",
        data=body,
        headers={SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
    )


def test_sandbox_is_not_found_when_not_in_sandbox_mode(client: FlaskClient) -> None:
    assert client.get("/sandbox").status_code == 404


def test_sandbox_lists_the_outbox_messages(sandbox_app: Flask) -> None:
    client = sandbox_app.test_client()
    assert post_signed(client, text_event("#hvt01", user_id=CITIZEN)).status_code == 200
    response = client.get("/sandbox")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Cảm ơn Ông/Bà đã sử dụng dịch vụ tại Quầy 1 – Tư pháp, hộ tịch" in html
    assert "Câu 1/6" in html
    assert '<span class="chip">Rất hài lòng</span>' in html
    assert user_tag(CITIZEN) in html
    assert CITIZEN not in html  # the raw Zalo id is never shown


def test_sandbox_with_an_empty_outbox_says_so(sandbox_app: Flask) -> None:
    html = sandbox_app.test_client().get("/sandbox").get_data(as_text=True)
    assert "Chưa có tin nhắn nào." in html


# --- /healthz ------------------------------------------------------------------------------------


def test_healthz_is_ok_json(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.is_json
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["sandbox"] is False
    assert body["outbox"]["pending"] == 0


def test_healthz_counts_the_pending_outbox(
    client: FlaskClient, runtime: Runtime, signed_post: Any
) -> None:
    assert signed_post(text_event("#hvt01")).status_code == 200
    with runtime.session_factory() as session:
        pending = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
        )
    assert pending
    assert client.get("/healthz").get_json()["outbox"]["pending"] == pending


def test_healthz_reports_down_on_an_unmigrated_database(
    database_url: str, clock: FakeClock
) -> None:
    app = create_app(make_settings(database_url), clock=clock)
    response = app.test_client().get("/healthz")
    runtime_of(app).engine.dispose()
    assert response.status_code == 503
    assert response.get_json()["status"] == "down"
