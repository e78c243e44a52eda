"""Starting ``perpsim viz`` on a free port and driving it in headless Chromium (Playwright).

The browser is Debian's ``chromium`` (``.ci/run`` installs it); Playwright's Python package only
drives it (nothing is downloaded at test time). ``PERPSIM_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from support import REPO

#: Chromium's flags here: no sandbox (root), no GPU, and no connection beyond the page's own.
CHROMIUM_FLAGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: How long the server may take to answer (it imports Solara and Mesa; the machine is shared).
START_TIMEOUT_S: Final = 180.0


def chromium_path() -> str:
    """The Chromium binary (raises with how to install it when there is none)."""
    path = os.environ.get("PERPSIM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError(
            f"no Chromium at {path}: install Debian's package (apt-get install chromium), as"
            " .ci/run does, or set PERPSIM_CHROMIUM"
        )
    return path


def free_port() -> int:
    """A TCP port nothing listens on now (on the loopback address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def viz_server(args: Sequence[str], log: Path) -> Iterator[str]:
    """``perpsim viz ARGS --port FREE`` in a child process; yields its URL; stops it after."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "perpsim", "viz", *args, "--port", str(port)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"perpsim viz exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"perpsim viz did not answer in time:\n{log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@contextmanager
def browser_page(width: int = 1440, height: int = 1000) -> Iterator[Any]:
    """A new page in headless Chromium with a fresh profile; closed (with the browser) after."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="perpsim-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=chromium_path(),
                headless=True,
                args=list(CHROMIUM_FLAGS),
                viewport={"width": width, "height": height},
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.set_default_timeout(120_000)
                yield page
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
