//! Logins through a mapped credentials query: only the exact name logs in (the
//! query must return it, and it is compared before any limit), only a person
//! `/sync` serves logs in, and a query that fails on the name given is a plain
//! failed login.

use hr_bridge::db::Backend;

use crate::helpers::{mapped_settings, TestApp, TestDb};
use crate::on_all_backends;
use crate::sources::{foreign_hr, login_succeeds, mapping, out, run_mapped, PERSON_COLUMNS};

/// The audit reason of the last attempt of `username`.
async fn last_reason(app: &TestApp, username: &str) -> String {
    app.audit()
        .await
        .into_iter()
        .rev()
        .find(|(u, ..)| u == username)
        .map(|(_, _, reason, _)| reason)
        .unwrap_or_else(|| panic!("no audit row for {username:?}"))
}

on_all_backends!(
    a_credentials_query_without_the_username_column_is_refused,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        let sql = "SELECT p.pw AS password_hash, (p.status = 'A') AS active \
                   FROM person p WHERE p.login = :username";
        for command in [&["check"][..], &["serve"][..]] {
            let output = run_mapped(
                command,
                backend,
                &hr.url,
                &state.url,
                &[("credentials", sql)],
                "",
            );
            let text = out(&output);
            assert!(!output.status.success(), "{command:?}: {text}");
            let line = text
                .lines()
                .find(|l| l.contains("source.credentials"))
                .unwrap_or_else(|| panic!("{command:?}: no line names the key: {text}"));
            assert!(line.contains("\"username\""), "{line}");
        }
    }
);

/// A credentials query that finds a person whatever the case and surrounding
/// blanks of the name, as a collation may (MySQL's `_ci`, SQLite's NOCASE).
const FOLDING_CREDENTIALS: &str = "SELECT p.pw AS password_hash, p.login AS username, \
    (p.status = 'A') AS active FROM person p WHERE lower(trim(p.login)) = lower(trim(:username))";

on_all_backends!(
    case_and_space_variants_never_log_in_nor_escape_the_lockout,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        let mut settings = mapped_settings(&mapping(backend), &hr.url, &state);
        settings.source.credentials = Some(FOLDING_CREDENTIALS.into());
        settings.source.update_password = None;
        settings.auth.max_failures = 3;
        let app = state.spawn_with(settings).await;
        let variants = ["BCRUZ102", "Bcruz102", "bcruz102 ", " bcruz102"];
        for variant in variants {
            assert!(
                !login_succeeds(&app, variant, "pw-bcruz102").await,
                "{variant:?} logged in"
            );
            assert_eq!(
                last_reason(&app, variant).await,
                "unknown_user",
                "{variant:?}"
            );
        }
        assert!(login_succeeds(&app, "bcruz102", "pw-bcruz102").await);
        // Three wrong guesses lock the real name; no variant gets round it.
        for _ in 0..3 {
            assert!(!login_succeeds(&app, "bcruz102", "wrong").await);
        }
        for variant in variants {
            assert!(!login_succeeds(&app, variant, "pw-bcruz102").await);
        }
        assert!(!login_succeeds(&app, "bcruz102", "pw-bcruz102").await);
        assert_eq!(last_reason(&app, "bcruz102").await, "locked");
        // The audit trail keeps each name as typed.
        let audited: Vec<String> = app.audit().await.into_iter().map(|r| r.0).collect();
        for variant in variants {
            assert!(audited.iter().any(|u| u == variant), "{variant:?}");
        }
        app.stop().await;
    }
);

on_all_backends!(
    the_exact_name_is_compared_before_any_limit,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        // Case variants of one name, as a table without a unique index (or with a
        // case-sensitive one) may hold: pwA is bcruz102's password, pwB cdahl103's.
        // Only `carol` is a served person.
        let mut script = vec![
            "CREATE TABLE acct (id INTEGER PRIMARY KEY, login VARCHAR(64) NOT NULL, pw VARCHAR(255))"
                .to_owned(),
            "INSERT INTO person (person_id, login, mail, given_name, family_name, status) \
             VALUES (900, 'carol', 'carol@variants.example', 'Carol', 'V', 'A')"
                .to_owned(),
        ];
        for (i, (login, from)) in [
            ("DUP2", "bcruz102"),
            ("Dup2", "bcruz102"),
            ("dup2", "bcruz102"),
            ("dup2", "cdahl103"),
            ("CAROL", "bcruz102"),
            ("Carol", "bcruz102"),
            ("cAROL", "bcruz102"),
            ("carol", "cdahl103"),
        ]
        .iter()
        .enumerate()
        {
            script.push(format!(
                "INSERT INTO acct (id, login, pw) SELECT {}, '{login}', pw FROM person \
                 WHERE login = '{from}'",
                i + 1
            ));
        }
        hr.load(&format!("{};", script.join(";\n"))).await;
        let mut settings = mapped_settings(&mapping(backend), &hr.url, &state);
        settings.source.credentials = Some(
            "SELECT a.pw AS password_hash, a.login AS username FROM acct a \
             WHERE lower(a.login) = lower(:username)"
                .into(),
        );
        settings.source.update_password = None;
        let app = state.spawn_with(settings).await;
        assert!(!login_succeeds(&app, "dup2", "pw-bcruz102").await);
        assert_eq!(last_reason(&app, "dup2").await, "ambiguous_user");
        assert!(login_succeeds(&app, "carol", "pw-cdahl103").await);
        assert!(!login_succeeds(&app, "Carol", "pw-bcruz102").await);
        app.stop().await;
    }
);

on_all_backends!(
    a_person_sync_does_not_serve_never_logs_in,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        // `active` in the employees query only (the README called it optional in
        // the credentials query), and one person left out by a WHERE.
        let employees = format!(
            "SELECT {PERSON_COLUMNS}, (p.status = 'A') AS active FROM person p \
             WHERE p.login <> 'bcruz102'"
        );
        let credentials =
            "SELECT p.pw AS password_hash, p.login AS username FROM person p WHERE p.login = :username";
        let output = run_mapped(
            &["check"],
            backend,
            &hr.url,
            &state.url,
            &[("employees", &employees), ("credentials", credentials)],
            "",
        );
        let text = out(&output);
        assert!(output.status.success(), "{text}");
        let warning = text
            .lines()
            .find(|l| l.starts_with("warning: source.credentials"))
            .unwrap_or_else(|| panic!("no warning: {text}"));
        assert!(warning.contains("\"active\""), "{warning}");

        let mut settings = mapped_settings(&mapping(backend), &hr.url, &state);
        settings.source.employees = Some(employees);
        settings.source.credentials = Some(credentials.into());
        settings.source.update_password = None;
        let app = state.spawn_with(settings).await;
        // efox105 left (status 'T'); bcruz102 is not served at all.
        for (user, password) in [("efox105", "pw-efox105"), ("bcruz102", "pw-bcruz102")] {
            assert!(!login_succeeds(&app, user, password).await, "{user}");
            assert_eq!(last_reason(&app, user).await, "inactive", "{user}");
        }
        assert!(login_succeeds(&app, "cdahl103", "pw-cdahl103").await);
        app.stop().await;
    }
);

/// MariaDB: a 4-byte character against a `utf8mb3` column (as OrangeHRM's
/// installer creates them) makes the comparison fail (error 1267): a failed
/// login. A query that breaks for everyone is a 503, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credentials_query_failing_on_the_name_given_is_a_failed_login() {
    let Some(state) = TestDb::create(Backend::MySql).await else {
        return;
    };
    let hr = foreign_hr(Backend::MySql).await;
    hr.load(
        "SET FOREIGN_KEY_CHECKS = 0; \
         ALTER TABLE person CONVERT TO CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci; \
         SET FOREIGN_KEY_CHECKS = 1;",
    )
    .await;
    let mut settings = mapped_settings(&mapping(Backend::MySql), &hr.url, &state);
    settings.source.update_password = None;
    let app = state.spawn_with(settings).await;
    let fox = "fox\u{1F98A}";
    assert!(!login_succeeds(&app, fox, "whatever").await);
    assert_eq!(last_reason(&app, fox).await, "unknown_user");
    assert!(login_succeeds(&app, "bcruz102", "pw-bcruz102").await);
    hr.load("RENAME TABLE person TO person_gone").await;
    let response = app.post_authenticate("bcruz102", "pw-bcruz102").await;
    assert_eq!(response.status(), 503);
    let message = crate::helpers::fail_message(response).await;
    assert!(message.contains("source.credentials"), "{message}");
    app.stop().await;
}

/// PostgreSQL in LATIN1: a 4-byte character has no equivalent there, so binding
/// it fails (22P05): a plain failed login, not a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_the_database_encoding_cannot_hold_is_a_failed_login() {
    let Some(state) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let hr = TestDb::create_postgres_latin1()
        .await
        .expect("a second database on the same server");
    hr.load(&crate::helpers::repo_file(
        "tests/fixtures/sources/foreign/postgres.sql",
    ))
    .await;
    let mut settings = mapped_settings(&mapping(Backend::Postgres), &hr.url, &state);
    settings.source.update_password = None;
    let app = state.spawn_with(settings).await;
    let fox = "fox\u{1F98A}";
    assert!(!login_succeeds(&app, fox, "whatever").await);
    assert_eq!(last_reason(&app, fox).await, "unknown_user");
    assert!(login_succeeds(&app, "bcruz102", "pw-bcruz102").await);
    app.stop().await;
}
