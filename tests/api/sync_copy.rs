//! The directory read cell by cell and connection by connection: PostgreSQL sends
//! it as binary COPY (src/source/pgcopy.rs), MariaDB and SQLite as rows. Whatever
//! the transport, NULL and empty text stay apart, a mapped `active` of each type
//! is read as before, and a read abandoned half-way (the builder stopped, a
//! statement failed before its first row) leaves no connection in the pool that
//! would answer the next sync with the rest of the old one.

use std::time::Duration;

use hr_bridge::db::Backend;
use serde_json::Value as Json;
use tokio::io::AsyncWriteExt;

use crate::helpers::{
    fail_message, json_body, mapped_settings, TestApp, TestDb, OMFLOW_PASSWORD, OMFLOW_USER,
};
use crate::on_all_backends;
use crate::sources::{foreign_hr, mapping};

async fn sync_at(app: &TestApp, base: &str) -> reqwest::Response {
    app.client
        .post(format!("{base}/sync"))
        .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
        .send()
        .await
        .expect("request sent")
}

fn usernames(body: &Json) -> Vec<String> {
    body["user_info_list"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["username"].as_str().expect("username").to_owned())
        .collect()
}

on_all_backends!(
    sync_copy_cells_keep_null_empty_and_each_type_of_active,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        // phone1 NULL and phone2 empty in every row: both cells in the middle of
        // each tuple, both served as "".
        let employees = |active: &str| {
            format!(
                "SELECT p.login AS username, p.mail AS email, p.given_name AS nick_name, \
                 p.staff_no AS ad_no, p.employer AS company, NULL AS phone1, '' AS phone2, \
                 p.ext AS extension_no, p.sex AS gender, {active} AS active FROM person p"
            )
        };
        let with = |active: &str| {
            let mut settings = mapped_settings(&mapping(backend), &hr.url, &state);
            settings.source.employees = Some(employees(active));
            settings
        };
        let flag = "CASE WHEN p.status = 'A' THEN 1 ELSE 0 END";
        // `active` as a boolean (MariaDB and SQLite: an integer), then as each
        // integer type the backend has: all serve the same bytes.
        let mut served = vec!["(p.status = 'A')".to_owned(), flag.to_owned()];
        match backend {
            Backend::Postgres => {
                served.push(format!("CAST({flag} AS SMALLINT)"));
                served.push(format!("CAST({flag} AS BIGINT)"));
            }
            Backend::MySql => {
                served.push(format!("CAST({flag} AS SIGNED)"));
                // BIGINT UNSIGNED.
                served.push(format!("CAST({flag} AS UNSIGNED)"));
            }
            Backend::Sqlite => {}
        }
        // Every server's settings, made before the state database moves into
        // the first one.
        let text = "CASE p.login WHEN 'aberg101' THEN NULL WHEN 'bcruz102' THEN '' \
                    ELSE 'yes' END";
        let (fraction, fraction_shown) = match backend {
            Backend::Postgres => ("CAST(1 AS NUMERIC)", "active is a value of type numeric"),
            Backend::MySql => (
                "CAST(1 AS DECIMAL(3,1))",
                "active is a value of type decimal",
            ),
            Backend::Sqlite => ("1.5", "active is 1.5"),
        };
        let served_settings: Vec<_> = served[1..].iter().map(|a| (a.clone(), with(a))).collect();
        let fraction_shown = [fraction_shown];
        let mut refused_settings = vec![
            (
                with(text),
                text,
                &[
                    "employee \"aberg101\": active is NULL,",
                    "employee \"bcruz102\": active is \"\",",
                    "employee \"cdahl103\": active is \"yes\",",
                ][..],
            ),
            (with(fraction), fraction, &fraction_shown[..]),
        ];
        // BIGINT UNSIGNED past i64::MAX: shown as the number it is.
        let huge = "CAST(18446744073709551615 AS UNSIGNED)";
        if backend == Backend::MySql {
            refused_settings.push((
                with(huge),
                huge,
                &["active is \"18446744073709551615\""][..],
            ));
        }
        let first_settings = with(&served[0]);
        let mut app = state.spawn_with(first_settings).await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 200);
        let baseline = response.bytes().await.expect("body");
        let body: Json = serde_json::from_slice(&baseline).expect("JSON");
        assert_eq!(usernames(&body).len(), 28);
        for user in body["user_info_list"].as_array().expect("users") {
            assert_eq!(user["phone1"], "", "{user}");
            assert_eq!(user["phone2"], "", "{user}");
        }
        let ben = body["user_info_list"]
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["username"] == "bcruz102")
            .expect("bcruz102 served");
        assert_eq!(ben["ad_no"], "5102");
        for (active, settings) in served_settings {
            let url = app.spawn_sibling(settings).await;
            let response = sync_at(&app, &url).await;
            assert_eq!(response.status(), 200, "{active}");
            assert_eq!(response.bytes().await.expect("body"), baseline, "{active}");
        }

        // `active` as text (NULL, empty and 'yes' told apart) and as a number
        // with a fraction: refused, each cell named as it was read.
        for (settings, active, shown) in refused_settings {
            let url = app.spawn_sibling(settings).await;
            let response = sync_at(&app, &url).await;
            assert_eq!(response.status(), 409, "{active}");
            let message = fail_message(response).await;
            for shown in shown {
                assert!(message.contains(shown), "{active}: {message}");
            }
        }
        app.stop().await;
    }
);

/// Employees `c00001`… after `alice` and `Bob`: many rows, so that a read the
/// builder gives up on at `Bob` is abandoned with most of them still unread.
fn many_employees(backend: Backend, count: u32) -> String {
    let digit = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
                 UNION ALL SELECT 8 UNION ALL SELECT 9)";
    let n = "(d1.d + 10 * d2.d + 100 * d3.d + 1000 * d4.d + 10000 * d5.d + 1)";
    let text = |parts: &[&str]| match backend {
        Backend::MySql => format!("CONCAT({})", parts.join(", ")),
        Backend::Postgres => format!("CONCAT({})", parts.join(", ")),
        Backend::Sqlite => parts.join(" || "),
    };
    let padded = match backend {
        Backend::Sqlite => format!("printf('%06d', {n})"),
        Backend::Postgres => format!("lpad(CAST({n} AS TEXT), 6, '0')"),
        Backend::MySql => format!("LPAD({n}, 6, '0')"),
    };
    format!(
        "INSERT INTO employees (username, email, nick_name, phone1, active) \
         SELECT {user}, {mail}, 'Somebody', NULL, TRUE \
         FROM {digit} d1 CROSS JOIN {digit} d2 CROSS JOIN {digit} d3 CROSS JOIN {digit} d4 \
         CROSS JOIN {digit} d5 WHERE {n} <= {count};",
        user = text(&["'c'", &padded]),
        mail = text(&["'c'", &padded, "'@example.com'"]),
    )
}

/// Waits until `base` counts a `/sync` call in flight, or `raw` has an answer.
async fn until_sync_in_flight(app: &TestApp, base: &str, raw: &tokio::net::TcpStream) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = app
            .client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        let in_flight = metrics
            .lines()
            .find_map(|l| l.strip_prefix("hr_bridge_sync_calls_in_flight "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        let mut peek = [0u8; 1];
        let answered = matches!(raw.try_read(&mut peek), Ok(n) if n > 0);
        if in_flight >= 1.0 || answered {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sync never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

on_all_backends!(
    sync_copy_abandoned_reads_leave_the_pool_usable,
    |db: TestDb| async move {
        let backend = db.backend;
        let mut app = db.spawn().await;
        app.exec(
            "INSERT INTO departments (group_no, display_name, parent_group_no, active) VALUES \
                 ('g0', 'Lower', NULL, TRUE), ('G1', 'Upper', NULL, TRUE);
             INSERT INTO employees (username, email, nick_name, active) VALUES \
                 ('alice', 'alice@example.com', 'A', TRUE), ('Bob', 'bob@example.com', 'B', TRUE);
             INSERT INTO department_members (group_no, username) VALUES \
                 ('g0', 'alice'), ('g0', 'Bob'), ('G1', 'alice');",
        )
        .await;
        app.exec(&many_employees(backend, 30_000)).await;
        // The keys in an order that is not their bytes' (`alice` before `Bob`):
        // the builder stops at `Bob` with the read far from done, and the
        // directory is read again, sorted by bytes, on the same pool.
        let collate = match backend {
            Backend::Postgres => Some(r#"COLLATE "und-x-icu""#),
            Backend::Sqlite => Some("COLLATE NOCASE"),
            Backend::MySql => None,
        };
        let state = TestDb::create(Backend::Sqlite).await.expect("SQLite state");
        let base = match collate {
            None => app.base_url.clone(),
            Some(collate) => {
                let mut settings = app.test_db.settings();
                settings.state.url = Some(state.url.clone().into());
                settings.source.employees = Some(format!(
                    "SELECT username {collate} AS username, email, nick_name, ad_no, company, \
                     phone1, phone2, extension_no, gender, active FROM employees"
                ));
                settings.source.memberships = Some(format!(
                    "SELECT group_no {collate} AS group_no, username {collate} AS username \
                     FROM department_members"
                ));
                settings.source.credentials = Some(
                    "SELECT username, password_hash, active FROM employees \
                     WHERE username = :username"
                        .into(),
                );
                app.spawn_sibling(settings).await
            }
        };
        let first = sync_at(&app, &base).await;
        assert_eq!(first.status(), 200);
        let first = first.bytes().await.expect("body");
        let body: Json = serde_json::from_slice(&first).expect("JSON");
        let users = usernames(&body);
        assert_eq!(users.len(), 30_002);
        assert_eq!(users[..3], ["Bob", "alice", "c000001"][..]);

        // A client that hangs up while its sync is being built.
        let addr = base.trim_start_matches("http://").to_owned();
        let mut raw = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let auth = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{OMFLOW_USER}:{OMFLOW_PASSWORD}"),
        );
        raw.write_all(
            format!(
                "POST /sync HTTP/1.1\r\nhost: {addr}\r\nauthorization: Basic {auth}\r\n\
                 content-length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("request written");
        until_sync_in_flight(&app, &base, &raw).await;
        drop(raw);

        // Every connection of the pool (4) serves the next syncs, twice over.
        for _ in 0..8 {
            let response = sync_at(&app, &base).await;
            assert_eq!(response.status(), 200);
            assert_eq!(response.bytes().await.expect("body"), first);
        }
        app.stop().await;
    }
);

/// PostgreSQL only: a COPY that fails before its first row (here the
/// memberships COPY, past `statement_timeout` behind a lock) answers 503 as a
/// failed query did, and its connection does not go back to the pool with the
/// failure's ReadyForQuery unread (sqlx does not count it for a COPY). MariaDB
/// and SQLite read rows, not COPY, and a consistent-snapshot read does not wait
/// for a lock there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_copy_failing_before_its_first_row_answers_503_and_leaves_the_pool_usable_postgres() {
    use sqlx::Connection;
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let mut settings = db.settings();
    settings.database.statement_timeout_secs = Some(1);
    let app = db.spawn_with(settings).await;
    app.exec(
        "INSERT INTO departments (group_no, display_name, parent_group_no, active) VALUES \
             ('g0', 'Zero', NULL, TRUE);
         INSERT INTO employees (username, email, nick_name, active) VALUES \
             ('alice', 'alice@example.com', 'A', TRUE), ('bob', 'bob@example.com', 'B', TRUE);
         INSERT INTO department_members (group_no, username) VALUES ('g0', 'alice');",
    )
    .await;
    let response = app.post_sync().await;
    assert_eq!(response.status(), 200);
    let good = response.bytes().await.expect("body");

    let mut lock = sqlx::PgConnection::connect(&app.test_db.url)
        .await
        .expect("connect");
    sqlx::raw_sql("BEGIN; LOCK TABLE department_members IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .expect("lock");
    let response = app.post_sync().await;
    assert_eq!(response.status(), 503);
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("unlock");
    lock.close().await.expect("close");

    for _ in 0..8 {
        let response = app.post_sync().await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.bytes().await.expect("body"), good);
    }
    let body = json_body(app.post_sync().await).await;
    assert_eq!(usernames(&body), ["alice", "bob"]);
    app.stop().await;
}
