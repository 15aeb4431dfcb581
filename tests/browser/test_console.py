"""The web console in chromium: sign-in, roles, CSRF, escaping, sign-out, session
expiry, keyboard use and an axe-core check of every page.

Every test that takes `server` runs on SQLite, PostgreSQL and MariaDB (see
conftest.py), except the pure-page ones marked `@pytest.mark.backends("sqlite")`
(keyboard use, the CSRF and Origin checks, the axe check of every page): they
exercise the same templates and checks whatever the database holds, and on three
backends they would add a minute to CI for nothing. The flows that read or write
the database (sign-in and its refusal, the markup username, sign-out, session
expiry, the guard refusal approved with its webhook messages, unlock, the
Logins filter and the CSV download) run on all three."""

import base64
import csv
import io
import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from conftest import HOSTILE, Server, omflow_sync, sign_in


def test_the_banner_names_the_console(server):
    assert f"the web console is at {server.console}/" in server.banner


def test_an_operator_signs_in_and_sees_the_overview(server, page):
    page.goto(server.console + "/")
    # No session: the sign-in page.
    expect(page).to_have_url(server.console + "/sign-in")
    sign_in(page, server, "alice")
    expect(page).to_have_url(server.console + "/")
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.locator(".who span")).to_have_text("alice (operator)")
    expect(page.get_by_text("reachable: answers").first).to_be_visible()
    chart = page.get_by_role("img", name=re.compile(r"^Logins per hour over the last 168 hours"))
    expect(chart).to_be_visible()


# Tab order and Enter: a pure page, SQLite only.
@pytest.mark.backends("sqlite")
def test_keyboard_alone_signs_in(server, page):
    page.goto(server.console + "/sign-in")
    # Skip link and fields in order: Tab reaches the username first.
    page.keyboard.press("Tab")
    page.keyboard.type("bob")
    page.keyboard.press("Tab")
    page.keyboard.type(server.password)
    page.keyboard.press("Enter")
    expect(page.locator(".who span")).to_have_text("bob (viewer)")


def test_a_refused_sign_in_says_nothing_more(server, page):
    sign_in(page, server, "carol")  # right password, no console role
    expect(page).to_have_url(server.console + "/sign-in")
    expect(page.get_by_role("alert")).to_have_text(
        "Invalid username or password, or no access to this console."
    )


def test_a_markup_username_renders_as_text(server, page):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, server, HOSTILE)
    expect(page.locator(".who span")).to_have_text(f"{HOSTILE} (viewer)")
    page.goto(server.console + "/problems")
    expect(page.locator(".who span")).to_have_text(f"{HOSTILE} (viewer)")
    assert dialogs == [], "the username ran as script"


# Token and Origin are compared in memory (the session is read as in every test): SQLite only.
@pytest.mark.backends("sqlite")
def test_posts_without_the_csrf_token_or_from_elsewhere_are_403(server, page):
    sign_in(page, server, "alice")
    expect(page.locator(".who span")).to_have_text("alice (operator)")
    origin = {"Origin": server.console}
    # The session cookie goes along (same browser context), the token does not.
    assert page.request.post(server.console + "/sign-out", form={}, headers=origin).status == 403
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    wrong_origin = {"Origin": "http://evil.example"}
    response = page.request.post(
        server.console + "/sign-out", form={"csrf": token}, headers=wrong_origin
    )
    assert response.status == 403
    # Still signed in.
    page.reload()
    expect(page.locator(".who span")).to_have_text("alice (operator)")


def test_sign_out_ends_the_session(server, page):
    sign_in(page, server, "alice")
    expect(page.locator(".who span")).to_have_text("alice (operator)")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(server.console + "/sign-in")
    page.goto(server.console + "/")
    expect(page).to_have_url(server.console + "/sign-in")


def test_an_idle_session_expires(browser, backend):
    short = Server(backend, idle_secs=2, max_secs=4)
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in(page, short, "alice")
        expect(page.locator(".who span")).to_have_text("alice (operator)")
        time.sleep(2.5)
        page.goto(short.console + "/")
        expect(page).to_have_url(short.console + "/sign-in")
    finally:
        context.close()
        short.stop()


def test_a_guard_refusal_is_reviewed_and_approved(server, browser):
    assert omflow_sync(server) == 200
    server.execute("UPDATE employees SET active = FALSE WHERE username IN ('ivan', 'judy')")
    assert omflow_sync(server) == 409

    # The webhook receiver got the refusal: hr-bridge's json format.
    (refused,) = server.webhook.wait_for("sync_refused")
    approval_id = refused["details"]["approval_id"]
    assert re.fullmatch(r"\d+", approval_id or ""), refused["details"]
    assert refused["details"] == {
        "reason": "deletion_guard",
        "users": 2,
        "departments": 0,
        "usernames": ["ivan", "judy"],
        "approval_id": approval_id,
    }
    assert refused["summary"].startswith(
        'hr-bridge refused a sync: it would have dropped 2 users and 0 departments ("ivan" and "judy")'
    ), refused["summary"]
    assert refused["console_url"] == server.console + "/"
    # The message names the pending set and links to the page that approves it.
    assert f"hr-bridge accept-deletions {approval_id}" in refused["summary"], refused["summary"]
    assert refused["link"] == server.console + "/pending", refused
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", refused["occurred_at"])

    # A viewer sees the refusal and who would go, and cannot approve.
    viewer = browser.new_context()
    page = viewer.new_page()
    sign_in(page, server, "bob")
    expect(page.locator(".who span")).to_have_text("bob (viewer)")
    expect(page.get_by_text("refused_guard").first).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("2 user\\(s\\) and 0 department\\(s\\) would be dropped"))).to_be_visible()
    page.get_by_role("link", name="Pending approval").click()
    rows = page.locator("tbody tr td:nth-child(2)")
    expect(rows).to_have_text(["ivan", "judy"])
    expect(page.get_by_role("button", name=re.compile("^Approve"))).to_have_count(0)
    expect(page.get_by_text("Only operators may approve.")).to_be_visible()
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    forged = page.request.post(
        server.console + "/pending/approve",
        form={"csrf": csrf, "id": "1", "digest": "x", "confirm": "2"},
        headers={"Origin": server.console},
    )
    assert forged.status == 403
    viewer.close()

    # An operator approves, typing the count.
    operator = browser.new_context()
    page = operator.new_page()
    sign_in(page, server, "alice")
    page.get_by_role("link", name="Pending approval").click()
    page.get_by_label("Name contains").fill("judy")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tbody tr td:nth-child(2)")).to_have_text(["judy"])
    page.get_by_label(re.compile("^Type the number of objects to drop")).fill("3")
    page.get_by_role("button", name="Approve 2 deletion(s)").click()
    expect(page.get_by_role("alert")).to_contain_text("Type the number of objects to drop (2)")
    assert omflow_sync(server) == 409
    page.get_by_label(re.compile("^Type the number of objects to drop")).fill("2")
    page.get_by_label(re.compile("^Reason")).fill("left in March")
    page.get_by_role("button", name="Approve 2 deletion(s)").click()
    expect(page.get_by_role("status")).to_contain_text("recorded")

    # OMFLOW's next /sync passes, and the receiver hears that syncs are served
    # again; the refusal repeated above was not announced twice.
    assert omflow_sync(server) == 200
    (served,) = server.webhook.wait_for("sync_served_again")
    assert served["details"] == {}
    assert served["summary"] == (
        "hr-bridge serves syncs to OMFLOW again after a refusal; OMFLOW is up to date."
    )
    events = [b["event"] for b in server.webhook.bodies() if b["event"].startswith("sync_")]
    assert events == ["sync_refused", "sync_served_again"], events
    page.get_by_role("link", name="History").click()
    expect(page.get_by_role("cell", name="served").first).to_be_visible()
    page.get_by_label("Person or department").fill("ivan")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("cell", name="alice (left in March)").first).to_be_visible()
    page.get_by_role("link", name="Activity").click()
    expect(page.get_by_role("cell", name="console_sign_in").first).to_be_visible()
    # The overview after all this, for docs/console.png.
    screenshot = os.environ.get("SCREENSHOT")
    if screenshot:
        page.get_by_role("link", name="Overview").click()
        page.screenshot(path=screenshot, full_page=True)
    operator.close()


def omflow_authenticate(server, username, password):
    """OMFLOW's POST /authenticate; its answer's status (`success` or `fail`)."""
    credentials = base64.b64encode(f"omflow:{server.omflow_password}".encode()).decode()
    request = urllib.request.Request(
        server.base + "/authenticate",
        method="POST",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Authorization": f"Basic {credentials}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["status"]


def test_an_operator_unlocks_a_locked_person(server, browser):
    # frank gets his password wrong until locked out; then even the right one fails.
    for _ in range(5):
        assert omflow_authenticate(server, "frank", "wrong") == "fail"
    assert omflow_authenticate(server, "frank", server.password) == "fail"

    # A viewer sees the lockout but no Unlock.
    viewer = browser.new_context()
    page = viewer.new_page()
    sign_in(page, server, "bob")
    page.get_by_role("link", name="Logins").click()
    locked = page.locator("section[aria-labelledby=locked-title] tbody")
    expect(locked.get_by_role("cell", name="frank", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Unlock"))).to_have_count(0)
    # The audit trail, filtered by person and result, lists his failures.
    page.get_by_label("Person (username)").fill("frank")
    page.get_by_label("Result").select_option("failure")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/logins\?person=frank&outcome=failure"))
    attempts = page.locator("section[aria-labelledby=audit-title] tbody tr")
    expect(attempts).to_have_count(6)
    viewer.close()

    # An operator unlocks him; he can log in again.
    operator = browser.new_context()
    page = operator.new_page()
    sign_in(page, server, "alice")
    page.goto(server.console + "/logins")
    page.get_by_role("button", name="Unlock frank").click()
    expect(page.get_by_role("status")).to_contain_text("Unlocked frank")
    expect(page.get_by_text("No account is locked.")).to_be_visible()
    assert omflow_authenticate(server, "frank", server.password) == "success"
    page.get_by_role("link", name="Activity").click()
    expect(page.get_by_role("cell", name="unlock", exact=True).first).to_be_visible()
    operator.close()


def test_the_filtered_audit_trail_downloads_as_csv(server, browser):
    # Attempts under a name no one has, one of them typed as a spreadsheet formula.
    for name in ("nobody-csv", "nobody-csv", "=nobody-csv"):
        assert omflow_authenticate(server, name, "wrong") == "fail"

    viewer = browser.new_context()
    page = viewer.new_page()
    sign_in(page, server, "bob")
    page.get_by_role("link", name="Logins").click()
    page.get_by_label("Person (username)").fill("nobody-csv")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("section[aria-labelledby=audit-title] tbody tr")).to_have_count(2)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download these attempts as CSV").click()
    download = download_info.value
    assert download.suggested_filename == "logins.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows[0] == ["occurred_at", "username", "outcome", "reason", "client_addr"]
    assert [row[1:] for row in rows[1:]] == [
        ["nobody-csv", "failure", "unknown_user", "127.0.0.1"],
        ["nobody-csv", "failure", "unknown_user", "127.0.0.1"],
    ]
    # Unfiltered, the formula comes out as text a spreadsheet will not run.
    response = page.request.get(server.console + "/logins.csv?reason=unknown_user")
    assert response.status == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    names = [row[1] for row in csv.reader(io.StringIO(response.text()))][1:]
    assert "'=nobody-csv" in names and "=nobody-csv" not in names, names
    viewer.close()


SERIOUS = {"serious", "critical"}


def serious_violations(page):
    results = Axe().run(page)
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for v in results.response["violations"]
        if v.get("impact") in SERIOUS
    ]


# Pure pages: SQLite only (see the module's docstring).
@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    "path",
    [
        "/sign-in",
        "/",
        "/history",
        "/history/1",
        "/pending",
        "/problems",
        "/logins",
        "/activity",
        "/no-such-page",
    ],
)
def test_every_page_passes_axe(server, browser, path):
    # axe is injected as a script: allowed past the console's CSP in this context only.
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    if path != "/sign-in":
        sign_in(page, server, "alice")
        expect(page.locator(".who span")).to_have_text("alice (operator)")
    page.goto(server.console + path)
    assert serious_violations(page) == []
    context.close()


# A large directory's check outlasts the page's short wait: the page says it is
# running, and passes axe in that state too; a reload after it ends shows its
# result. A server of its own, so that no other test sees the bulk rows; SQLite
# only (a pure page, see the module's docstring).
@pytest.mark.backends("sqlite")
def test_the_problems_page_passes_axe_while_a_check_runs(browser, backend):
    big = Server(backend)
    context = browser.new_context(bypass_csp=True)
    try:
        big.execute(
            "INSERT INTO employees (username, email, nick_name, active) "
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) "
            "SELECT 'bulk' || i, 'bulk' || i || '@example.com', 'Bulk ' || i, TRUE FROM n"
        )
        page = context.new_page()
        sign_in(page, big, "alice")
        expect(page.locator(".who span")).to_have_text("alice (operator)")
        page.goto(big.console + "/problems")
        running = page.get_by_role("status")
        expect(running).to_contain_text("A new check is running")
        expect(page.get_by_text("The HR data has not been checked yet.")).to_be_visible()
        assert serious_violations(page) == []
        deadline = time.monotonic() + 60
        while running.count() and time.monotonic() < deadline:
            time.sleep(0.2)
            page.reload()
        expect(running).to_have_count(0)
        expect(page.get_by_text("No problems: /sync can serve this data.")).to_be_visible()
        assert "Active in the HR data: 300" in page.content()
        assert serious_violations(page) == []
    finally:
        context.close()
        big.stop()
