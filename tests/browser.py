"""Open a page in a real headless browser (Debian's chromium) and say what it did.

``open_page(Path("report.html"), screenshot=Path("report.png"))`` returns what it saw: the DOM
after load, the console messages and the page's own requests (both empty for a self-contained page).

The page's own network requests are read from chromium's net log (``--log-net-log``): those
whose network isolation key is the page's ``file://`` site. Chromium's background traffic
(update checks, account probes) is keyed elsewhere and left out. Console messages come from
``--enable-logging=stderr`` (``CONSOLE`` lines); a Content-Security-Policy violation is one.
"""

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
         "--disable-extensions", "--disable-breakpad", "--hide-scrollbars", "--virtual-time-budget=5000",
         "--enable-logging=stderr", "--v=0"]


@dataclass
class Seen:
    dom: str  # the document after load, serialized
    console: list[str]
    requests: list[str]  # URLs the page itself asked the network for


def chromium() -> str | None:
    return next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))),
                None)


def open_page(page: Path, *, screenshot: Path | None = None, width: int = 1100, height: int = 3600) -> Seen:
    browser = chromium()
    assert browser, "no chromium on PATH"
    with tempfile.TemporaryDirectory() as work:
        profile, netlog = Path(work) / "profile", Path(work) / "net.json"
        common = [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
        url = page.resolve().as_uri()
        env = {**os.environ, "HOME": work}
        loaded = subprocess.run([*common, f"--log-net-log={netlog}", "--dump-dom", url], capture_output=True,
                                text=True, timeout=120, env=env)
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            shot = subprocess.run([*common, f"--screenshot={screenshot}", url], capture_output=True, text=True,
                                  timeout=120, env=env)
            assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
        console = [line for line in loaded.stderr.splitlines() if ":CONSOLE" in line]
        return Seen(loaded.stdout, console, page_requests(json.loads(netlog.read_text())))


def page_requests(log: dict) -> list[str]:
    """The URLs requested on behalf of a ``file://`` page in a chromium net log."""
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [event["params"]["url"] for event in log["events"]
            if event["type"] == start and "file://" in str(event.get("params", {}).get("network_isolation_key", ""))]
