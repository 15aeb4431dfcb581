//! What `hr-bridge check` and `/sync` tell an operator beyond the problems that
//! refuse a sync: how much would be served, memberships left out because they
//! name nobody, genders OMFLOW does not know, and how to fix employees without
//! an email.

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::helpers::{binary, fail_message, TestApp, TestDb, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;

fn check(url: &str) -> Output {
    binary()
        .env("HR_BRIDGE__DATABASE__URL", url)
        .arg("check")
        .output()
        .expect("hr-bridge check runs")
}

/// seed_basic, plus memberships naming people and departments that do not
/// exist (a mapped source can return those; here written past the foreign keys)
/// and one more unknown gender.
async fn seed_with_strays(app: &TestApp) {
    crate::sync::seed_basic(app).await;
    app.exec(
        "INSERT INTO employees (username, email, nick_name, gender, active) \
         VALUES ('kim', 'kim@example.com', 'Kim', 'other', TRUE), \
                ('lee', 'lee@example.com', 'Lee', 'X', TRUE)",
    )
    .await;
    app.exec_without_foreign_keys(
        "INSERT INTO department_members (group_no, username) VALUES \
             ('ENG', 'ghost'), ('HQ', 'Ghost\n2'), ('NOPE', 'adam');",
    )
    .await;
}

on_all_backends!(
    check_counts_what_it_would_serve_and_what_it_leaves_out,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_with_strays(&app).await;
        let out = check(&app.test_db.url);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(
            stdout.starts_with(
                "OK: the HR data can be served to OMFLOW: /sync would serve 5 user(s) and 2 department(s)"
            ),
            "{stdout}"
        );
        for expected in [
            "warning: 2 membership(s) name an employee the source does not have, and are left out: \
             \"ENG\"/\"ghost\", \"HQ\"/\"Ghost\\n2\"",
            "warning: 1 membership(s) name a department the source does not have, and are left out: \
             \"NOPE\"/\"adam\"",
            // gone (inactive) in ENG, adam in OLD (inactive).
            "note: 2 membership(s) of inactive employees or departments are left out",
            "warning: 3 employee(s) have a gender OMFLOW does not know, served as \"\"",
            "\"X\" × 1 (\"lee\"); \"other\" × 2 (\"kim\", \"mo\")",
        ] {
            assert!(stderr.contains(expected), "{expected} missing from: {stderr}");
        }
        // A sync still serves the valid rest.
        assert_eq!(app.post_sync().await.status(), 200);
    }
);

on_all_backends!(
    check_counts_what_it_read_when_it_refuses,
    |db: TestDb| async move {
        let app = db.spawn().await;
        crate::sync::seed_basic(&app).await;
        app.exec("UPDATE departments SET parent_group_no = 'ENG' WHERE group_no = 'HQ'")
            .await;
        let out = check(&app.test_db.url);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stdout}");
        assert!(
            stderr.contains("active in the HR data: 3 user(s) and 2 department(s)"),
            "{stderr}"
        );
        // Standard output holds the problems alone, one a line.
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert!(stdout.contains("parent cycle"), "{stdout}");
    }
);

/// `/sync`'s log names memberships it leaves out. The log is the same code on
/// every backend; SQLite keeps this test to one server start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_logs_memberships_that_name_nobody() {
    let Some(db) = TestDb::create(hr_bridge::db::Backend::Sqlite).await else {
        return;
    };
    let app = db.spawn().await;
    seed_with_strays(&app).await;
    let reserved = crate::helpers::free_port();
    let port = reserved.port();
    let mut child = binary()
        .env("HR_BRIDGE__DATABASE__URL", &app.test_db.url)
        .env("HR_BRIDGE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("HR_BRIDGE__OMFLOW__USERNAME", OMFLOW_USER)
        .env("HR_BRIDGE__OMFLOW__PASSWORD", OMFLOW_PASSWORD)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{url}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server did not come up");
    let response = client
        .post(format!("{url}/sync"))
        .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut logged = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        let done = line.contains("memberships name a department");
        logged.push(line);
        if done {
            break;
        }
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log = logged.join("\n");
    assert!(
        log.contains("memberships name an employee the source does not have")
            && log.contains("count=2")
            && log.contains(r#""ENG"/"ghost", "HQ"/"Ghost\n2""#),
        "{log}"
    );
    assert!(log.contains(r#""NOPE"/"adam""#), "{log}");
}

on_all_backends!(
    employees_without_an_email_are_told_how_to_get_one,
    |db: TestDb| async move {
        let backend = db.backend;
        // The HR data in the built-in tables of one database, read through a
        // mapping that serves two people without an email; state elsewhere.
        let hr = db.spawn().await;
        hr.exec(
            "INSERT INTO employees (username, email, nick_name, active) VALUES \
                 ('ann', 'ann@example.com', 'Ann', TRUE), \
                 ('bo', 'bo@example.com', 'Bo', TRUE), \
                 ('cy', 'cy@example.com', 'Cy', TRUE)",
        )
        .await;
        let state = TestDb::create(backend).await.expect("a state database");
        let mut settings = state.settings();
        settings.database.url = secrecy::SecretString::from(hr.test_db.url.clone());
        settings.state.url = Some(secrecy::SecretString::from(state.url.clone()));
        // ann and bo get NULL, which is served as "".
        settings.source.employees = Some(
            "SELECT username, CASE WHEN username IN ('ann', 'bo') THEN NULL ELSE email END \
             AS email, nick_name, ad_no, company, phone1, phone2, extension_no, gender, active \
             FROM employees"
                .into(),
        );
        let app = state.spawn_with(settings).await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        assert!(
            message
                .contains("email \"\" is shared by employees \"ann\", \"bo\": they have no email"),
            "{message}"
        );
        assert!(message.contains("COALESCE(email"), "{message}");
    }
);
