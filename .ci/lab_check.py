"""Open one chapter in JupyterLab in headless Chromium; fail unless Lab shows it as committed.

    python .ci/lab_check.py book/part_counts.ipynb _build/lab/part_counts.png

JupyterLab (jupytext's pairing active) is started headless on a free loopback port with a random
token, serving the project root; headless Chromium loads the notebook's URL and is read over the
DevTools protocol (with websocket-client, a dependency of jupyter_server) until the notebook has
rendered and its kernel is idle, then a screenshot is saved. The check fails unless the page shows

- every cell of the notebook: as many Markdown cells, and each code cell's source exactly;
- every committed table and figure (the chapter must have at least one of each);
- the kernel the notebook names, idle, and the notebook unmodified: a notebook that Lab marks
  modified on opening is rewritten by its autosave two minutes later.

The page is read for at most 90 s, before any autosave. Lab's settings, workspaces and runtime
files and the browser's profile live in a temporary folder (the user's are neither read nor
written); the browser and the server are stopped by their PIDs at the end.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import websocket

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1400, 3000
SERVER_START_S, PAGE_S, SETTLE_S = 120, 90, 2
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}",
                 "--remote-debugging-port=0"]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
QUIET_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"}}
"""Lab settings for the check: no news prompt over the notebook."""


@dataclass
class Content:
    """What a notebook page shows, or should show."""

    code: list[str] = field(default_factory=list)
    markdown: int = 0
    tables: int = 0
    figures: int = 0


class LabPage(HTMLParser):
    """The cells, outputs, texts and tab states of a JupyterLab page's DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.content = Content()
        self.texts: list[str] = []
        self.dirty = False
        self._open: list[set[str]] = []
        self._cell: list[str] | None = None

    def _inside(self, name: str) -> bool:
        return any(name in classes for classes in self._open)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = set((dict(attrs).get("class") or "").split())
        if "jp-Cell" in classes:
            self._cell = [] if "jp-CodeCell" in classes else None
            if self._cell is None:
                self.content.markdown += "jp-MarkdownCell" in classes
            else:
                self.content.code.append("")
        self.dirty |= {"lm-TabBar-tab", "jp-mod-dirty"} <= classes
        self.content.tables += tag == "table" and self._inside("jp-OutputArea-output")
        self.content.figures += tag == "img" and self._inside("jp-RenderedImage")
        if "cm-line" in classes and self._cell is not None:
            self._cell.append("")
        if tag not in VOID:
            self._open.append(classes)

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None and self._inside("cm-line"):
            self._cell[-1] += data
            self.content.code[-1] = "\n".join(self._cell)
        if data.strip():
            self.texts.append(data.strip())


def committed(notebook: dict) -> Content:
    """The cells, tables and figures of a notebook as committed."""
    content = Content()
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            content.markdown += 1
        elif cell["cell_type"] == "code":
            content.code.append("".join(cell["source"]))
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                content.tables += "".join(data.get("text/html", "")).count("<table")
                content.figures += "image/png" in data
    return content


def problems(expected: Content, page: LabPage, kernel: str) -> list[str]:
    """How ``page`` falls short of showing ``expected`` with ``kernel`` idle, unmodified."""
    found = page.content
    faults = []
    if not expected.tables or not expected.figures:
        faults.append(f"the chapter has {expected.tables} table(s) and {expected.figures} figure(s): "
                      "pick one with both")
    if (found.markdown, len(found.code)) != (expected.markdown, len(expected.code)):
        faults.append(f"{found.markdown} Markdown and {len(found.code)} code cells shown, "
                      f"{expected.markdown} and {len(expected.code)} in the notebook")
    faults += [f"code cell {index + 1} shows other source than the notebook's"
               for index, (shown, source) in enumerate(zip(found.code, expected.code)) if shown != source]
    for kind in ("tables", "figures"):
        if getattr(found, kind) != getattr(expected, kind):
            faults.append(f"{getattr(found, kind)} {kind} shown, {getattr(expected, kind)} committed")
    if f"{kernel} | Idle" not in page.texts:
        status = [text for text in page.texts if " | " in text]
        faults.append(f"kernel status {status or 'missing'}, not '{kernel} | Idle' "
                      "(`make lab` and `make lab-check` register the kernel under the chapters' name)")
    if page.dirty:
        faults.append("Lab marks the notebook modified on opening: its autosave would rewrite the chapter")
    return faults


def free_port() -> int:
    """A loopback port no process listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int, token: str, scratch: Path) -> subprocess.Popen:
    """JupyterLab on the project root, its settings, workspaces and runtime files in ``scratch``."""
    for name, settings in QUIET_SETTINGS.items():
        (scratch / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / "settings" / name).write_text(json.dumps(settings))
    environment = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(scratch / "settings"),
                   "JUPYTERLAB_WORKSPACES_DIR": str(scratch / "workspaces"),
                   "JUPYTER_RUNTIME_DIR": str(scratch / "runtime")}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.allow_root=True",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = (scratch / "server.log").open("w")
    return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)


def wait_until_ready(server: subprocess.Popen, base: str, token: str) -> None:
    """Return once the server answers its status API; raise if it exits or takes too long."""
    deadline = time.monotonic() + SERVER_START_S
    request = urllib.request.Request(f"{base}/api/status", headers={"Authorization": f"token {token}"})
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_S} s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to ``process`` by its PID (a server shuts its kernels down), SIGKILL after 30 s."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


class DevTools:
    """One browser page, driven over the DevTools protocol."""

    def __init__(self, socket_url: str) -> None:
        self.socket = websocket.create_connection(socket_url, suppress_origin=True, timeout=60)
        self.calls = 0

    def call(self, method: str, **params) -> dict:
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.calls:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                return reply["result"]

    def page(self) -> LabPage:
        html = self.call("Runtime.evaluate", expression="document.documentElement.outerHTML", returnByValue=True)
        page = LabPage()
        page.feed(html["result"].get("value", ""))  # empty while a navigation replaces the document
        return page


def start_browser(browser: str, profile: Path) -> tuple[subprocess.Popen, DevTools]:
    """Headless Chromium on a blank page with a fresh profile, and its page's DevTools connection."""
    process = subprocess.Popen([browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
    while not port_file.is_file() or not port_file.read_text().strip():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError("chromium did not open its DevTools port")
        time.sleep(0.2)
    port = port_file.read_text().split()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
        target = next(item for item in json.load(reply) if item["type"] == "page")
    return process, DevTools(target["webSocketDebuggerUrl"])


def rendered(page: LabPage, expected: Content) -> bool:
    """Every cell, table and figure is in ``page`` and a kernel is idle."""
    found = page.content
    return ((found.markdown, len(found.code), found.tables, found.figures)
            == (expected.markdown, len(expected.code), expected.tables, expected.figures)
            and any(text.endswith(" | Idle") for text in page.texts))


def read_page(tools: DevTools, url: str, expected: Content, screenshot: Path) -> LabPage:
    """Open ``url``; the page once it has rendered ``expected`` with an idle kernel (or when
    `PAGE_S` runs out), after `SETTLE_S` more; its screenshot written to ``screenshot``."""
    tools.call("Emulation.setFocusEmulationEnabled", enabled=True)  # Lab follows the focused notebook
    tools.call("Page.navigate", url=url)
    deadline = time.monotonic() + PAGE_S
    while not rendered(tools.page(), expected) and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(SETTLE_S)
    page = tools.page()
    screenshot.write_bytes(base64.b64decode(tools.call("Page.captureScreenshot", format="png")["data"]))
    return page


def main(notebook_path: str, screenshot_path: str) -> int:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium is not installed: `apt-get install chromium`", file=sys.stderr)
        return 2
    notebook = (ROOT / notebook_path).resolve()
    contents = json.loads(notebook.read_text(encoding="utf-8"))
    expected, kernel = committed(contents), contents["metadata"]["kernelspec"]["display_name"]
    screenshot = Path(screenshot_path).resolve()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        scratch, started = Path(folder), time.monotonic()
        server = start_server(port, token, scratch)
        try:
            wait_until_ready(server, base, token)
            ready = time.monotonic()
            browser_process, tools = start_browser(browser, scratch / "browser")
            try:
                page = read_page(tools, f"{base}/lab/tree/{notebook.relative_to(ROOT).as_posix()}?token={token}",
                                 expected, screenshot)
            finally:
                stop(browser_process)
        except RuntimeError as error:
            print(f"FAIL {notebook_path}: {error}\n{(scratch / 'server.log').read_text()[-3000:]}", file=sys.stderr)
            return 1
        finally:
            stop(server)
        shown = time.monotonic()
    faults = problems(expected, page, kernel)
    print(f"{'FAIL' if faults else 'ok  '} {notebook_path}: {expected.markdown} Markdown and {len(expected.code)} "
          f"code cells, {expected.tables} tables, {expected.figures} figures; server ready in {ready - started:.1f} s, "
          f"page read in {shown - ready:.1f} s; screenshot in {screenshot_path}" + "".join(f"\n     {f}" for f in faults))
    return 1 if faults else 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
