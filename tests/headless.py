"""A headless chromium driven over the DevTools protocol (websockets), for the report test.

``Browser.load(url)`` opens a page in a fresh tab, waits for its load event and returns what
the page did: the console errors (``console.error``, uncaught exceptions, the log entries
DevTools shows, such as "Failed to load resource"), the failed network loads, the images that
did not decode, the rendered DOM, and a screenshot (PNG bytes).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
# Images that are not loaded and decoded, and the rows of the report's tables.
_PROBE = """JSON.stringify({
  broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
  images: document.images.length,
  height: document.documentElement.scrollHeight
})"""


def find_chromium() -> str | None:
    """The chromium binary on PATH ($CHROMIUM first), or None."""
    for name in ((os.environ.get("CHROMIUM"),) if os.environ.get("CHROMIUM") else ()) + CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageResult:
    console_errors: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    images: int = 0
    dom: str = ""
    screenshot: bytes = b""


class Browser:
    """One headless chromium process with a DevTools websocket; use as a context manager."""

    def __init__(self, binary: str, profile: Path, timeout_s: float = 60.0):
        self.timeout_s = timeout_s
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()
        # Chromium writes to stderr all along (dbus warnings...): drain it so it never blocks.
        threading.Thread(target=lambda: [lines.put(ln) for ln in self.proc.stderr], daemon=True).start()
        url, deadline, seen = None, time.monotonic() + timeout_s, []
        while url is None:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port: " + " | ".join(seen[-5:]))
            seen.append(line.strip())
            m = _LISTENING.search(line)
            url = m.group(1) if m else None
        from websockets.sync.client import connect

        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(url, max_size=None, open_timeout=timeout_s))
        self._id = 0
        self.events: list[dict] = []

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                try:
                    self.send("Browser.close")
                except Exception:
                    pass  # the browser may close the socket before it answers
                self._stack.close()
        finally:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Call ``method`` and return its result; events that arrive meanwhile are kept."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _wait_event(self, name: str, session: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not any(e.get("method") == name and e.get("sessionId") == session for e in self.events):
            self.events.append(json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01))))

    def _drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                break

    def load(self, url: str, width: int = 1400, height: int = 2400) -> PageResult:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
        start = len(self.events)
        self.send("Page.navigate", {"url": url}, session)
        self._wait_event("Page.loadEventFired", session)
        self._drain(0.5)  # late console messages
        out = PageResult()
        for e in self.events[start:]:
            if e.get("sessionId") != session:
                continue
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.console_errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif e["method"] == "Log.entryAdded" and p["entry"].get("level") == "error":
                entry = p["entry"]
                out.console_errors.append(f"{entry.get('text', '')} {entry.get('url', '')}".strip())
            elif e["method"] == "Network.loadingFailed":
                out.failed_loads.append(p.get("errorText", "failed"))
        probe = json.loads(self.send("Runtime.evaluate", {"expression": _PROBE, "returnByValue": True},
                                     session)["result"]["value"])
        out.broken_images, out.images = probe["broken"], probe["images"]
        out.dom = self.send("Runtime.evaluate", {"expression": "document.documentElement.outerHTML",
                                                 "returnByValue": True}, session)["result"]["value"]
        shot = self.send("Page.captureScreenshot", {"format": "png"}, session)
        out.screenshot = base64.b64decode(shot["data"])
        self.send("Target.closeTarget", {"targetId": target})
        return out
