"""Open every page of the built book in headless Chromium, check what a reader sees, screenshot it.

    python .ci/screenshots.py _build/html _build/screenshots

A page fails when one of its images is missing or empty, when an output shows a traceback, when
Chromium cannot render it, or when its rendered text column has one of these faults:

- an element wider than its container (it scrolls sideways or runs past the text column; the
  scroll boxes of `mpm.analysis.tables` are meant to scroll and are not counted);
- a table cell ending in "…" (pandas cut it);
- a "dtype:" line (a raw pandas Series);
- raw LaTeX delimiters in the text (MathJax did not typeset it);
- a figure without a caption;
- an absolute path of the machine that built the book.

The faults are found by a script run inside the page (Chromium's `--dump-dom` of a copy of the
page with the script added); each page's screenshot lands in the screenshots folder.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

SKIPPED = {"genindex.html", "search.html"}
WIDTH, HEIGHT = 1400, 3000
BROWSER_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--hide-scrollbars", "--virtual-time-budget=10000", f"--window-size={WIDTH},{HEIGHT}"]
RESULT_ID = "book-page-check"

PAGE_CHECK = r"""
<script>
(() => {
  const SKIP_TEXT = "pre, code, script, style, textarea, mjx-container, .MathJax";
  const describe = (el) => {
    const text = (el.innerText || el.textContent || "").trim().replace(/\s+/g, " ");
    const cls = typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\s+/).join(".") : "";
    return `<${el.tagName.toLowerCase()}${cls}> "${text.slice(0, 70)}${text.length > 70 ? "…" : ""}"`;
  };
  const clipsX = (el) => ["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(el).overflowX);
  function check(article) {
    const problems = [];
    const right = article.getBoundingClientRect().right + 1;
    const clipped = new Set();
    for (const el of article.querySelectorAll("*")) {
      if (el.closest("div.book-table, span.math, div.math, mjx-container") || el.getClientRects().length === 0) continue;
      const parent = el.parentElement;
      if (parent && parent !== article && clipped.has(parent)) { clipped.add(el); continue; }
      if (clipsX(el) && el.scrollWidth > el.clientWidth + 1) {
        problems.push(["wider than its container", `${describe(el)}: ${el.scrollWidth} px in ${el.clientWidth} px`]);
        clipped.add(el);
      } else if (el.getBoundingClientRect().right > right && !(parent && parent.getBoundingClientRect().right > right)) {
        problems.push(["wider than its container", `${describe(el)}: runs ${Math.round(el.getBoundingClientRect().right - right)} px past the text column`]);
      }
    }
    for (const cell of article.querySelectorAll("td, th")) {
      const text = cell.textContent.trim();
      if (text.endsWith("…") || text.endsWith("...")) problems.push(["table cell ending in …", describe(cell)]);
    }
    const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
    const prose = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.parentElement.closest(SKIP_TEXT)) prose.push(node.textContent);
    }
    const text = article.innerText;
    for (const line of text.split("\n")) {
      if (/\bdtype:/.test(line)) problems.push(["dtype: line", line.trim().slice(0, 100)]);
    }
    const latex = prose.join("").match(/\\\(|\\\)|\\\[|\\\]|\$\$|\\(frac|mathrm|mathbf|sum|left|right|alpha|beta|delta|operatorname|text)\b/g);
    if (latex) problems.push(["raw LaTeX", `${latex.length} delimiter(s) or command(s), e.g. ${[...new Set(latex)].slice(0, 5).join(" ")}`]);
    for (const image of article.querySelectorAll("img")) {
      const figure = image.closest("figure");
      const caption = figure && figure.querySelector("figcaption");
      if (!caption || !caption.textContent.trim()) problems.push(["figure without a caption", image.getAttribute("src")]);
    }
    for (const match of text.matchAll(ABSOLUTE_PATH)) problems.push(["absolute path", match[0]]);
    return problems;
  }
  async function run() {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      const patience = new Promise((resolve) => setTimeout(resolve, 3000));
      try { await Promise.race([MathJax.startup.promise, patience]); } catch (error) { /* raw LaTeX is reported below */ }
    }
    const article = document.querySelector("article") || document.querySelector("main") || document.body;
    const out = document.createElement("pre");
    out.id = "RESULT_ID";
    let problems;
    try { problems = check(article); } catch (error) { problems = [["check", `the in-page check failed: ${error}`]]; }
    out.textContent = JSON.stringify(problems);
    document.body.appendChild(out);
  }
  window.addEventListener("load", run);
})();
</script>
"""


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


def file_problems(page: Path) -> list[tuple[str, str]]:
    """What did not render on ``page``, read from its HTML file."""
    parts = PageParts()
    parts.feed(page.read_text(encoding="utf-8"))
    problems = []
    for source in parts.images:
        image = (page.parent / re.sub(r"[?#].*$", "", source)).resolve()
        if not image.is_file() or image.stat().st_size == 0:
            problems.append(("missing image", f"{source} is missing or empty"))
    if "Traceback (most recent call last)" in "".join(parts.text):
        problems.append(("traceback", "an output shows a traceback"))
    return problems


def absolute_path_pattern(project: Path) -> str:
    """A JavaScript regular expression for the build machine's paths: the project's own folder,
    home folders and temporary folders (an example such as ``/data/market1501`` is not one)."""
    roots = sorted({re.escape(str(project)), r"/home/", r"/Users/", r"/root/", r"/tmp/", r"/work/"})
    return "/(?<![\\w.~-])(" + "|".join(root.replace("/", "\\/") for root in roots) + ")[^\\s\"'<>)]*/g"


def rendered_problems(browser: str, page: Path, project: Path) -> list[tuple[str, str]]:
    """The faults the in-page script finds on ``page`` (rendered from a copy beside it)."""
    script = PAGE_CHECK.replace("ABSOLUTE_PATH", absolute_path_pattern(project)).replace("RESULT_ID", RESULT_ID)
    source = page.read_text(encoding="utf-8")
    copy = page.with_name(f".check-{page.name}")
    copy.write_text(source.replace("</body>", script + "</body>", 1), encoding="utf-8")
    try:
        result = subprocess.run([browser, *BROWSER_FLAGS, "--dump-dom", copy.resolve().as_uri()],
                                capture_output=True, text=True, timeout=120)
    finally:
        copy.unlink()
    found = re.search(rf'<pre id="{RESULT_ID}"[^>]*>(.*?)</pre>', result.stdout, re.S)
    if found is None:
        return [("check", "the in-page check did not finish")]
    return [tuple(problem) for problem in json.loads(html.unescape(found.group(1)))]


def screenshot(browser: str, page: Path, out: Path) -> str | None:
    """Render ``page`` to ``out``; the error text when Chromium fails."""
    result = subprocess.run([browser, *BROWSER_FLAGS, f"--screenshot={out}", page.resolve().as_uri()],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not out.is_file() or out.stat().st_size < 10_000:
        return (result.stderr.strip().splitlines() or ["no screenshot written"])[-1]
    return None


def is_redirect(page: Path) -> bool:
    """Whether ``page`` only forwards the browser to another page (the root ``index.html``)."""
    text = page.read_text(encoding="utf-8", errors="replace")
    return 'http-equiv="refresh"' in text.lower() and "<article" not in text


def pages(html_root: Path) -> list[Path]:
    """The book's pages, without Sphinx's index, search and source pages and the root redirect."""
    return [page for page in sorted(html_root.rglob("*.html"))
            if page.name not in SKIPPED and not page.name.startswith(".")
            and "_static" not in page.parts and "_sources" not in page.parts and not is_redirect(page)]


def main(html_root: str, screenshot_root: str) -> int:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium is not installed: `apt-get install chromium`", file=sys.stderr)
        return 2
    html_folder, shots = Path(html_root), Path(screenshot_root)
    project = html_folder.resolve().parents[1]
    shots.mkdir(parents=True, exist_ok=True)
    failed, kinds = 0, Counter()
    for page in pages(html_folder):
        name = str(page.relative_to(html_folder)).replace("/", "_").removesuffix(".html")
        problems = file_problems(page) + rendered_problems(browser, page, project)
        error = screenshot(browser, page, shots / f"{name}.png")
        if error:
            problems.append(("chromium", error))
        print(f"{'FAIL' if problems else 'ok  '} {page.relative_to(html_folder)}"
              + "".join(f"\n     {kind}: {detail}" for kind, detail in problems))
        failed += bool(problems)
        kinds.update(kind for kind, _ in problems)
    summary = ", ".join(f"{kind} {count}" for kind, count in kinds.most_common())
    print(f"{failed} page(s) failed{': ' + summary if summary else ''}; screenshots in {shots}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
