"""The web console in chromium: sign-in, roles, CSRF, escaping, sign-out, session
expiry, keyboard use and an axe-core check of every page."""

import os
import re
import time

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from conftest import HOSTILE, Server, sign_in


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
    screenshot = os.environ.get("SCREENSHOT")
    if screenshot:
        page.screenshot(path=screenshot, full_page=True)


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


def test_an_idle_session_expires(browser):
    short = Server(idle_secs=2, max_secs=4)
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


SERIOUS = {"serious", "critical"}


def serious_violations(page):
    results = Axe().run(page)
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for v in results.response["violations"]
        if v.get("impact") in SERIOUS
    ]


@pytest.mark.parametrize("path", ["/sign-in", "/", "/problems", "/no-such-page"])
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
