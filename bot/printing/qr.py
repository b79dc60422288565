"""QR codes for counters: a PNG to print (with the code under it) and an SVG file, and the
same code as inline SVG for the console's posters."""

from __future__ import annotations

import re
from pathlib import Path

import qrcode
import qrcode.image.svg
from PIL import Image, ImageDraw, ImageFont


def write_counter_codes(url: str, code: str, out_dir: Path) -> list[Path]:
    """Write `<CODE>.png` and `<CODE>.svg` encoding `url`; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=12, border=4)
    qr.add_data(url)
    qr.make(fit=True)
    matrix_image = qr.make_image(fill_color="black", back_color="white").get_image()
    png_path = out_dir / f"{code}.png"
    _with_caption(matrix_image.convert("RGB"), f"#{code}").save(png_path)

    svg_path = out_dir / f"{code}.svg"
    svg = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=12)
    svg.save(str(svg_path))
    return [png_path, svg_path]


def _with_caption(image: Image.Image, caption: str) -> Image.Image:
    """The QR code with the counter code printed under it, for citizens who type it."""
    font = ImageFont.load_default(size=max(24, image.width // 10))
    band = font.size + 24 if hasattr(font, "size") else 60
    canvas = Image.new("RGB", (image.width, image.height + int(band)), "white")
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (image.width // 2, image.height + int(band) // 2 - 8),
        caption,
        fill="black",
        font=font,
        anchor="mm",
    )
    return canvas


_FIXED_SIZE = re.compile(r'\s(?:width|height)="[^"]*"')


def qr_svg(url: str) -> str:
    """The QR code of `url` as an inline <svg> that takes the size its box gives it (no fixed
    width or height), drawn as one path: sharp at any print size."""
    image = qrcode.make(
        url,
        image_factory=qrcode.image.svg.SvgPathImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=2,
    )
    svg = image.to_string(encoding="unicode")
    head, rest = svg.split(">", 1)
    return _FIXED_SIZE.sub("", head) + ' class="qr" role="img">' + rest
