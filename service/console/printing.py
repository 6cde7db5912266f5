"""The compliance dashboard as a PDF: the page's own HTML, printed by headless Chromium.

Chromium is the system's (``REGISTRY_CHROMIUM_PATH``, else ``chromium`` on PATH), driven
through Playwright; nothing is downloaded. The page is loaded from an origin that exists
only inside the browser: its HTML and the console's static files are answered from memory
and disk, every other request is refused, and scripts are off, so printing reaches
nothing outside the process. The print stylesheet (``console.css``) applies, as it does
when a reader prints the page.

Each print is a Chromium of its own (a few hundred MB, and a core while it lays out), so
``PrintSlots`` lets only so many print at once in a process (``REGISTRY_PDF_CONCURRENCY``);
a print that cannot start within the PDF timeout is refused with 503 and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from service.console.web import HERE
from service.errors import Unavailable

if TYPE_CHECKING:
    from playwright.async_api import Route

__all__ = ["PrintSlots", "find_chromium", "print_pdf"]

ORIGIN = "http://registry.invalid"
STATIC = (HERE / "static").resolve()
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_TYPES = {".css": "text/css", ".svg": "image/svg+xml", ".js": "text/javascript"}


class PrintSlots:
    """At most ``size`` prints at once; the rest wait their turn, for a while."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = asyncio.Semaphore(size)

    @asynccontextmanager
    async def held(self, *, wait: float) -> AsyncIterator[None]:
        """A slot for the block, or Unavailable if none frees within ``wait`` seconds."""
        try:
            async with asyncio.timeout(wait):
                await self._free.acquire()
        except TimeoutError as exc:
            raise Unavailable(
                f"the service is printing as many PDFs as it may at once ({self.size}) and "
                f"none finished within {wait:g} s; retry shortly"
            ) from exc
        try:
            yield
        finally:
            self._free.release()


def find_chromium(configured: str) -> Path:
    """The browser binary, or Unavailable saying how to provide one."""
    found = configured or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).is_file():
        raise Unavailable(
            "printing the PDF needs Chromium: install it (Debian: `apt-get install chromium`) "
            "or set REGISTRY_CHROMIUM_PATH to its binary"
            + (f"; there is none at {configured}" if configured else "")
        )
    return Path(found)


async def _answer(route: Route, html: str, path: str) -> None:
    url = route.request.url
    if url == ORIGIN + path:
        await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
        return
    prefix = ORIGIN + "/console/static/"
    if url.startswith(prefix):
        file = (STATIC / url[len(prefix) :].split("?")[0]).resolve()
        if file.is_relative_to(STATIC) and file.is_file():
            await route.fulfill(
                status=200,
                content_type=_TYPES.get(file.suffix, "application/octet-stream"),
                body=file.read_bytes(),
            )
            return
    await route.abort()


async def print_pdf(html: str, *, chromium: Path, seconds: float, path: str = "/") -> bytes:
    """``html`` (a console page, as served at ``path``) printed to A4 PDF."""
    # Imported here: Playwright costs every process's start-up, and only printing needs it.
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright

    try:
        async with asyncio.timeout(seconds), async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(chromium), args=FLAGS)
            try:
                context = await browser.new_context(java_script_enabled=False)
                page = await context.new_page()

                async def answer(route: Route) -> None:
                    await _answer(route, html, path)

                await page.route("**/*", answer)
                await page.goto(ORIGIN + path, wait_until="load")
                await page.emulate_media(media="print")
                return await page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
            finally:
                await browser.close()
    except TimeoutError as exc:
        raise Unavailable(f"printing the PDF took longer than {seconds:g} s") from exc
    except PlaywrightError as exc:
        raise Unavailable(f"Chromium could not print the PDF: {exc.message}") from exc
