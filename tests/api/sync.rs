//! `POST /sync`: shape, filtering, determinism and validation.

use crate::helpers::{fail_message, json_body, TestApp};
use crate::on_all_backends;
use serde_json::json;

/// A small directory exercising NULLs, gender spellings, inactive rows and
/// memberships that must be filtered out.
pub async fn seed_basic(app: &TestApp) {
    app.exec(
        "INSERT INTO departments (group_no, display_name, parent_group_no, active) VALUES \
             ('HQ', 'Head Office', NULL, TRUE);
         INSERT INTO departments (group_no, display_name, parent_group_no, active) VALUES \
             ('ENG', 'Engineering', 'HQ', TRUE), ('OLD', 'Old Unit', 'HQ', FALSE);
         INSERT INTO employees (username, email, nick_name, ad_no, company, phone1, phone2, \
             extension_no, gender, password_hash, active) VALUES \
             ('zoe', 'zoe@example.com', 'Zoë Ång', NULL, NULL, NULL, NULL, NULL, ' F ', NULL, TRUE), \
             ('adam', 'adam@example.com', 'Adam', 'E1', 'ACME', '111', '222', '33', 'MALE', NULL, TRUE), \
             ('mo', 'mo@example.com', 'Mo', NULL, NULL, NULL, NULL, NULL, 'other', NULL, TRUE), \
             ('gone', 'gone@example.com', 'Gone', NULL, NULL, NULL, NULL, NULL, NULL, NULL, FALSE);
         INSERT INTO department_members (group_no, username) VALUES \
             ('ENG', 'zoe'), ('ENG', 'adam'), ('ENG', 'gone'), ('OLD', 'adam'), ('HQ', 'mo');",
    )
    .await;
}

fn expected_basic() -> serde_json::Value {
    let user = |username: &str, email: &str, nick: &str, rest: [&str; 6]| {
        json!({"username": username, "email": email, "nick_name": nick, "ad_no": rest[0],
               "company": rest[1], "phone1": rest[2], "phone2": rest[3],
               "extension_no": rest[4], "gender": rest[5]})
    };
    json!({
        "status": "success",
        "user_info_list": [
            user("adam", "adam@example.com", "Adam", ["E1", "ACME", "111", "222", "33", "male"]),
            user("mo", "mo@example.com", "Mo", ["", "", "", "", "", ""]),
            user("zoe", "zoe@example.com", "Zoë Ång", ["", "", "", "", "", "female"]),
        ],
        "group_info_list": [
            {"display_name": "Engineering", "group_no": "ENG", "parent_group_no": "HQ",
             "user_list": ["adam", "zoe"]},
            {"display_name": "Head Office", "group_no": "HQ", "parent_group_no": "",
             "user_list": ["mo"]},
        ]
    })
}

on_all_backends!(
    sync_serves_active_records_in_omflow_shape,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_basic(&app).await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 200);
        let body = json_body(response).await;
        assert_eq!(body, expected_basic());
    }
);

on_all_backends!(
    sync_output_is_byte_identical_and_ordered,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_basic(&app).await;
        let first = app.post_sync().await.bytes().await.unwrap();
        let second = app.post_sync().await.bytes().await.unwrap();
        assert_eq!(first, second);
        let text = std::str::from_utf8(&first).unwrap();
        // Field order is part of the contract's shape, not just the values.
        assert!(text.starts_with(
        r#"{"status":"success","user_info_list":[{"username":"adam","email":"adam@example.com","nick_name":"Adam","ad_no":"E1","company":"ACME","phone1":"111","phone2":"222","extension_no":"33","gender":"male"}"#
    ), "{text}");
        assert!(text.contains(r#"{"display_name":"Engineering","group_no":"ENG","parent_group_no":"HQ","user_list":["adam","zoe"]}"#));
    }
);

on_all_backends!(
    sync_of_an_empty_directory_is_empty_lists,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let body = json_body(app.post_sync().await).await;
        assert_eq!(
            body,
            json!({"status": "success", "user_info_list": [], "group_info_list": []})
        );
    }
);

on_all_backends!(
    sync_ignores_whatever_body_omflow_sends,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_basic(&app).await;
        let url = format!("{}/sync", app.base_url);
        for (content_type, body) in [
            (None, ""),
            (Some("application/json"), "{}"),
            (Some("text/plain"), "not json at all"),
            (Some("application/json"), "{\"broken\":"),
        ] {
            let mut request = app
                .client
                .post(&url)
                .basic_auth(
                    crate::helpers::OMFLOW_USER,
                    Some(crate::helpers::OMFLOW_PASSWORD),
                )
                .body(body);
            if let Some(ct) = content_type {
                request = request.header("content-type", ct);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "body {body:?}");
            assert_eq!(json_body(response).await, expected_basic());
        }
    }
);

on_all_backends!(
    sync_refuses_duplicate_email_ignoring_case,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_basic(&app).await;
        let insert = "INSERT INTO employees (username, email, nick_name, active) \
                  VALUES ('adam2', 'ADAM@example.com', 'Adam Two', TRUE)";
        if app.backend() == Backend::MySql {
            // MariaDB's case-insensitive collation already forbids the duplicate.
            assert!(app.db.execute_script(insert).await.is_err());
            return;
        }
        app.exec(insert).await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        assert!(message.contains("adam@example.com"), "{message}");
        assert!(message.contains("\"adam\", \"adam2\""), "{message}");
    }
);

on_all_backends!(
    sync_ignores_duplicate_email_of_inactive_employee,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_basic(&app).await;
        if app.backend() == Backend::MySql {
            return; // the collation forbids the row itself; nothing to serve differently
        }
        app.exec(
            "INSERT INTO employees (username, email, nick_name, active) \
         VALUES ('adam_old', 'Adam@Example.com', 'Old Adam', FALSE)",
        )
        .await;
        assert_eq!(app.post_sync().await.status(), 200);
    }
);

on_all_backends!(sync_refuses_missing_parent, |db: TestDb| async move {
    let app = db.spawn().await;
    seed_basic(&app).await;
    app.exec_without_foreign_keys(
        "INSERT INTO departments (group_no, display_name, parent_group_no, active) \
         VALUES ('ORPHAN', 'Orphan', 'NOWHERE', TRUE);",
    )
    .await;
    let response = app.post_sync().await;
    assert_eq!(response.status(), 409);
    let message = fail_message(response).await;
    assert!(
        message.contains("\"ORPHAN\" has parent \"NOWHERE\", which does not exist"),
        "{message}"
    );
});

on_all_backends!(
    sync_refuses_inactive_parent_until_fixed,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_basic(&app).await;
        app.exec(
            "INSERT INTO departments (group_no, display_name, parent_group_no, active) \
         VALUES ('SUB', 'Sub of old', 'OLD', TRUE)",
        )
        .await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 409);
        let message = fail_message(response).await;
        assert!(
            message.contains("\"SUB\" has parent \"OLD\", which is inactive"),
            "{message}"
        );
        // Once HR fixes the row, the same data serves again.
        app.exec("UPDATE departments SET active = FALSE WHERE group_no = 'SUB'")
            .await;
        assert_eq!(json_body(app.post_sync().await).await, expected_basic());
    }
);

on_all_backends!(sync_refuses_parent_cycle, |db: TestDb| async move {
    let app = db.spawn().await;
    seed_basic(&app).await;
    app.exec(
        "INSERT INTO departments (group_no, display_name, parent_group_no, active) \
             VALUES ('C1', 'One', NULL, TRUE);
         INSERT INTO departments (group_no, display_name, parent_group_no, active) \
             VALUES ('C2', 'Two', 'C1', TRUE);
         INSERT INTO departments (group_no, display_name, parent_group_no, active) \
             VALUES ('C3', 'Three', 'C2', TRUE);
         UPDATE departments SET parent_group_no = 'C3' WHERE group_no = 'C1';",
    )
    .await;
    let response = app.post_sync().await;
    assert_eq!(response.status(), 409);
    let body = json_body(response).await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(r#"departments form a parent cycle: "C1" → "C3" → "C2" → "C1""#),
        "{message}"
    );
    assert_eq!(body["problems"].as_array().map(Vec::len), Some(1));
});

on_all_backends!(
    sync_serves_keys_in_byte_order_whatever_the_database_compares,
    |db: TestDb| async move {
        use hr_bridge::db::Backend;
        let backend = db.backend;
        // Keys whose case-insensitive (or locale) order is not their byte order.
        // MariaDB's tables compare them case-insensitively already; PostgreSQL and
        // SQLite are made to through a mapping that sets the collation.
        let app = db.spawn().await;
        app.exec(
            "INSERT INTO departments (group_no, display_name, parent_group_no, active) VALUES \
                 ('g0', 'Lower', NULL, TRUE), ('G1', 'Upper', NULL, TRUE), ('Äx', 'Umlaut', NULL, TRUE);
             INSERT INTO employees (username, email, nick_name, active) VALUES \
                 ('alice', 'alice@example.com', 'A', TRUE), ('Bob', 'bob@example.com', 'B', TRUE), \
                 ('a_b', 'ab@example.com', 'C', TRUE), ('a1', 'a1@example.com', 'D', TRUE), \
                 ('émile', 'emile@example.com', 'E', TRUE), ('Zed', 'zed@example.com', 'F', TRUE);
             INSERT INTO department_members (group_no, username) VALUES \
                 ('g0', 'alice'), ('g0', 'Bob'), ('G1', 'a_b'), ('G1', 'a1'), ('G1', 'Zed'), \
                 ('Äx', 'émile'), ('Äx', 'alice');",
        )
        .await;
        let collate = match backend {
            Backend::Postgres => Some(r#"COLLATE "und-x-icu""#),
            Backend::Sqlite => Some("COLLATE NOCASE"),
            Backend::MySql => None,
        };
        let mut app = app;
        // A mapped source keeps its state in a database of its own.
        let state = crate::helpers::TestDb::create(Backend::Sqlite)
            .await
            .expect("SQLite state");
        let base = match collate {
            None => app.base_url.clone(),
            Some(collate) => {
                let mut settings = app.test_db.settings();
                // Its state database is migrated by the sibling's start-up.
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
        let sync = || {
            app.client
                .post(format!("{base}/sync"))
                .basic_auth(
                    crate::helpers::OMFLOW_USER,
                    Some(crate::helpers::OMFLOW_PASSWORD),
                )
                .send()
        };
        let first = sync().await.unwrap();
        assert_eq!(first.status(), 200);
        let first = first.bytes().await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&first).unwrap();
        let keys = |list: &str, key: &str| -> Vec<String> {
            body[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r[key].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            keys("user_info_list", "username"),
            ["Bob", "Zed", "a1", "a_b", "alice", "émile"]
        );
        assert_eq!(keys("group_info_list", "group_no"), ["G1", "g0", "Äx"]);
        let members: Vec<serde_json::Value> = body["group_info_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["user_list"].clone())
            .collect();
        assert_eq!(
            members,
            [
                json!(["Zed", "a1", "a_b"]),
                json!(["Bob", "alice"]),
                json!(["alice", "émile"])
            ]
        );
        // Once the database's order is known not to be byte order, every sync
        // reads sorted by bytes: the same bytes again.
        let second = sync().await.unwrap().bytes().await.unwrap();
        assert_eq!(first, second);
    }
);
