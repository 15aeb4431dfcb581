"""The real binary (`hr-bridge serve --demo`) over a fresh SQLite database, and
Debian's chromium driven by Playwright. Run through scripts/browser-test.sh, which
installs what is missing and sets HR_BRIDGE_BIN and CHROMIUM."""

import base64
import os
import re
import queue
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

BIN = os.environ.get("HR_BRIDGE_BIN", "target/debug/hr-bridge")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# A username HR data may hold; the console must show it as text.
HOSTILE = "<script>alert(1)</script>"
START_LIMIT = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `serve --demo` with the console on, its banner read."""

    def __init__(self, idle_secs=1800, max_secs=43200):
        self.dir = tempfile.TemporaryDirectory(prefix="hrb-browser-")
        root = Path(self.dir.name)
        self.db = root / "hr.db"
        self.port = free_port()
        self.admin_port = free_port()
        self.console = f"http://127.0.0.1:{self.admin_port}"
        self.base = f"http://127.0.0.1:{self.port}"
        config = root / "hr-bridge.toml"
        config.write_text(
            f"""
[server]
listen = "127.0.0.1:{self.port}"
[database]
url = "sqlite://{self.db}?mode=rwc"
[auth]
failure_floor_ms = 100
[sync]
max_deletions = 1
max_deletion_ratio = 0.0
[admin]
listen = "127.0.0.1:{self.admin_port}"
operators = ["alice"]
viewers = ["bob", "{HOSTILE}"]
session_idle_secs = {idle_secs}
session_max_secs = {max_secs}
[log]
level = "warn"
"""
        )
        self.log = open(root / "server.log", "w")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--demo", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.banner = self._read_banner()
        found = re.search(r"has the password (\S+)", self.banner)
        assert found, self.banner
        self.password = found.group(1)
        omflow = re.search(r"OMFLOW Basic Auth is omflow / (\S+)", self.banner)
        assert omflow, self.banner
        self.omflow_password = omflow.group(1)
        self._add_hostile_employee()

    def _read_banner(self):
        # A thread reads the lines: the pipe's buffering hides them from select().
        lines = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(line) for line in self.proc.stdout], daemon=True
        ).start()
        seen = []
        deadline = time.monotonic() + START_LIMIT
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise AssertionError(f"hr-bridge exited: {''.join(seen)}")
                continue
            seen.append(line)
            if line.startswith("demo: serving on"):
                return "".join(seen)
        raise AssertionError(f"no banner within {START_LIMIT} s: {''.join(seen)}")

    def _add_hostile_employee(self):
        """An employee whose username is markup, with the demo's password."""
        with sqlite3.connect(self.db) as con:
            (hash_,) = con.execute(
                "SELECT password_hash FROM employees WHERE username = 'alice'"
            ).fetchone()
            con.execute(
                "INSERT INTO employees (username, email, nick_name, password_hash, active) "
                "VALUES (?, 'hostile@example.com', 'Hostile', ?, 1)",
                (HOSTILE, hash_),
            )

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        self.dir.cleanup()


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        # As root, chromium runs only without its sandbox.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def context(browser):
    c = browser.new_context(viewport={"width": 1280, "height": 800})
    yield c
    c.close()


@pytest.fixture
def page(context):
    return context.new_page()


def sign_in(page, server, username, password=None):
    page.goto(server.console + "/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password or server.password)
    page.get_by_role("button", name="Sign in").click()


def omflow_sync(server):
    """OMFLOW's POST /sync; its status."""
    credentials = base64.b64encode(f"omflow:{server.omflow_password}".encode()).decode()
    request = urllib.request.Request(
        server.base + "/sync", method="POST", headers={"Authorization": f"Basic {credentials}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
