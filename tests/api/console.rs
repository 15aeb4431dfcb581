//! The web console's own HTTP behaviour: its port, sign-in with HR credentials
//! (audited as channel `console`), roles, sessions and their expiry, CSRF and
//! Origin checks, security headers and escaping.

use std::time::{Duration, Instant};

use hr_bridge::config::Settings;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};

use crate::authenticate::{add_employee, argon2id};
use crate::helpers::{TestApp, TestDb, LOCAL_FREE_PORT};
use crate::on_all_backends;

/// The console's session cookie over plain HTTP.
pub(crate) const COOKIE: &str = "hrb_session";
pub(crate) const PASSWORD: &str = "console-test-password";

/// A console client on one app: no redirects followed, cookies by hand.
pub(crate) struct Console {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
}

impl Console {
    pub(crate) fn of(app: &TestApp) -> Self {
        let addr = app.admin_addr().expect("the console listens");
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    pub(crate) async fn get(&self, path: &str, cookie: Option<&str>) -> Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = cookie {
            request = request.header("cookie", format!("{COOKIE}={token}"));
        }
        request.send().await.expect("request sent")
    }

    /// A form POST from this console's own origin (as a browser sends it).
    pub(crate) async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> Response {
        self.post_from(path, cookie, form, Some(&self.base)).await
    }

    pub(crate) async fn post_from(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Response {
        let mut request = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(token) = cookie {
            request = request.header("cookie", format!("{COOKIE}={token}"));
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send().await.expect("request sent")
    }

    /// Signs in; the session token on success.
    pub(crate) async fn sign_in(&self, username: &str, password: &str) -> Option<String> {
        let response = self
            .post(
                "/sign-in",
                None,
                &[("username", username), ("password", password)],
            )
            .await;
        if response.status() != StatusCode::SEE_OTHER {
            return None;
        }
        assert_eq!(location(&response), "/");
        Some(session_token(&response).expect("a session cookie"))
    }

    /// The page at `path` for a session, which must answer 200.
    pub(crate) async fn page(&self, path: &str, token: &str) -> String {
        let response = self.get(path, Some(token)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.text().await.expect("body")
    }

    /// The CSRF token the page's forms carry.
    pub(crate) async fn csrf(&self, token: &str) -> String {
        let page = self.page("/", token).await;
        let marker = "name=\"csrf\" value=\"";
        let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
        page[start..].split('"').next().expect("token").to_owned()
    }
}

pub(crate) fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub(crate) fn set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn session_token(response: &Response) -> Option<String> {
    let cookie = set_cookie(response)?;
    let value = cookie.strip_prefix(&format!("{COOKIE}="))?;
    Some(value.split(';').next()?.to_owned())
}

/// Settings with the console on a free port, `operators` and `viewers` set.
pub(crate) fn console_settings(base: Settings, operators: &[&str], viewers: &[&str]) -> Settings {
    let mut settings = base;
    settings.admin.listen = Some(LOCAL_FREE_PORT);
    settings.admin.operators = operators.iter().map(|s| (*s).to_owned()).collect();
    settings.admin.viewers = viewers.iter().map(|s| (*s).to_owned()).collect();
    settings
}

pub(crate) async fn with_people(app: &TestApp, usernames: &[&str]) {
    let hash = argon2id(PASSWORD);
    for username in usernames {
        add_employee(app, username, Some(&hash), true).await;
    }
}

/// Redirected to the sign-in page: no (longer a) live session.
fn assert_sent_to_sign_in(response: &Response) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response), "/sign-in");
}

on_all_backends!(
    console_sign_in_uses_hr_credentials_and_is_audited_as_console,
    |db: TestDb| async move {
        let settings = console_settings(db.settings(), &["alice"], &[]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice", "bob"]).await;
        let console = Console::of(&app);
        // Pages need a session.
        assert_sent_to_sign_in(&console.get("/", None).await);
        let form = console.get("/sign-in", None).await;
        assert_eq!(form.status(), StatusCode::OK);
        let form = form.text().await.unwrap();
        assert!(form.contains("<label for=\"username\">"), "{form}");
        // A wrong password, and the right one of someone without a role, get
        // the same refusal and no cookie.
        for (username, password) in [("alice", "wrong"), ("bob", PASSWORD), ("nobody", "x")] {
            let response = console
                .post(
                    "/sign-in",
                    None,
                    &[("username", username), ("password", password)],
                )
                .await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{username}");
            assert!(set_cookie(&response).is_none(), "{username}");
            let body = response.text().await.unwrap();
            assert!(body.contains("Invalid username or password"), "{body}");
        }
        let response = console
            .post(
                "/sign-in",
                None,
                &[("username", "alice"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = set_cookie(&response).expect("a session cookie");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        // Plain HTTP: no Secure (browsers would drop it), so no __Host- prefix.
        assert!(!cookie.contains("Secure"), "{cookie}");
        let token = session_token(&response).expect("token");
        assert_eq!(token.len(), 43, "256 random bits, base64url");
        let overview = console.page("/", &token).await;
        assert!(overview.contains("alice (operator)"), "{overview}");
        assert!(overview.contains("<svg class=\"chart\""), "{overview}");
        // The token itself is never stored: only its hash.
        let stored = app.rows("SELECT id FROM console_sessions").await;
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0][0].as_deref(), Some(token.as_str()));
        // Every attempt is in the audit trail, channel console.
        let audit = app
            .rows("SELECT username, reason, channel FROM auth_audit ORDER BY id")
            .await;
        let audit: Vec<Vec<String>> = audit
            .into_iter()
            .map(|r| r.into_iter().map(Option::unwrap_or_default).collect())
            .collect();
        assert_eq!(
            audit,
            [
                ["alice", "bad_password", "console"],
                ["bob", "success", "console"],
                ["nobody", "unknown_user", "console"],
                ["alice", "success", "console"],
            ]
        );
        // OMFLOW's own logins stay channel omflow.
        app.post_authenticate("alice", PASSWORD).await;
        let last = app
            .rows("SELECT channel FROM auth_audit ORDER BY id DESC")
            .await;
        assert_eq!(last[0][0].as_deref(), Some("omflow"));
    }
);

on_all_backends!(
    console_sign_in_shares_the_lockout_of_authenticate,
    |db: TestDb| async move {
        let mut settings = console_settings(db.settings(), &["alice"], &[]);
        settings.auth.max_failures = 2;
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let console = Console::of(&app);
        for _ in 0..2 {
            assert!(console.sign_in("alice", "wrong").await.is_none());
        }
        // Locked: the right password is refused too, here and on OMFLOW's port.
        assert!(console.sign_in("alice", PASSWORD).await.is_none());
        let answer =
            crate::helpers::json_body(app.post_authenticate("alice", PASSWORD).await).await;
        assert_eq!(answer["status"], "fail");
        let reasons = app.audit().await;
        assert_eq!(reasons[2].2, "locked");
    }
);

on_all_backends!(
    state_changing_requests_need_the_csrf_token_and_the_same_origin,
    |db: TestDb| async move {
        let settings = console_settings(db.settings(), &["alice"], &[]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let console = Console::of(&app);
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        let csrf = console.csrf(&token).await;
        // No token, a wrong one: 403, the session lives on.
        for form in [vec![], vec![("csrf", "forged")]] {
            let response = console.post("/sign-out", Some(&token), &form).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
        console.page("/", &token).await;
        // The right token from another origin, or with no Origin: 403.
        for origin in [Some("http://evil.example"), None] {
            let response = console
                .post_from("/sign-out", Some(&token), &[("csrf", &csrf)], origin)
                .await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin:?}");
        }
        // Under Referrer-Policy: no-referrer, Chromium sends `Origin: null` for
        // the console's own forms; its Sec-Fetch-Site must then say same-origin.
        for (fetch_site, status) in [
            ("cross-site", StatusCode::FORBIDDEN),
            ("same-origin", StatusCode::SEE_OTHER),
        ] {
            let response = console
                .client
                .post(format!("{}/sign-in", console.base))
                .header("origin", "null")
                .header("sec-fetch-site", fetch_site)
                .form(&[("username", "alice"), ("password", PASSWORD)])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{fetch_site}");
        }
        // Sign-in itself is refused cross-origin (login CSRF).
        let response = console
            .post_from(
                "/sign-in",
                None,
                &[("username", "alice"), ("password", PASSWORD)],
                Some("http://evil.example"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        // A POST without a session at all: 403, not a redirect.
        let response = console.post("/sign-out", None, &[("csrf", &csrf)]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        console.page("/", &token).await;
    }
);

on_all_backends!(
    sign_out_ends_the_session_in_the_database,
    |db: TestDb| async move {
        let settings = console_settings(db.settings(), &[], &["alice"]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let console = Console::of(&app);
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        assert!(console.page("/", &token).await.contains("alice (viewer)"));
        let csrf = console.csrf(&token).await;
        let response = console
            .post("/sign-out", Some(&token), &[("csrf", &csrf)])
            .await;
        assert_sent_to_sign_in(&response);
        let cleared = set_cookie(&response).expect("the cookie is cleared");
        assert!(cleared.starts_with(&format!("{COOKIE}=;")), "{cleared}");
        // The old cookie, replayed, signs nobody in.
        assert_sent_to_sign_in(&console.get("/", Some(&token)).await);
        assert!(app.rows("SELECT id FROM console_sessions").await.is_empty());
    }
);

on_all_backends!(
    sessions_end_when_idle_and_at_their_age_limit,
    |db: TestDb| async move {
        let mut settings = console_settings(db.settings(), &["alice"], &[]);
        settings.admin.session_idle_secs = 2;
        settings.admin.session_max_secs = 3;
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let console = Console::of(&app);
        // Kept busy, a session still ends at its age limit.
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            console.page("/", &token).await;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_sent_to_sign_in(&console.get("/", Some(&token)).await);
        // Left alone, a session ends after the idle timeout.
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        console.page("/", &token).await;
        tokio::time::sleep(Duration::from_millis(2200)).await;
        assert_sent_to_sign_in(&console.get("/", Some(&token)).await);
        // Expired sessions are deleted, not kept.
        assert!(app.rows("SELECT id FROM console_sessions").await.is_empty());
    }
);

on_all_backends!(
    a_person_who_leaves_loses_the_console_at_once,
    |db: TestDb| async move {
        let settings = console_settings(db.settings(), &["alice"], &[]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let console = Console::of(&app);
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        console.page("/", &token).await;
        app.exec("UPDATE employees SET active = FALSE WHERE username = 'alice'")
            .await;
        assert_sent_to_sign_in(&console.get("/", Some(&token)).await);
        // Back again, the old session stays ended.
        app.exec("UPDATE employees SET active = TRUE WHERE username = 'alice'")
            .await;
        assert_sent_to_sign_in(&console.get("/", Some(&token)).await);
    }
);

on_all_backends!(
    console_answers_carry_the_security_headers,
    |db: TestDb| async move {
        let settings = console_settings(db.settings(), &["alice"], &[]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let console = Console::of(&app);
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        for (path, cookie, status) in [
            ("/sign-in", None, StatusCode::OK),
            ("/", Some(token.as_str()), StatusCode::OK),
            ("/problems", Some(token.as_str()), StatusCode::OK),
            ("/no-such-page", None, StatusCode::NOT_FOUND),
            ("/assets/console.css", None, StatusCode::OK),
        ] {
            let response = console.get(path, cookie).await;
            assert_eq!(response.status(), status, "{path}");
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_else(|| panic!("{path}: no {name}"))
                    .to_owned()
            };
            let csp = header(CONTENT_SECURITY_POLICY.as_str());
            assert!(csp.contains("default-src 'none'"), "{csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert!(!csp.contains("unsafe-inline"), "{csp}");
            assert_eq!(header("x-content-type-options"), "nosniff");
            assert_eq!(header("referrer-policy"), "no-referrer");
            assert_eq!(header("x-frame-options"), "DENY");
        }
        // No inline script or style in the pages themselves.
        let page = console.page("/", &token).await;
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("style="), "{page}");
    }
);

on_all_backends!(
    hostile_usernames_are_shown_as_text,
    |db: TestDb| async move {
        let hostile = "<script>alert(1)</script>";
        const ESCAPED: &str = "&#60;script&#62;alert(1)&#60;/script&#62;";
        let settings = console_settings(db.settings(), &[hostile], &[]);
        let app = db.spawn_with(settings).await;
        let hash = argon2id(PASSWORD);
        app.exec(&format!(
            "INSERT INTO employees (username, email, nick_name, password_hash, active) \
             VALUES ('{hostile}', 'x@example.com', 'x', '{hash}', TRUE)"
        ))
        .await;
        let console = Console::of(&app);
        // Echoed back in a refused sign-in form...
        let refused = console
            .post(
                "/sign-in",
                None,
                &[("username", hostile), ("password", "wrong")],
            )
            .await
            .text()
            .await
            .unwrap();
        assert!(!refused.contains(hostile), "{refused}");
        assert!(refused.contains(ESCAPED), "{refused}");
        // ... and as the signed-in person.
        let token = console.sign_in(hostile, PASSWORD).await.expect("signed in");
        let page = console.page("/", &token).await;
        assert!(!page.contains(hostile), "{page}");
        assert!(page.contains(&format!("{ESCAPED} (operator)")), "{page}");
    }
);

/// The Data problems page, polled until `ready` holds (a check runs in the
/// background); panics with the last page after 30 s.
async fn problems_page_until(
    console: &Console,
    token: &str,
    ready: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = console.page("/problems", token).await;
        if ready(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "never ready:\n{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Counter `name` on the app's `/metrics` (0 before any). Each test is a
/// process of its own under nextest, so the figure is this app's.
async fn counter(app: &TestApp, name: &str) -> u64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

/// Checks of the HR data started for the Data problems page.
async fn checks_started(app: &TestApp) -> u64 {
    counter(app, "hr_bridge_console_checks_total").await
}

const RUNNING: &str =
    "A new check is running; <a href=\"/problems\">reload this page</a> to see it.";

on_all_backends!(
    the_data_problems_page_lists_what_check_reports,
    |db: TestDb| async move {
        let settings = console_settings(db.settings(), &[], &["alice"]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let console = Console::of(&app);
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        let page = problems_page_until(&console, &token, |p| p.contains("No problems")).await;
        assert!(page.contains("(checked 0 s ago)"), "{page}");
        assert!(!page.contains("http-equiv"), "{page}");
        app.exec_without_foreign_keys(
            "INSERT INTO departments (group_no, display_name, parent_group_no, active) \
             VALUES ('O''B', 'Orphans', 'NOPE', TRUE);",
        )
        .await;
        // Within the interval the page shows the kept result and checks nothing.
        app.clock.advance(Duration::from_secs(12));
        let page = console.page("/problems", &token).await;
        assert!(page.contains("No problems"), "{page}");
        assert!(page.contains("(checked 12 s ago)"), "{page}");
        assert!(!page.contains(RUNNING), "{page}");
        // Past it, a visit starts a check and the page soon lists the problem.
        app.clock.advance(hr_bridge::console::CHECK_INTERVAL);
        let page = problems_page_until(&console, &token, |p| p.contains("missing parent")).await;
        assert!(page.contains("1 problem(s)"), "{page}");
        // The hint is ready to copy, its values quoted for SQL (and escaped for HTML).
        assert!(
            page.contains(
                "UPDATE departments SET parent_group_no = NULL WHERE group_no = \
                 &#39;O&#39;&#39;B&#39;;"
            ),
            "{page}"
        );
        assert_eq!(checks_started(&app).await, 2);
    }
);

on_all_backends!(
    concurrent_visits_to_data_problems_share_one_check,
    |db: TestDb| async move {
        let settings = console_settings(db.settings(), &[], &["alice"]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let console = Console::of(&app);
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        assert_eq!(checks_started(&app).await, 0, "no check before a visit");
        let visits = (0..20).map(|_| console.get("/problems", Some(&token)));
        for response in futures_util::future::join_all(visits).await {
            assert_eq!(response.status(), StatusCode::OK);
        }
        assert_eq!(checks_started(&app).await, 1);
        problems_page_until(&console, &token, |p| p.contains("No problems")).await;
        // Further visits within the interval start nothing.
        for _ in 0..5 {
            console.page("/problems", &token).await;
        }
        assert_eq!(checks_started(&app).await, 1);
        app.clock.advance(hr_bridge::console::CHECK_INTERVAL);
        let visits = (0..10).map(|_| console.get("/problems", Some(&token)));
        futures_util::future::join_all(visits).await;
        assert_eq!(checks_started(&app).await, 2);
    }
);

/// A check blocked by a lock on `departments` (which signing in and the
/// session check never read): the page answers at once, with the kept result
/// and the "running" line, and the check ends when the lock goes.
async fn the_page_answers_while_a_check_is_blocked(db: TestDb) {
    let settings = console_settings(db.settings(), &[], &["alice"]);
    let app = db.spawn_with(settings).await;
    with_people(&app, &["alice"]).await;
    let console = Console::of(&app);
    let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
    problems_page_until(&console, &token, |p| p.contains("No problems")).await;
    let lock = crate::audit::HeldLock::hold(&app, &["departments"]).await;
    app.clock.advance(hr_bridge::console::CHECK_INTERVAL);
    for _ in 0..3 {
        let started = Instant::now();
        let page = console.page("/problems", &token).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert!(page.contains(RUNNING), "{page}");
        assert!(page.contains("No problems"), "the kept result: {page}");
    }
    assert_eq!(checks_started(&app).await, 2);
    lock.release().await;
    problems_page_until(&console, &token, |p| !p.contains(RUNNING)).await;
    assert_eq!(checks_started(&app).await, 2);
}

/// A check that fails (here: PostgreSQL's statement timeout, while a lock holds
/// `departments`) is shown as such beside the kept result, not as an error
/// page, and the next check runs as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_data_check_is_shown_and_the_next_one_runs() {
    let Some(db) = TestDb::create(hr_bridge::db::Backend::Postgres).await else {
        return;
    };
    let mut settings = console_settings(db.settings(), &[], &["alice"]);
    settings.database.statement_timeout_secs = Some(1);
    let app = db.spawn_with(settings).await;
    with_people(&app, &["alice"]).await;
    let console = Console::of(&app);
    let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
    problems_page_until(&console, &token, |p| p.contains("No problems")).await;
    let lock = crate::audit::HeldLock::hold(&app, &["departments"]).await;
    app.clock.advance(hr_bridge::console::CHECK_INTERVAL);
    let page = problems_page_until(&console, &token, |p| p.contains("failed:")).await;
    assert!(!page.contains(RUNNING), "{page}");
    assert!(
        page.contains("Below is the result of the one before it."),
        "{page}"
    );
    assert!(page.contains("No problems"), "{page}");
    lock.release().await;
    // No new check within the interval of the failed one; past it, one runs.
    assert!(console.page("/problems", &token).await.contains("failed:"));
    app.clock.advance(hr_bridge::console::CHECK_INTERVAL);
    let page = problems_page_until(&console, &token, |p| {
        !p.contains("failed:") && !p.contains(RUNNING)
    })
    .await;
    assert!(page.contains("No problems"), "{page}");
    assert_eq!(checks_started(&app).await, 3);
}

mod the_data_problems_page_answers_while_a_check_is_blocked {
    use super::*;
    use hr_bridge::db::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) = TestDb::create(Backend::Postgres).await {
            the_page_answers_while_a_check_is_blocked(db).await;
        }
    }

    // MariaDB: `LOCK TABLES departments WRITE` stops other sessions' reads.
    // (SQLite's readers are never stopped by a writer: no blocked check there.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mysql() {
        if let Some(db) = TestDb::create(Backend::MySql).await {
            the_page_answers_while_a_check_is_blocked(db).await;
        }
    }
}

on_all_backends!(the_console_has_a_port_of_its_own, |db: TestDb| async move {
    let settings = console_settings(db.settings(), &["alice"], &[]);
    let app = db.spawn_with(settings).await;
    let console = Console::of(&app);
    assert_ne!(app.admin_addr(), Some(app.addr));
    // OMFLOW's port has no console; the console's has no /sync.
    let omflow = app
        .client
        .get(format!("{}/sign-in", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(omflow.status(), StatusCode::NOT_FOUND);
    let sync = console.post("/sync", None, &[]).await;
    assert!(
        sync.status() == StatusCode::NOT_FOUND || sync.status() == StatusCode::METHOD_NOT_ALLOWED
    );
    let healthz = console.get("/healthz", None).await;
    assert_eq!(healthz.status(), StatusCode::NOT_FOUND);
});

on_all_backends!(
    the_console_is_off_unless_configured,
    |db: TestDb| async move {
        let app = db.spawn().await;
        assert_eq!(app.admin_addr(), None);
    }
);

#[test]
fn the_console_never_shares_the_omflow_port() {
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    for admin in ["127.0.0.1:8080", "0.0.0.0:8080"] {
        let err = Settings::load_from(
            None,
            env(&[
                ("HR_BRIDGE__SERVER__LISTEN", "127.0.0.1:8080"),
                ("HR_BRIDGE__ADMIN__LISTEN", admin),
            ]),
        )
        .expect_err("the same port");
        assert!(err.to_string().contains("admin.listen"), "{err}");
    }
    let settings = Settings::load_from(
        None,
        env(&[
            ("HR_BRIDGE__ADMIN__LISTEN", "127.0.0.1:8081"),
            ("HR_BRIDGE__ADMIN__OPERATORS", "alice, bob"),
        ]),
    )
    .expect("valid");
    assert_eq!(settings.admin.operators, ["alice", "bob"]);
    let err = Settings::load_from(None, env(&[("HR_BRIDGE__ADMIN__LISTEN", "console")]))
        .expect_err("not an address");
    assert!(
        err.to_string().contains("admin.listen = \"console\""),
        "{err}"
    );
}

/// The value of the hidden input `name` in a page.
pub(crate) fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect(name) + marker.len();
    page[start..].split('"').next().expect(name).to_owned()
}

on_all_backends!(
    an_operator_approves_the_pending_drops_and_a_viewer_cannot,
    |db: TestDb| async move {
        let mut settings = console_settings(db.settings(), &["alice"], &["bob"]);
        settings.sync.max_deletions = 1;
        settings.sync.max_deletion_ratio = 0.0;
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice", "bob"]).await;
        crate::guard::seed_people(&app, 20).await;
        assert_eq!(app.post_sync().await.status(), 200);
        app.exec("UPDATE employees SET active = FALSE WHERE username IN ('e010', 'e011', 'e012')")
            .await;
        assert_eq!(app.post_sync().await.status(), 409);
        crate::approvals::wait_for_pending(&app, 3).await;
        let console = Console::of(&app);

        // The overview says so; the pending page names the right people.
        let viewer = console.sign_in("bob", PASSWORD).await.expect("signed in");
        let overview = console.page("/", &viewer).await;
        assert!(overview.contains("refused_guard"), "{overview}");
        assert!(
            overview.contains("3 user(s) and 0 department(s) would be dropped"),
            "{overview}"
        );
        let pending = console.page("/pending", &viewer).await;
        for name in ["e010", "e011", "e012"] {
            assert!(pending.contains(&format!("<td>{name}</td>")), "{pending}");
        }
        assert!(!pending.contains("<td>e013</td>"), "{pending}");
        // A viewer gets no Approve, and a forged one is refused.
        assert!(
            !pending.contains("action=\"/pending/approve\""),
            "{pending}"
        );
        let operator = console.sign_in("alice", PASSWORD).await.expect("signed in");
        let form = console.page("/pending", &operator).await;
        assert!(form.contains("action=\"/pending/approve\""), "{form}");
        let (id, digest) = (hidden(&form, "id"), hidden(&form, "digest"));
        let viewer_csrf = console.csrf(&viewer).await;
        let forged = console
            .post(
                "/pending/approve",
                Some(&viewer),
                &[
                    ("csrf", &viewer_csrf),
                    ("id", &id),
                    ("digest", &digest),
                    ("confirm", "3"),
                ],
            )
            .await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        // Search narrows the list.
        let searched = console.page("/pending?q=e011", &operator).await;
        assert!(searched.contains("<td>e011</td>"), "{searched}");
        assert!(!searched.contains("<td>e010</td>"), "{searched}");

        // The typed count must be the set's.
        let csrf = console.csrf(&operator).await;
        let wrong = console
            .post(
                "/pending/approve",
                Some(&operator),
                &[
                    ("csrf", &csrf),
                    ("id", &id),
                    ("digest", &digest),
                    ("confirm", "2"),
                ],
            )
            .await;
        assert_eq!(wrong.status(), StatusCode::CONFLICT);
        assert!(wrong
            .text()
            .await
            .unwrap()
            .contains("Type the number of objects to drop (3)"));
        assert_eq!(app.post_sync().await.status(), 409, "not approved yet");
        let approved = console
            .post(
                "/pending/approve",
                Some(&operator),
                &[
                    ("csrf", &csrf),
                    ("id", &id),
                    ("digest", &digest),
                    ("confirm", "3"),
                    ("reason", "leavers of <March>"),
                ],
            )
            .await;
        assert_eq!(approved.status(), StatusCode::SEE_OTHER);
        // Back to the page, which says so once: the message waits in the
        // session, not in the URL.
        assert_eq!(location(&approved), "/pending");
        let shown = console.page("/pending", &operator).await;
        assert!(
            shown.contains(&format!("Approval {id} recorded")),
            "{shown}"
        );
        let reloaded = console.page("/pending", &operator).await;
        assert!(!reloaded.contains("recorded"), "{reloaded}");
        // OMFLOW's next /sync passes, and the history says who let it through.
        assert_eq!(app.post_sync().await.status(), 200);
        let history = console.page("/history", &viewer).await;
        assert!(history.contains("served"), "{history}");
        let person = console.page("/history?person=e011", &viewer).await;
        assert!(person.contains("alice"), "{person}");
        assert!(person.contains("leavers of &#60;March&#62;"), "{person}");
        let activity = console.page("/activity", &viewer).await;
        assert!(activity.contains("console_sign_in"), "{activity}");
    }
);

on_all_backends!(
    over_tls_the_console_shares_the_certificate_and_its_cookie_is_host_prefixed,
    |db: TestDb| async move {
        let (_dir, (cert, _), settings) = crate::tls::tls_settings(&db);
        let settings = console_settings(settings, &["alice"], &[]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let admin = app.admin_addr().expect("the console listens");
        let base = format!("https://localhost:{}", admin.port());
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
            .tls_built_in_root_certs(false)
            .resolve("localhost", admin)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = client
            .post(format!("{base}/sign-in"))
            .header("origin", &base)
            .form(&[("username", "alice"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = set_cookie(&response).expect("a session cookie");
        assert!(cookie.starts_with("__Host-hrb_session="), "{cookie}");
        for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert!(!cookie.contains("Domain"), "{cookie}");
        let token = cookie
            .trim_start_matches("__Host-hrb_session=")
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let get = |name: &'static str| {
            client
                .get(format!("{base}/"))
                .header("cookie", format!("{name}={token}"))
                .send()
        };
        assert_eq!(
            get("__Host-hrb_session").await.unwrap().status(),
            StatusCode::OK
        );
        // Over HTTPS only the prefixed cookie counts.
        assert_eq!(
            get("hrb_session").await.unwrap().status(),
            StatusCode::SEE_OTHER
        );
        // Plain HTTP is not spoken on the console's port.
        let plain = reqwest::get(format!("http://{admin}/sign-in")).await;
        assert!(plain.map_or(true, |r| !r.status().is_success()));
    }
);

/// Login attempts of a known shape, straight into the audit trail.
async fn with_attempts(app: &TestApp, rows: &[(&str, &str, &str, &str, &str)]) {
    for (at, username, outcome, reason, addr) in rows {
        app.exec(&format!(
            "INSERT INTO auth_audit (occurred_at, username, outcome, reason, client_addr) \
             VALUES ('{at}', '{username}', '{outcome}', '{reason}', '{addr}')"
        ))
        .await;
    }
}

/// The attempts' times in the order a page lists them.
fn listed_times(page: &str) -> Vec<String> {
    page.split("<tr><td>2025-")
        .skip(1)
        .map(|rest| format!("2025-{}", rest.split('<').next().unwrap_or("")))
        .collect()
}

on_all_backends!(
    the_logins_page_filters_the_audit_trail_and_downloads_it_as_csv,
    |db: TestDb| async move {
        let hostile = "<script>alert(1)</script>";
        const ESCAPED: &str = "&#60;script&#62;alert(1)&#60;/script&#62;";
        let settings = console_settings(db.settings(), &[], &["bob"]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["bob"]).await;
        with_attempts(
            &app,
            &[
                (
                    "2025-01-01T10:00:00.000Z",
                    "carol",
                    "failure",
                    "bad_password",
                    "192.0.2.1",
                ),
                (
                    "2025-01-02T10:00:00.000Z",
                    "carol",
                    "success",
                    "success",
                    "192.0.2.1",
                ),
                (
                    "2025-01-03T10:00:00.000Z",
                    "carol",
                    "failure",
                    "locked",
                    "192.0.2.2",
                ),
                (
                    "2025-01-02T12:00:00.000Z",
                    hostile,
                    "failure",
                    "unknown_user",
                    "192.0.2.3",
                ),
            ],
        )
        .await;
        let console = Console::of(&app);
        let token = console.sign_in("bob", PASSWORD).await.expect("signed in");
        // Linked from the menu and from the overview's failed logins.
        let overview = console.page("/", &token).await;
        assert!(overview.contains("href=\"/logins\""), "{overview}");
        assert!(
            overview.contains("href=\"/logins?outcome=failure\""),
            "{overview}"
        );
        // Everything, newest first; the hostile name as text.
        let all = console.page("/logins", &token).await;
        assert_eq!(
            listed_times(&all),
            [
                "2025-01-03T10:00:00.000Z",
                "2025-01-02T12:00:00.000Z",
                "2025-01-02T10:00:00.000Z",
                "2025-01-01T10:00:00.000Z",
            ]
        );
        assert!(!all.contains(hostile), "{all}");
        assert!(all.contains(&format!("<td>{ESCAPED}</td>")), "{all}");
        for label in [
            "for=\"person\"",
            "for=\"outcome\"",
            "for=\"reason\"",
            "for=\"address\"",
            "for=\"since\"",
            "for=\"until\"",
        ] {
            assert!(all.contains(label), "{label}");
        }
        // Each filter, and several at once.
        for (query, expected) in [
            (
                "person=carol&outcome=failure",
                &["2025-01-03T10:00:00.000Z", "2025-01-01T10:00:00.000Z"][..],
            ),
            ("reason=unknown_user", &["2025-01-02T12:00:00.000Z"][..]),
            ("address=192.0.2.2", &["2025-01-03T10:00:00.000Z"][..]),
            (
                "since=2025-01-02T00%3A00&until=2025-01-03",
                &["2025-01-02T12:00:00.000Z", "2025-01-02T10:00:00.000Z"][..],
            ),
            (
                "since=2025-01-02T10%3A00%3A01Z",
                &["2025-01-03T10:00:00.000Z", "2025-01-02T12:00:00.000Z"][..],
            ),
        ] {
            let page = console.page(&format!("/logins?{query}"), &token).await;
            assert_eq!(listed_times(&page), expected, "{query}");
        }
        let filtered = console
            .page("/logins?person=carol&outcome=failure", &token)
            .await;
        // The form shows the filters; the download keeps them.
        assert!(filtered.contains("value=\"carol\""), "{filtered}");
        assert!(
            filtered.contains("<option value=\"failure\" selected>"),
            "{filtered}"
        );
        assert!(
            filtered.contains("href=\"/logins.csv?person=carol&#38;outcome=failure\""),
            "{filtered}"
        );
        // A date alone fills the datetime-local input as midnight.
        let dated = console.page("/logins?until=2025-01-03", &token).await;
        assert!(
            dated.contains("name=\"until\" type=\"datetime-local\" value=\"2025-01-03T00:00\""),
            "{dated}"
        );
        let bad = console.get("/logins?since=yesterday", Some(&token)).await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

        // The CSV download: an attachment with the same rows.
        let csv = console
            .get("/logins.csv?person=carol&outcome=failure", Some(&token))
            .await;
        assert_eq!(csv.status(), StatusCode::OK);
        let disposition = csv
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(disposition.starts_with("attachment"), "{disposition}");
        let body = csv.text().await.unwrap();
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        assert_eq!(
            reader.headers().unwrap(),
            vec![
                "occurred_at",
                "username",
                "outcome",
                "reason",
                "client_addr"
            ]
        );
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        assert_eq!(
            rows,
            [
                [
                    "2025-01-03T10:00:00.000Z",
                    "carol",
                    "failure",
                    "locked",
                    "192.0.2.2"
                ],
                [
                    "2025-01-01T10:00:00.000Z",
                    "carol",
                    "failure",
                    "bad_password",
                    "192.0.2.1"
                ],
            ]
        );
        // The hostile name goes out as data, as it is.
        let csv = console
            .get("/logins.csv?reason=unknown_user", Some(&token))
            .await
            .text()
            .await
            .unwrap();
        assert!(csv.contains(hostile), "{csv}");
        // A download needs a session like any page.
        assert_sent_to_sign_in(&console.get("/logins.csv", None).await);

        // Pages of 100, newest first, the filters kept in the links.
        let many: Vec<String> = (0..105)
            .map(|i| {
                format!(
                    "('2025-02-01T00:{:02}:{:02}.000Z', 'dave', 'failure', 'bad_password', NULL)",
                    i / 60,
                    i % 60
                )
            })
            .collect();
        app.exec(&format!(
            "INSERT INTO auth_audit (occurred_at, username, outcome, reason, client_addr) VALUES {}",
            many.join(", ")
        ))
        .await;
        let first = console.page("/logins?person=dave", &token).await;
        assert_eq!(listed_times(&first).len(), 100);
        assert_eq!(listed_times(&first)[0], "2025-02-01T00:01:44.000Z");
        assert!(
            first.contains("href=\"/logins?person=dave&#38;page=1\""),
            "{first}"
        );
        let second = console.page("/logins?person=dave&page=1", &token).await;
        assert_eq!(
            listed_times(&second),
            [
                "2025-02-01T00:00:04.000Z",
                "2025-02-01T00:00:03.000Z",
                "2025-02-01T00:00:02.000Z",
                "2025-02-01T00:00:01.000Z",
                "2025-02-01T00:00:00.000Z",
            ]
        );
        assert!(
            second.contains("href=\"/logins?person=dave&#38;page=0\""),
            "{second}"
        );
        assert!(!second.contains("page=2"), "{second}");
    }
);

on_all_backends!(
    an_operator_unlocks_a_locked_person_and_a_viewer_cannot,
    |db: TestDb| async move {
        let mut settings = console_settings(db.settings(), &["alice"], &["bob"]);
        settings.auth.max_failures = 2;
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice", "bob", "carol"]).await;
        let status = |password: &'static str| {
            let app = &app;
            async move {
                let answer =
                    crate::helpers::json_body(app.post_authenticate("carol", password).await).await;
                answer["status"].as_str().unwrap_or("").to_owned()
            }
        };
        for _ in 0..2 {
            assert_eq!(status("wrong").await, "fail");
        }
        assert_eq!(status(PASSWORD).await, "fail", "locked");
        let console = Console::of(&app);

        // A viewer sees the lockout, no Unlock, and a forged one is refused.
        let viewer = console.sign_in("bob", PASSWORD).await.expect("signed in");
        let overview = console.page("/", &viewer).await;
        assert!(
            overview.contains("<a href=\"/logins#locked-title\" class=\"bad\">1</a>"),
            "{overview}"
        );
        let page = console.page("/logins", &viewer).await;
        assert!(page.contains("<td>carol</td>\n    <td>3</td>"), "{page}");
        assert!(!page.contains("action=\"/logins/unlock\""), "{page}");
        let viewer_csrf = console.csrf(&viewer).await;
        let forged = console
            .post(
                "/logins/unlock",
                Some(&viewer),
                &[("csrf", &viewer_csrf), ("username", "carol")],
            )
            .await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);

        // An operator's POST without the token, with a wrong one, or from
        // another origin: 403, and carol stays locked.
        let operator = console.sign_in("alice", PASSWORD).await.expect("signed in");
        let page = console.page("/logins", &operator).await;
        assert!(page.contains("action=\"/logins/unlock\""), "{page}");
        assert_eq!(hidden(&page, "username"), "carol");
        let csrf = console.csrf(&operator).await;
        for form in [
            vec![("username", "carol")],
            vec![("csrf", "forged"), ("username", "carol")],
        ] {
            let response = console.post("/logins/unlock", Some(&operator), &form).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
        let response = console
            .post_from(
                "/logins/unlock",
                Some(&operator),
                &[("csrf", &csrf), ("username", "carol")],
                Some("http://evil.example"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(status(PASSWORD).await, "fail", "still locked");

        // Unlock: back to the page, which says so; carol logs in again.
        let response = console
            .post(
                "/logins/unlock",
                Some(&operator),
                &[("csrf", &csrf), ("username", "carol")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/logins");
        let page = console.page(&location(&response), &operator).await;
        assert!(page.contains("Unlocked carol"), "{page}");
        assert!(page.contains("No account is locked."), "{page}");
        // Once: a reload says nothing more.
        let page = console.page("/logins", &operator).await;
        assert!(!page.contains("Unlocked carol"), "{page}");
        assert_eq!(status(PASSWORD).await, "success");
        // Recorded as alice's, through the console.
        let activity = app
            .rows("SELECT actor, channel, action, subject FROM activity WHERE action = 'unlock'")
            .await;
        assert_eq!(
            activity,
            [[
                Some("alice".to_owned()),
                Some("console".to_owned()),
                Some("unlock".to_owned()),
                Some("carol".to_owned())
            ]]
        );
        // Unlocking someone not locked changes nothing and says so.
        let again = console
            .post(
                "/logins/unlock",
                Some(&operator),
                &[("csrf", &csrf), ("username", "carol")],
            )
            .await;
        assert_eq!(location(&again), "/logins");
        let page = console.page("/logins", &operator).await;
        assert!(page.contains("carol was not locked any more"), "{page}");
        assert_eq!(
            app.rows("SELECT subject FROM activity WHERE action = 'unlock'")
                .await
                .len(),
            1
        );
    }
);

on_all_backends!(
    a_call_with_many_names_is_shown_a_page_at_a_time,
    |db: TestDb| async move {
        let settings = console_settings(db.settings(), &[], &["bob"]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["bob"]).await;
        // The first sync adds everyone: 251 users and 2 departments named.
        crate::guard::seed_people(&app, 250).await;
        assert_eq!(app.post_sync().await.status(), 200);
        let calls = crate::history::wait_for_calls(&app, 1).await;
        let id = calls[0].id;
        let console = Console::of(&app);
        let viewer = console.sign_in("bob", PASSWORD).await.expect("signed in");
        let listed = |page: &str| page.matches("<a href=\"/history?person=").count();

        let first = console.page(&format!("/history/{id}"), &viewer).await;
        assert_eq!(listed(&first), 200, "{first}");
        assert!(first.contains("1–200 of 253"), "{first}");
        assert!(
            first.contains(&format!("href=\"/history/{id}?page=1\"")),
            "{first}"
        );
        assert!(!first.contains("Previous names"), "{first}");
        let second = console
            .page(&format!("/history/{id}?page=1"), &viewer)
            .await;
        assert_eq!(listed(&second), 53, "{second}");
        assert!(second.contains("201–253 of 253"), "{second}");
        assert!(
            second.contains(&format!("href=\"/history/{id}?page=0\"")),
            "{second}"
        );
        assert!(!second.contains("More names"), "{second}");
        // Past the end: the call, no names, a way back.
        let past = console
            .page(&format!("/history/{id}?page=9"), &viewer)
            .await;
        assert_eq!(listed(&past), 0, "{past}");
        // The command line still prints every name.
        let cli = crate::approvals::cli(&app, &["history", "show", &id.to_string()]);
        let printed = String::from_utf8_lossy(&cli.stdout);
        for name in ["e000", "e199", "e249", "bob"] {
            assert!(printed.contains(name), "{name}: {printed}");
        }
    }
);

/// The path of the link labelled `label` on `page`, unescaped, if there is one.
fn link(page: &str, label: &str) -> Option<String> {
    let end = page.find(&format!("\">{label}</a>"))?;
    let start = page[..end].rfind("href=\"")? + "href=\"".len();
    Some(page[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

on_all_backends!(
    the_pending_drops_are_paged_by_key_both_ways,
    |db: TestDb| async move {
        let mut settings = console_settings(db.settings(), &[], &["bob"]);
        settings.sync.max_deletions = 1;
        settings.sync.max_deletion_ratio = 0.0;
        let app = db.spawn_with(settings).await;
        with_people(&app, &["bob"]).await;
        crate::guard::seed_people(&app, 120).await;
        assert_eq!(app.post_sync().await.status(), 200);
        app.exec(
            "UPDATE employees SET active = FALSE WHERE username >= 'e005' AND username < 'e120'",
        )
        .await;
        assert_eq!(app.post_sync().await.status(), 409);
        // The pending set is written after the answer.
        crate::approvals::wait_for_pending(&app, 115).await;
        let console = Console::of(&app);
        let viewer = console.sign_in("bob", PASSWORD).await.expect("signed in");
        let names = |page: &str| -> Vec<String> {
            page.split("<td>user</td><td>")
                .skip(1)
                .filter_map(|rest| rest.split('<').next().map(str::to_owned))
                .collect()
        };
        let range = |from: usize, to: usize| -> Vec<String> {
            (from..to).map(|i| format!("e{i:03}")).collect()
        };

        // Forwards: 50, 50, then the last 15.
        let first = console.page("/pending", &viewer).await;
        assert_eq!(names(&first), range(5, 55));
        assert_eq!(link(&first, "Previous page"), None);
        assert_eq!(link(&first, "First page"), None);
        let next = link(&first, "Next page").expect("a next page");
        assert_eq!(next, "/pending?q=&after=u%3Ae054");
        let second = console.page(&next, &viewer).await;
        assert_eq!(names(&second), range(55, 105));
        let third = console
            .page(&link(&second, "Next page").expect("a third page"), &viewer)
            .await;
        assert_eq!(names(&third), range(105, 120));
        assert_eq!(link(&third, "Next page"), None);
        assert_eq!(link(&third, "Last page"), None);

        // Backwards from the second page: the first page again, which says so.
        let back = console
            .page(
                &link(&second, "Previous page").expect("a previous page"),
                &viewer,
            )
            .await;
        assert_eq!(names(&back), range(5, 55));
        assert_eq!(link(&back, "Previous page"), None);
        assert!(link(&back, "Next page").is_some());

        // The last page is the last 50, found without walking the others.
        let last = console
            .page(&link(&first, "Last page").expect("a last page"), &viewer)
            .await;
        assert_eq!(names(&last), range(70, 120));
        assert_eq!(link(&last, "Next page"), None);
        let before_last = console
            .page(
                &link(&last, "Previous page").expect("before the last"),
                &viewer,
            )
            .await;
        assert_eq!(names(&before_last), range(20, 70));

        // Search pages too; a cursor that names nothing known is the first page.
        let searched = console.page("/pending?q=e1", &viewer).await;
        assert_eq!(names(&searched), range(100, 120));
        assert_eq!(link(&searched, "Next page"), None);
        let odd = console.page("/pending?after=x%3A%00%FF", &viewer).await;
        assert_eq!(names(&odd), range(5, 55));
        // A NUL in the search matches nothing (SQLite's LIKE would stop at it).
        for q in ["%00", "e1%00zzz"] {
            let page = console.page(&format!("/pending?q={q}"), &viewer).await;
            assert_eq!(names(&page), Vec::<String>::new(), "{q}");
            assert!(!page.contains('\0'), "{q}");
        }
    }
);

/// Console requests served at the pace of a `/sync` in progress.
async fn paced_requests(app: &TestApp) -> u64 {
    counter(app, "hr_bridge_console_paced_requests_total").await
}

on_all_backends!(
    the_console_yields_while_a_sync_is_answered,
    |db: TestDb| async move {
        let mut settings = console_settings(db.settings(), &[], &["alice"]);
        settings.auth.failure_floor_ms = 1_500;
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        // About 9 MB of JSON: more than the sockets hold, so the answer stays
        // in progress while its reader waits.
        crate::guard::seed_people(&app, 60_000).await;
        let console = Console::of(&app);
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        console.page("/history", &token).await;
        assert_eq!(paced_requests(&app).await, 0, "no sync, no pacing");

        // OMFLOW's answer has begun and is not read: the console is paced, and
        // still answers.
        let held = app.post_sync().await;
        assert_eq!(held.status(), 200);
        for _ in 0..3 {
            assert!(console.page("/history", &token).await.contains("<table"));
        }
        assert!(paced_requests(&app).await >= 3);
        // Strangers' failed sign-ins wait out their floor without taking turns:
        // a signed-in page does not queue behind them.
        let strangers = (0..4).map(|i| {
            let username = format!("nobody{i}");
            let console = &console;
            async move { console.sign_in(&username, "wrong").await }
        });
        let page = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let started = Instant::now();
            console.page("/history", &token).await;
            started.elapsed()
        };
        let (refused, took) = tokio::join!(futures_util::future::join_all(strangers), page);
        assert!(refused.iter().all(Option::is_none));
        assert!(took < Duration::from_millis(900), "{took:?}");

        // Once the answer is read to its end, the console is free again.
        let body = held.bytes().await.expect("the whole answer");
        assert!(body.len() > 8_000_000, "{}", body.len());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let before = paced_requests(&app).await;
            console.page("/history", &token).await;
            if paced_requests(&app).await == before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still paced after the answer ended"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
);
