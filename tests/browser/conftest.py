"""The real binary (`hr-bridge serve --demo`) over a fresh database on each
backend (SQLite, PostgreSQL, MariaDB), a local webhook receiver it notifies, and
Debian's chromium driven by Playwright. Run through scripts/browser-test.sh, which
installs what is missing, makes sure both database servers are up and sets
HR_BRIDGE_BIN and CHROMIUM.

Every test that takes `server` (or `backend`) runs once per backend, unless it is
marked `@pytest.mark.backends("sqlite", ...)`. The servers are session-scoped:
pytest groups the tests by backend, so one server (and one database) is up at a
time. Each server gets a database of its own, created here and dropped when it
stops, named like tests/api/helpers.rs names its (`hrb_test_<uuid>`); a database
server that cannot be reached fails the tests, it never skips them.

`serve --demo` fills any empty built-in database with the sample organisation
and prints the same banner on every backend, so it is used on all three."""

import base64
import json
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
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

BIN = os.environ.get("HR_BRIDGE_BIN", "target/debug/hr-bridge")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# A username HR data may hold; the console must show it as text.
HOSTILE = "<script>alert(1)</script>"
START_LIMIT = 120
# How long a webhook message may take to arrive.
WEBHOOK_LIMIT = 30

BACKENDS = ("sqlite", "postgres", "mysql")
# The admin connections that create and drop the test databases; the same
# variables and defaults as tests/api/helpers.rs.
POSTGRES_ADMIN = os.environ.get(
    "HR_BRIDGE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"
)
MYSQL_ADMIN = os.environ.get("HR_BRIDGE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "backends(*names): run this test on these backends only (default: "
        + ", ".join(BACKENDS)
        + ")",
    )


def pytest_generate_tests(metafunc):
    """`backend` (and so `server`) is one parameter per backend, session-scoped so
    that pytest groups the tests by backend and keeps one server up at a time."""
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    backends = marker.args if marker else BACKENDS
    unknown = set(backends) - set(BACKENDS)
    assert not unknown, f"unknown backends {unknown} in {metafunc.function.__name__}"
    metafunc.parametrize("backend", backends, scope="session")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """One backend after another, each in the file's order: pytest's own grouping
    of session-scoped parameters splits a backend's tests when other parameters
    (the axe test's pages) are about, which would start its server twice."""
    order = {backend: i for i, backend in enumerate(BACKENDS)}

    def backend_of(item):
        params = getattr(getattr(item, "callspec", None), "params", {})
        return order.get(params.get("backend"), len(BACKENDS))

    items.sort(key=backend_of)


class PortTaken(Exception):
    """The server could not bind a port picked free a moment before."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_database(url, name):
    base, _ = url.rsplit("/", 1)
    return f"{base}/{name}"


def _run(argv, what, env=None):
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, env=env, check=False
        )
    except FileNotFoundError:
        raise AssertionError(
            f"{argv[0]} is needed for the browser tests on {what} "
            "(Debian: postgresql-client, mariadb-client)"
        ) from None
    if done.returncode != 0:
        raise AssertionError(f"{what}: {argv[0]} failed: {done.stderr.strip()}")
    return done.stdout


class Database:
    """A fresh, empty database on one backend; `drop()` removes it."""

    def __init__(self, backend, directory):
        self.backend = backend
        self.name = f"hrb_test_{uuid.uuid4().hex}"
        if backend == "sqlite":
            self.path = Path(directory) / "hr.db"
            self.url = f"sqlite://{self.path}?mode=rwc"
        elif backend == "postgres":
            self._admin(f"CREATE DATABASE {self.name}")
            self.url = _with_database(POSTGRES_ADMIN, self.name)
        elif backend == "mysql":
            self._admin(
                f"CREATE DATABASE {self.name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            self.url = _with_database(MYSQL_ADMIN, self.name)
        else:
            raise AssertionError(f"unknown backend {backend}")

    def _psql(self, url, sql):
        return _run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
            "PostgreSQL",
        )

    def _mariadb(self, url, sql):
        parts = urllib.parse.urlsplit(url)
        env = dict(os.environ)
        if parts.password:
            env["MYSQL_PWD"] = urllib.parse.unquote(parts.password)
        argv = [
            "mariadb", "--protocol=tcp", "-N", "-B",
            "-h", parts.hostname or "127.0.0.1",
            "-P", str(parts.port or 3306),
            "-u", urllib.parse.unquote(parts.username or "root"),
            parts.path.lstrip("/"),
            "-e", sql,
        ]  # fmt: skip
        return _run(argv, "MariaDB", env=env)

    def _admin(self, sql):
        if self.backend == "postgres":
            self._psql(POSTGRES_ADMIN, sql)
        else:
            self._mariadb(MYSQL_ADMIN, sql)

    def execute(self, sql):
        """Runs SQL (one statement; literals only, no parameters) in this database."""
        if self.backend == "sqlite":
            with sqlite3.connect(self.path) as con:
                con.execute(sql)
        elif self.backend == "postgres":
            self._psql(self.url, sql)
        else:
            self._mariadb(self.url, sql)

    def drop(self):
        if self.backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        elif self.backend == "postgres":
            self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        elif self.backend == "mysql":
            self._admin(f"DROP DATABASE IF EXISTS {self.name}")


class WebhookReceiver:
    """A local endpoint for `notify.webhook_url`: keeps every JSON body POSTed to
    it, in arrival order, and answers 204."""

    PATH = "/hook"

    def __init__(self):
        self.messages = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = {"unparsable": body.decode("utf-8", "replace")}
                with receiver.changed:
                    receiver.messages.append(
                        {
                            "path": self.path,
                            "content_type": self.headers.get("Content-Type"),
                            "body": parsed,
                        }
                    )
                    receiver.changed.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # Tokenless, so the TOML file may carry it.
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{self.PATH}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def bodies(self, event=None):
        """The bodies received so far, of one event or of all."""
        with self.changed:
            return [
                m["body"]
                for m in self.messages
                if event is None or m["body"].get("event") == event
            ]

    def wait_for(self, event, count=1, limit=WEBHOOK_LIMIT):
        """Waits until `count` messages of `event` have arrived; returns them all."""
        with self.changed:
            arrived = self.changed.wait_for(
                lambda: len([m for m in self.messages if m["body"].get("event") == event])
                >= count,
                timeout=limit,
            )
            seen = [m["body"].get("event") for m in self.messages]
        assert arrived, f"no {count} {event} message(s) within {limit} s; received: {seen}"
        return self.bodies(event)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Server:
    """One `serve --demo` with the console on over a fresh database of `backend`,
    notifying its own webhook receiver; its banner read."""

    def __init__(self, backend="sqlite", idle_secs=1800, max_secs=43200):
        self.backend = backend
        self.idle_secs, self.max_secs = idle_secs, max_secs
        self.dir = tempfile.TemporaryDirectory(prefix="hrb-browser-")
        root = Path(self.dir.name)
        self.database = Database(backend, root)
        self.webhook = WebhookReceiver()
        self.log_path = root / "server.log"
        # A port picked free may be taken by another process before the server
        # binds it (other tests run beside these): then try again on new ports.
        for attempt in range(5):
            self._start(root)
            try:
                self.banner = self._read_banner()
                break
            except PortTaken:
                self.proc.wait()
                self.log.close()
                if attempt == 4:
                    self.stop()
                    raise
                # The demo filled the database before the bind: start afresh.
                self.database.drop()
                self.database = Database(backend, root)
            except BaseException:
                self.stop()
                raise
        try:
            found = re.search(r"has the password (\S+)", self.banner)
            assert found, self.banner
            self.password = found.group(1)
            omflow = re.search(r"OMFLOW Basic Auth is omflow / (\S+)", self.banner)
            assert omflow, self.banner
            self.omflow_password = omflow.group(1)
            self._add_hostile_employee()
        except BaseException:
            self.stop()
            raise

    def _start(self, root):
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
url = "{self.database.url}"
[auth]
failure_floor_ms = 100
[sync]
max_deletions = 1
max_deletion_ratio = 0.0
[admin]
listen = "127.0.0.1:{self.admin_port}"
operators = ["alice"]
viewers = ["bob", "{HOSTILE}"]
session_idle_secs = {self.idle_secs}
session_max_secs = {self.max_secs}
[notify]
webhook_url = "{self.webhook.url}"
format = "json"
console_url = "{self.console}/"
[log]
level = "warn"
"""
        )
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--demo", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

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
                    log = self.log_path.read_text()
                    if "in use" in log:
                        raise PortTaken(log)
                    raise AssertionError(
                        f"hr-bridge exited: {''.join(seen)}{self.log_path.read_text()}"
                    )
                continue
            seen.append(line)
            if line.startswith("demo: serving on"):
                return "".join(seen)
        raise AssertionError(f"no banner within {START_LIMIT} s: {''.join(seen)}")

    def execute(self, sql):
        """SQL in the server's database (one statement, literals only)."""
        self.database.execute(sql)

    def _add_hostile_employee(self):
        """An employee whose username is markup, with the demo's password."""
        self.execute(
            "INSERT INTO employees (username, email, nick_name, password_hash, active) "
            f"SELECT '{HOSTILE}', 'hostile@example.com', 'Hostile', password_hash, TRUE "
            "FROM employees WHERE username = 'alice'"
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.webhook.stop()
        try:
            self.database.drop()
        finally:
            self.dir.cleanup()


@pytest.fixture(scope="session")
def server(backend):
    s = Server(backend)
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
