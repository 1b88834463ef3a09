"""Open every page of the built book in headless Chromium; fail on a page that did not render.

    python .ci/screenshots.py _build/html _build/screenshots

A page fails when one of its images is missing or empty, when an output shows a traceback, or
when Chromium cannot render it. Each page's screenshot lands in the screenshots folder.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

SKIPPED = {"genindex.html", "search.html"}
WIDTH, HEIGHT = 1280, 4000


class PageParts(HTMLParser):
    """The image sources and the text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            source = dict(attrs).get("src") or ""
            if source and not source.startswith(("http:", "https:", "data:")):
                self.images.append(source)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def page_problems(page: Path) -> list[str]:
    """What did not render on ``page``."""
    parts = PageParts()
    parts.feed(page.read_text(encoding="utf-8"))
    problems = []
    for source in parts.images:
        image = (page.parent / re.sub(r"[?#].*$", "", source)).resolve()
        if not image.is_file() or image.stat().st_size == 0:
            problems.append(f"image {source} is missing or empty")
    text = "".join(parts.text)
    if "Traceback (most recent call last)" in text:
        problems.append("an output shows a traceback")
    return problems


def screenshot(browser: str, page: Path, out: Path) -> str | None:
    """Render ``page`` to ``out``; the error text when Chromium fails."""
    result = subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--virtual-time-budget=3000",
         f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={out}", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0 or not out.is_file() or out.stat().st_size < 10_000:
        return (result.stderr.strip().splitlines() or ["no screenshot written"])[-1]
    return None


def main(html_root: str, screenshot_root: str) -> int:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium is not installed: `apt-get install chromium`", file=sys.stderr)
        return 2
    html, shots = Path(html_root), Path(screenshot_root)
    shots.mkdir(parents=True, exist_ok=True)
    failed = 0
    for page in sorted(html.rglob("*.html")):
        if page.name in SKIPPED or "_static" in page.parts or "_sources" in page.parts:
            continue
        name = str(page.relative_to(html)).replace("/", "_").removesuffix(".html")
        problems = page_problems(page)
        error = screenshot(browser, page, shots / f"{name}.png")
        if error:
            problems.append(f"chromium: {error}")
        print(f"{'FAIL' if problems else 'ok  '} {page.relative_to(html)}" + "".join(f"\n     {p}" for p in problems))
        failed += bool(problems)
    print(f"{failed} page(s) failed; screenshots in {shots}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
