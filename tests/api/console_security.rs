//! The console's answers to an outside review: it answers only to its own host
//! names (`admin.public_origin`, or its listener's address), status messages
//! after an action cannot be forged by a link, the approval's typed count is
//! exact, axum's own refusals are the console's HTML page, and the CSRF token
//! is not stored in the state database.

use hr_bridge::app::{Application, Options};
use hr_bridge::config::{PublicOrigin, Settings};
use reqwest::header::{ALLOW, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, ORIGIN};
use reqwest::{Response, StatusCode};

use crate::console::{
    console_settings, hidden, location, set_cookie, with_people, Console, COOKIE, PASSWORD,
};
use crate::helpers::TestApp;
use crate::on_all_backends;

/// The console's HTML error page with its security headers.
async fn assert_console_error_page(response: Response, status: StatusCode, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_owned()
    };
    assert!(
        header(CONTENT_TYPE.as_str()).starts_with("text/html"),
        "{what}"
    );
    assert!(
        header(CONTENT_SECURITY_POLICY.as_str()).contains("default-src 'none'"),
        "{what}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    let body = response.text().await.expect("body");
    assert!(body.starts_with("<!doctype html>"), "{what}: {body}");
    assert!(body.contains("Back to the console"), "{what}: {body}");
}

/// A GET naming `host` in `Host`.
async fn get_as(console: &Console, host: &str, path: &str, cookie: Option<&str>) -> Response {
    let mut request = console
        .client
        .get(format!("{}{path}", console.base))
        .header(HOST, host);
    if let Some(token) = cookie {
        request = request.header("cookie", format!("{COOKIE}={token}"));
    }
    request.send().await.expect("request sent")
}

/// A sign-in POST naming `host` in `Host` and `origin` in `Origin`.
async fn sign_in_as(console: &Console, host: &str, origin: &str) -> Response {
    console
        .client
        .post(format!("{}/sign-in", console.base))
        .header(HOST, host)
        .header(ORIGIN, origin)
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .expect("request sent")
}

/// How many console sign-ins the audit trail holds.
async fn console_sign_ins(app: &TestApp) -> usize {
    app.rows("SELECT username FROM auth_audit WHERE channel = 'console'")
        .await
        .len()
}

on_all_backends!(
    a_request_naming_another_host_is_refused_on_every_path,
    |db: TestDb| async move {
        let settings = console_settings(db.settings(), &["alice"], &[]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let console = Console::of(&app);
        let port = app.admin_addr().expect("the console listens").port();
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        let evil = format!("evil.example:{port}");
        // DNS rebinding: the attacker's page, at the attacker's name, reaching
        // the console. Origin and Host agree, and name the attacker.
        for (path, cookie) in [
            ("/sign-in", None),
            ("/", Some(token.as_str())),
            ("/logins", Some(token.as_str())),
            ("/assets/console.css", None),
            ("/no-such-page", None),
        ] {
            let response = get_as(&console, &evil, path, cookie).await;
            assert_console_error_page(response, StatusCode::MISDIRECTED_REQUEST, path).await;
        }
        let before = console_sign_ins(&app).await;
        let response = sign_in_as(&console, &evil, &format!("http://{evil}")).await;
        assert!(set_cookie(&response).is_none());
        assert_console_error_page(response, StatusCode::MISDIRECTED_REQUEST, "sign-in").await;
        assert_eq!(console_sign_ins(&app).await, before, "not even tried");
        // The same port under another loopback name is not ours either.
        let response = get_as(&console, &format!("127.0.0.2:{port}"), "/sign-in", None).await;
        assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);

        // A loopback listener answers to its address and to localhost.
        let localhost = format!("localhost:{port}");
        let response = get_as(&console, &localhost, "/sign-in", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let response = sign_in_as(&console, &localhost, &format!("http://{localhost}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        // ...but a form's Origin must name the host asked for.
        let response = sign_in_as(
            &console,
            &format!("127.0.0.1:{port}"),
            "http://evil.example",
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let response = sign_in_as(
            &console,
            &format!("127.0.0.1:{port}"),
            &format!("http://{localhost}"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
);

on_all_backends!(
    with_a_public_origin_the_console_answers_to_that_name_alone,
    |db: TestDb| async move {
        const PUBLIC: &str = "https://hr-console.example.com";
        let mut settings = console_settings(db.settings(), &["alice"], &[]);
        // A wildcard listener without its public name is refused at start-up.
        settings.admin.listen = Some("0.0.0.0:0".parse().unwrap());
        let refused = Application::build(settings.clone(), Options::default())
            .await
            .err()
            .expect("a wildcard console without admin.public_origin is refused");
        assert!(
            format!("{refused:#}").contains("admin.public_origin"),
            "{refused:#}"
        );
        settings.admin.public_origin = Some(PublicOrigin::parse(PUBLIC).unwrap());
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let port = app.admin_addr().expect("the console listens").port();
        let mut console = Console::of(&app);
        console.base = format!("http://127.0.0.1:{port}");
        // The listener's own address is not the console's name any more.
        for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
            let response = get_as(&console, &host, "/sign-in", None).await;
            assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST, "{host}");
            let response = sign_in_as(&console, &host, &format!("http://{host}")).await;
            assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST, "{host}");
        }
        // Its public name is (as a TLS-terminating proxy passes it on).
        for host in ["hr-console.example.com", "HR-Console.example.com:443"] {
            let response = get_as(&console, host, "/sign-in", None).await;
            assert_eq!(response.status(), StatusCode::OK, "{host}");
        }
        // A form's Origin must be exactly the public origin.
        let host = "hr-console.example.com";
        for origin in [
            "http://hr-console.example.com",
            "https://hr-console.example.com:8443",
            "https://evil.example",
        ] {
            let response = sign_in_as(&console, host, origin).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin}");
        }
        let response = sign_in_as(&console, host, PUBLIC).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
);

#[test]
fn a_wildcard_console_needs_a_public_origin_which_is_checked() {
    let load = |pairs: &[(&str, &str)]| {
        Settings::load_from(
            None,
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    };
    for listen in ["0.0.0.0:8443", "[::]:8443"] {
        let err = load(&[("HR_BRIDGE__ADMIN__LISTEN", listen)]).expect_err(listen);
        let err = err.to_string();
        assert!(err.contains("admin.public_origin"), "{err}");
        assert!(err.contains("admin.listen"), "{err}");
    }
    let settings = load(&[
        ("HR_BRIDGE__ADMIN__LISTEN", "0.0.0.0:8443"),
        (
            "HR_BRIDGE__ADMIN__PUBLIC_ORIGIN",
            "https://HR-Console.example.com/",
        ),
    ])
    .expect("a wildcard with its public origin");
    let public = settings.admin.public_origin.expect("set");
    assert_eq!(public.origin(), "https://hr-console.example.com");
    for bad in [
        "hr-console.example.com",
        "ftp://hr-console.example.com",
        "https://hr-console.example.com/console",
        "https://hr-console.example.com/?a=1",
        "https://user:pw@hr-console.example.com",
        "https://",
    ] {
        let err = load(&[
            ("HR_BRIDGE__ADMIN__LISTEN", "127.0.0.1:8081"),
            ("HR_BRIDGE__ADMIN__PUBLIC_ORIGIN", bad),
        ])
        .expect_err(bad)
        .to_string();
        assert!(err.contains("admin.public_origin"), "{bad}: {err}");
    }
    let port = PublicOrigin::parse("http://10.0.0.5:8081").unwrap();
    assert_eq!(port.origin(), "http://10.0.0.5:8081");
    assert_eq!(port.hosts(), ["10.0.0.5:8081"]);
}

on_all_backends!(
    a_crafted_link_shows_no_status_message,
    |db: TestDb| async move {
        let settings = console_settings(db.settings(), &["alice"], &[]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let console = Console::of(&app);
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        let logins = console
            .page("/logins?unlocked=mallory&not_locked=mallory", &token)
            .await;
        assert!(!logins.contains("mallory"), "{logins}");
        assert!(!logins.contains("Unlocked"), "{logins}");
        assert!(!logins.contains("was not locked"), "{logins}");
        let pending = console.page("/pending?approved=7", &token).await;
        assert!(!pending.contains("recorded"), "{pending}");
        // An unlock's message is for the Logins page: another page neither
        // shows it nor uses it up.
        let csrf = console.csrf(&token).await;
        let response = console
            .post(
                "/logins/unlock",
                Some(&token),
                &[("csrf", &csrf), ("username", "nobody-locked")],
            )
            .await;
        assert_eq!(location(&response), "/logins");
        let pending = console.page("/pending", &token).await;
        assert!(!pending.contains("nobody-locked"), "{pending}");
        let logins = console.page("/logins", &token).await;
        assert!(
            logins.contains("nobody-locked was not locked any more"),
            "{logins}"
        );
        let logins = console.page("/logins", &token).await;
        assert!(!logins.contains("nobody-locked"), "{logins}");
    }
);

on_all_backends!(
    the_typed_count_must_be_the_exact_decimal_number,
    |db: TestDb| async move {
        let mut settings = console_settings(db.settings(), &["alice"], &[]);
        settings.sync.max_deletions = 1;
        settings.sync.max_deletion_ratio = 0.0;
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        crate::guard::seed_people(&app, 20).await;
        assert_eq!(app.post_sync().await.status(), 200);
        app.exec("UPDATE employees SET active = FALSE WHERE username IN ('e010', 'e011')")
            .await;
        assert_eq!(app.post_sync().await.status(), 409);
        let console = Console::of(&app);
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        let form = console.page("/pending", &token).await;
        let (id, digest) = (hidden(&form, "id"), hidden(&form, "digest"));
        let csrf = console.csrf(&token).await;
        let approve = |confirm: &'static str| {
            let (console, token, csrf, id, digest) = (&console, &token, &csrf, &id, &digest);
            async move {
                console
                    .post(
                        "/pending/approve",
                        Some(token),
                        &[
                            ("csrf", csrf.as_str()),
                            ("id", id.as_str()),
                            ("digest", digest.as_str()),
                            ("confirm", confirm),
                        ],
                    )
                    .await
                    .status()
            }
        };
        for confirm in ["02", "+2", "2.0", "0x2", "２"] {
            assert_eq!(approve(confirm).await, StatusCode::CONFLICT, "{confirm:?}");
        }
        assert_eq!(app.post_sync().await.status(), 409, "not approved");
        assert_eq!(approve("2").await, StatusCode::SEE_OTHER);
        assert_eq!(app.post_sync().await.status(), 200);
    }
);

on_all_backends!(
    axum_refusals_get_the_console_error_page,
    |db: TestDb| async move {
        let settings = console_settings(db.settings(), &["alice"], &[]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let console = Console::of(&app);
        let token = console.sign_in("alice", PASSWORD).await.expect("signed in");
        let csrf = console.csrf(&token).await;
        // A method the route does not take: 405, still saying which it does.
        let response = console.get("/logins/unlock", Some(&token)).await;
        let allow = response
            .headers()
            .get(ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(allow.contains("POST"), "{allow}");
        assert_console_error_page(response, StatusCode::METHOD_NOT_ALLOWED, "405").await;
        // A query it cannot read.
        let response = console.get("/logins?page=many", Some(&token)).await;
        assert_console_error_page(response, StatusCode::BAD_REQUEST, "query").await;
        // A form missing a field.
        let response = console
            .post("/pending/approve", Some(&token), &[("csrf", &csrf)])
            .await;
        assert_console_error_page(response, StatusCode::UNPROCESSABLE_ENTITY, "form").await;
        // Not a form at all.
        let response = console
            .client
            .post(format!("{}/sign-in", console.base))
            .header(ORIGIN, &console.base)
            .header(CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_console_error_page(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "415").await;
        // A body over the console's limit.
        let big = "x".repeat(hr_bridge::config::limits::CONSOLE_BODY_LIMIT_BYTES + 1);
        let response = console
            .post(
                "/sign-in",
                None,
                &[("username", big.as_str()), ("password", "x")],
            )
            .await;
        assert_console_error_page(response, StatusCode::PAYLOAD_TOO_LARGE, "413").await;
    }
);

on_all_backends!(
    the_csrf_token_is_not_stored_in_the_state_database,
    |db: TestDb| async move {
        let settings = console_settings(db.settings(), &["alice"], &[]);
        let app = db.spawn_with(settings).await;
        with_people(&app, &["alice"]).await;
        let console = Console::of(&app);
        let first = console.sign_in("alice", PASSWORD).await.expect("signed in");
        let second = console.sign_in("alice", PASSWORD).await.expect("signed in");
        let csrf = console.csrf(&first).await;
        assert_eq!(csrf.len(), 43, "256 bits, base64url");
        assert_ne!(csrf, console.csrf(&second).await, "one per session");
        assert_eq!(csrf, console.csrf(&first).await, "stable for the session");
        // The table holds the token's hash, the person, times and the flash:
        // nothing a form could carry.
        let columns_sql = match app.backend() {
            hr_bridge::db::Backend::Sqlite => {
                "SELECT name FROM pragma_table_info('console_sessions') ORDER BY name".to_owned()
            }
            hr_bridge::db::Backend::Postgres => "SELECT CAST(column_name AS TEXT) FROM \
                 information_schema.columns WHERE table_name = 'console_sessions' \
                 ORDER BY column_name"
                .to_owned(),
            hr_bridge::db::Backend::MySql => "SELECT CAST(column_name AS CHAR) FROM \
                 information_schema.columns WHERE table_name = 'console_sessions' \
                 AND table_schema = DATABASE() ORDER BY column_name"
                .to_owned(),
        };
        let columns: Vec<String> = app
            .rows(&columns_sql)
            .await
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        assert_eq!(
            columns,
            ["created_at", "flash", "id", "last_seen", "username"]
        );
        let stored = app.rows("SELECT id FROM console_sessions").await;
        assert_eq!(stored.len(), 2);
        assert!(stored
            .iter()
            .all(|r| r[0].as_deref() != Some(csrf.as_str())));
        // And the token works.
        let response = console
            .post("/sign-out", Some(&first), &[("csrf", &csrf)])
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
);
