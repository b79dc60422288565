"""PDF files of the console's print pages, written by WeasyPrint from the same HTML the
browser prints (one template serves the page and the PDF).

WeasyPrint draws text with the system's Pango and fonts (Debian: libpango-1.0-0,
libpangoft2-1.0-0, libharfbuzz-subset0, fonts-dejavu-core: DejaVu holds every Vietnamese
letter). Resources are read from local folders only, through `LocalFiles`: a page that
refers to anything else stops the PDF with an error rather than reach the network (the
server may sit on a closed network).
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bot.errors import NotReady
from bot.files import atomic_binary

if TYPE_CHECKING:
    from weasyprint import Document

# Where relative URLs of the page resolve; nothing is ever fetched from it.
BASE_URL = "http://print.local/"
MISSING_LIBRARIES = (
    "WeasyPrint cannot load Pango to write PDF files: "
    "apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core"
)


@dataclass(frozen=True)
class PdfResult:
    path: Path
    pages: int


def _weasyprint() -> Any:
    """WeasyPrint, imported when a PDF is asked for: it loads Pango as it is imported, and
    nothing else of the service needs it."""
    try:
        import weasyprint
    except OSError:  # cffi could not open libpango / libpangoft2
        raise NotReady(MISSING_LIBRARIES) from None
    return weasyprint


def render_document(html: str, static: Mapping[str, Path]) -> Document:
    """Lay the page out for print; `static` maps URL path prefixes (`/console/static/`) to the
    folders holding those files."""
    weasyprint = _weasyprint()
    # WeasyPrint logs every CSS property it does not know (the page's screen-only rules).
    logging.getLogger("weasyprint").setLevel(logging.ERROR)

    fetcher_base: Any = weasyprint.urls.URLFetcher

    class LocalFiles(fetcher_base):
        """Serves the mapped folders' files; refuses every other URL."""

        def fetch(self, url: str, headers: object = None) -> Any:
            path = urlsplit(url).path
            for prefix, folder in static.items():
                if url.startswith(BASE_URL) and path.startswith(prefix):
                    file = (folder / path.removeprefix(prefix)).resolve()
                    if file.is_relative_to(folder.resolve()) and file.is_file():
                        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                        return weasyprint.urls.URLFetcherResponse(
                            url, file.read_bytes(), {"Content-Type": kind}
                        )
            raise ValueError(f"a print page may only use local files, not {url}")

    fetcher = LocalFiles(fail_on_errors=True)
    try:
        return weasyprint.HTML(string=html, base_url=BASE_URL, url_fetcher=fetcher).render()
    except weasyprint.urls.FatalURLFetchingError as exc:  # a BaseException: made an ordinary one
        raise ValueError(f"{exc}: {exc.__cause__}") from None


def write_pdf(html: str, out: Path, *, static: Mapping[str, Path]) -> PdfResult:
    """Write the page as a PDF at `out` (whole or not at all); returns its page count."""
    document = render_document(html, static)
    with atomic_binary(out) as temporary:
        document.write_pdf(temporary)
    return PdfResult(out, len(document.pages))
