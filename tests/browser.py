"""Drive headless Chromium from the tests, with the Python standard library only.

The Chrome DevTools Protocol (CDP) runs over ``--remote-debugging-pipe``: the
browser reads commands from its fd 3 and writes replies and events to its fd 4,
each message one JSON object followed by a NUL byte. No websocket, no Playwright.

    from browser import Browser

    with Browser() as browser:            # no Chromium: the test is skipped (or fails, see below)
        page = browser.new_page(offline=True)
        page.goto(path.as_uri())
        page.wait_for("document.querySelector('.wmb-attn[data-wmb-ready]')")
        page.click(*page.center(".wmb-tok"))
        assert not page.dialogs()
        page.screenshot("out.png")
    # leaving the block fails the test if any page logged a console error or threw

The browser runs with a throw-away profile, no network (``offline=True`` also
switches CDP's network emulation off-line), and is closed (then killed if it
hangs) when the ``with`` block ends. Every page gets a fresh browser context, so
each one is a first visit (empty storage). A block that ends normally raises
``AssertionError`` if any page it opened logged a console error (level error)
or threw an uncaught exception; there is no allow-list.

:func:`require_chromium` is the only place that looks for the browser
(``WMBOOK_CHROMIUM`` overrides the search). Without one a test is skipped, or
fails when ``WMBOOK_REQUIRE_BROWSER=1`` (as in CI).
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",  # needed as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: nothing can leave the machine
)


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def require_chromium() -> str:
    """The Chromium/Chrome executable for a browser test (``WMBOOK_CHROMIUM`` overrides the search).

    Without one the calling test is skipped, or fails when ``WMBOOK_REQUIRE_BROWSER=1``.
    """
    override = os.environ.get("WMBOOK_CHROMIUM")
    for name in [override] if override else CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    where = f"WMBOOK_CHROMIUM={override}" if override else "on PATH: " + ", ".join(CHROMIUM_NAMES)
    message = f"no Chromium found ({where}): install it with `apt-get install chromium`, or set WMBOOK_CHROMIUM"
    if os.environ.get("WMBOOK_REQUIRE_BROWSER") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class BrowserError(RuntimeError):
    """A CDP command failed, the browser died, or something did not happen in time."""


class Browser:
    """One headless Chromium process, spoken to over CDP (use as a context manager)."""

    def __init__(self, executable: str | None = None, timeout: float = 30.0, extra_flags: tuple[str, ...] = ()) -> None:
        self.executable = executable or require_chromium()
        self.timeout = timeout
        self.extra_flags = tuple(extra_flags)
        self.proc: subprocess.Popen | None = None
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._events: list[dict] = []
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._closed = False
        self.pages: list[Page] = []

    # ---- process
    def start(self) -> "Browser":
        self._profile = tempfile.mkdtemp(prefix="wmbook-chromium-")
        to_r, to_w = os.pipe()  # we write commands -> browser's fd 3
        from_r, from_w = os.pipe()  # browser's fd 4 -> we read
        # Lift the child's ends above 10, so the dup2 onto 3 and 4 cannot clobber one another.
        child_in = fcntl.fcntl(to_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_r)
        os.close(from_w)

        def preexec() -> None:  # in the child, before exec: dup2 leaves 3 and 4 inheritable
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self._log = open(Path(self._profile) / "chromium.log", "wb")
        args = [self.executable, *FLAGS, *self.extra_flags, f"--user-data-dir={self._profile}",
                "--remote-debugging-pipe", "about:blank"]
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                         preexec_fn=preexec, close_fds=False)
        finally:
            os.close(child_in)
            os.close(child_out)
        self._w = os.fdopen(to_w, "wb", buffering=0)
        self._r = os.fdopen(from_r, "rb", buffering=0)
        self._reader = threading.Thread(target=self._read_loop, name="cdp-reader", daemon=True)
        self._reader.start()
        self.send("Browser.getVersion")
        return self

    def __enter__(self) -> "Browser":
        return self.start()

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        try:
            if exc_type is None:
                self.assert_no_errors()
        finally:
            self.close()

    def assert_no_errors(self) -> None:
        """Raise ``AssertionError`` listing every console error and uncaught exception of every page opened."""
        found = [f"{page.url}\n    " + "\n    ".join(errors) for page in self.pages if (errors := page.errors())]
        if found:
            raise AssertionError("the browser reported errors:\n  " + "\n  ".join(found))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
            except BrowserError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # only the process this object started
                self.proc.wait(timeout=10)
        for f in (getattr(self, "_w", None), getattr(self, "_r", None), getattr(self, "_log", None)):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        shutil.rmtree(getattr(self, "_profile", ""), ignore_errors=True)

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (Path(self._profile) / "chromium.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # ---- protocol
    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self._r.read(65536)
            except (OSError, ValueError):
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed_pipe = True
                    self._cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if msg.get("method") == "Page.javascriptDialogOpening":  # never let a dialog block the page
                    self._post("Page.handleJavaScriptDialog", {"accept": False}, msg.get("sessionId"))
                with self._cond:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._events.append(msg)
                    self._cond.notify_all()

    def _post(self, method: str, params: dict | None, session: str | None) -> int:
        with self._write_lock:
            self._next_id += 1
            msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            try:
                self._w.write(json.dumps(msg).encode() + b"\0")
            except (BrokenPipeError, ValueError) as err:
                raise BrowserError(f"the browser is gone ({err}); its log ends with:\n{self.log_tail()}") from None
            return self._next_id

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        """Send one CDP command and return its ``result`` (raises :class:`BrowserError` on an error)."""
        mid = self._post(method, params, session)
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or getattr(self, "_closed_pipe", False):
                    raise BrowserError(f"no reply to {method} (browser log:\n{self.log_tail()})")
                self._cond.wait(min(left, 0.5))
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise BrowserError(f"{method} failed: {reply['error']}")
        return reply.get("result", {})

    def events(self, method: str | None = None, session: str | None = None) -> list[dict]:
        with self._cond:
            return [e for e in self._events if (method is None or e.get("method") == method)
                    and (session is None or e.get("sessionId") == session)]

    def wait_event(self, method: str, session: str | None = None, since: int = 0,
                   timeout: float | None = None) -> dict:
        """Wait for an event named ``method`` that arrived after the first ``since`` events of that name."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            found = self.events(method, session)
            if len(found) > since:
                return found[since]
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {method}")
            with self._cond:
                self._cond.wait(0.2)

    def new_page(self, width: int = 1280, height: int = 900, offline: bool = True) -> "Page":
        """A new tab in a context of its own: empty storage and cookies, like a first visit."""
        context = self.send("Target.createBrowserContext")["browserContextId"]
        target = self.send("Target.createTarget", {"url": "about:blank", "browserContextId": context})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target, context)
        self.pages.append(page)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        if offline:
            page.send("Network.emulateNetworkConditions",
                      {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        page.set_viewport(width, height)
        return page


class Page:
    """One tab: navigate, evaluate JavaScript, move and click the mouse, take screenshots."""

    def __init__(self, browser: Browser, session: str, target: str, context: str) -> None:
        self.browser, self.session, self.target, self.context = browser, session, target, context
        self.width, self.height = 1280, 900
        self.url = "about:blank"

    def send(self, method: str, params: dict | None = None, timeout: float | None = None) -> dict:
        return self.browser.send(method, params, self.session, timeout)

    def set_viewport(self, width: int, height: int, scale: float = 1.0) -> None:
        self.width, self.height = width, height
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False})

    def set_color_scheme(self, scheme: str) -> None:
        """Emulate ``prefers-color-scheme``: ``"light"`` or ``"dark"``."""
        self.send("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})

    def goto(self, url: str, timeout: float | None = None) -> None:
        self.url = url
        since = len(self.browser.events("Page.loadEventFired", self.session))
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"could not open {url}: {result['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.session, since, timeout)

    def close(self) -> None:
        """Close the tab and its context (what it logged stays available to :meth:`errors`)."""
        self.browser.send("Target.disposeBrowserContext", {"browserContextId": self.context})

    def eval(self, expression: str) -> Any:
        """Evaluate a JavaScript expression in the page; return its value (JSON-able), raise on an exception."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error: {text}\nin: {expression[:300]}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 10.0, interval: float = 0.05) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout} s waiting for: {expression[:300]}")
            time.sleep(interval)

    def center(self, selector: str) -> tuple[float, float]:
        """Scroll the first element matching ``selector`` into view; return its centre (viewport px)."""
        box = self.eval(
            f"(function(){{var e=document.querySelector({json.dumps(selector)});if(!e)return null;"
            "e.scrollIntoView({block:'center',inline:'center'});var r=e.getBoundingClientRect();"
            "return [r.left+r.width/2, r.top+r.height/2];})()"
        )
        if not box:
            raise BrowserError(f"no element matches {selector!r}")
        return box[0], box[1]

    def mouse_move(self, x: float, y: float) -> None:
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "button": "none"})

    def click(self, x: float, y: float) -> None:
        self.mouse_move(x, y)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            w, h = self.eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": w, "height": min(h, 8000), "scale": 1})
        data = self.send("Page.captureScreenshot", params, timeout=60)["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    # ---- what went wrong
    def errors(self) -> list[str]:
        """Uncaught exceptions, ``console.error`` calls and error log entries (e.g. a blocked load)."""
        out = []
        for e in self.browser.events("Runtime.exceptionThrown", self.session):
            d = e["params"]["exceptionDetails"]
            out.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
        for e in self.browser.events("Runtime.consoleAPICalled", self.session):
            if e["params"]["type"] in ("error", "assert"):
                args = e["params"].get("args", [])
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in args))
        for e in self.browser.events("Log.entryAdded", self.session):
            entry = e["params"]["entry"]
            if entry.get("level") == "error":
                out.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        return out

    def dialogs(self) -> list[str]:
        """Messages of every ``alert``/``confirm``/``prompt`` the page opened (each was dismissed)."""
        return [e["params"].get("message", "") for e in self.browser.events("Page.javascriptDialogOpening", self.session)]

    def requests(self) -> list[str]:
        """Every URL the page asked for."""
        return [e["params"]["request"]["url"] for e in self.browser.events("Network.requestWillBeSent", self.session)]


def tap(page: "Page", x: float, y: float) -> None:
    """A finger's tap at (x, y) (touch emulation on): touchstart, touchend, and the click that follows."""
    page.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
    page.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    page.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def open_views(browser: Browser, folder: str | Path, *views: Any, name: str = "views.html", title: str = "views",
               width: int = 900, height: int = 900, timeout: float | None = None, ready: str | None = None) -> Page:
    """Write ``views`` (wmbook fragments) into one page ``folder/name`` and open it from ``file://``.

    ``ready``: an attribute every view's root element must carry before this returns (e.g.
    ``data-wmb-ready``). Shared by the browser tests of the reader's tasks and of the live GPT.
    """
    from wmbook.view.fragment import page_html

    path = Path(folder) / name
    path.write_text(page_html(*views, title=title), encoding="utf-8")
    page = browser.new_page(width=width, height=height)
    page.goto(path.as_uri(), **({"timeout": timeout} if timeout else {}))
    for v in views if ready else ():
        page.wait_for(f"document.getElementById('{v.uid}').getAttribute('{ready}')", timeout=timeout or 10.0)
    return page


def view_eval(page: Page, view: Any, prop: str, expr: str, name: str = "v") -> Any:
    """Evaluate ``expr`` with ``name`` bound to the view's API (``document.getElementById(uid)[prop]``)."""
    return page.eval(f"(function({name}){{return {expr};}})(document.getElementById('{view.uid}').{prop})")


def shoot(page: Page, name: str) -> None:
    """A screenshot ``name`` into ``$WMBOOK_SCREENSHOT_DIR`` when that is set (else nothing)."""
    shots = os.environ.get("WMBOOK_SCREENSHOT_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(Path(shots) / name)
