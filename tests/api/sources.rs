//! Mapped HR sources end to end: a home-grown schema (tests/fixtures/sources/
//! foreign) read through a SELECT-only user, with hr-bridge's own state in another
//! database; the mapped queries checked before serving; commands that would write
//! the HR database refused; forgiving column types.

use std::collections::BTreeMap;
use std::process::Output;

use hr_bridge::db::Backend;
use serde_json::Value as Json;

use crate::helpers::{
    binary, fail_message, json_body, mapped_settings, repo_file, repo_path, rows_at, TestApp,
    TestDb,
};
use crate::on_all_backends;

pub const FOREIGN_TABLES: [&str; 4] = ["org_unit", "person", "person_phone", "unit_membership"];

pub fn suffix(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "postgres",
        Backend::MySql => "mysql",
        Backend::Sqlite => "sqlite",
    }
}

pub fn mapping(backend: Backend) -> std::path::PathBuf {
    repo_path(&format!(
        "tests/fixtures/sources/foreign/{}.toml",
        suffix(backend)
    ))
}

fn facts() -> Json {
    serde_json::from_str(&repo_file("tests/fixtures/sources/foreign/facts.json"))
        .expect("facts.json")
}

/// A fresh HR database of `backend` holding the foreign schema.
pub async fn foreign_hr(backend: Backend) -> TestDb {
    let hr = TestDb::create(backend)
        .await
        .expect("a second database on the same server");
    hr.load(&repo_file(&format!(
        "tests/fixtures/sources/foreign/{}.sql",
        suffix(backend)
    )))
    .await;
    hr
}

/// What `/sync` serves over the built-in tables holding builtin.sql.
async fn builtin_sync_bytes(backend: Backend) -> Vec<u8> {
    let app = TestDb::create(backend)
        .await
        .expect("database")
        .spawn()
        .await;
    app.exec(&repo_file("tests/fixtures/sources/foreign/builtin.sql"))
        .await;
    let response = app.post_sync().await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.expect("body").to_vec();
    app.stop().await;
    bytes
}

/// Everything that would show a write to the HR database.
#[derive(Debug, PartialEq)]
pub struct HrFingerprint {
    rows: Vec<Vec<Option<String>>>,
    /// PostgreSQL: n_tup_ins, n_tup_upd, n_tup_del per table.
    pg_writes: BTreeMap<String, (i64, i64, i64)>,
    /// SQLite: the file's bytes and modification time.
    file: Option<(Vec<u8>, std::time::SystemTime)>,
}

impl HrFingerprint {
    pub async fn take(hr: &TestDb) -> Self {
        let rows = hr
            .rows(
                "SELECT login, mail, given_name, status, pw FROM person \
                 UNION ALL SELECT unit_name, status, NULL, NULL, NULL FROM org_unit \
                 UNION ALL SELECT kind, number, NULL, NULL, NULL FROM person_phone \
                 ORDER BY 1, 2",
            )
            .await;
        let mut pg_writes = BTreeMap::new();
        if hr.backend == Backend::Postgres {
            // Statistics reach the shared view when a backend flushes them; a fresh
            // connection per read (no cached snapshot) and a wait until the
            // loader's inserts show make the comparison exact.
            for _ in 0..60 {
                pg_writes = pg_stats(hr).await;
                let loaded = hr
                    .rows(
                        "SELECT CAST((SELECT count(*) FROM org_unit) + (SELECT count(*) FROM person) \
                         + (SELECT count(*) FROM person_phone) \
                         + (SELECT count(*) FROM unit_membership) AS text)",
                    )
                    .await[0][0]
                    .clone()
                    .expect("count")
                    .parse::<i64>()
                    .expect("number");
                let inserted: i64 = pg_writes.values().map(|w| w.0).sum();
                if inserted >= loaded {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            let inserted: i64 = pg_writes.values().map(|w| w.0).sum();
            assert!(
                inserted > 0,
                "the loader's inserts never showed: {pg_writes:?}"
            );
        }
        let file = (hr.backend == Backend::Sqlite).then(|| {
            let path = hr.sqlite_file();
            let bytes = std::fs::read(&path).expect("read the HR file");
            let mtime = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .expect("mtime");
            (bytes, mtime)
        });
        Self {
            rows,
            pg_writes,
            file,
        }
    }
}

async fn pg_stats(hr: &TestDb) -> BTreeMap<String, (i64, i64, i64)> {
    hr.rows(
        "SELECT relname::text, n_tup_ins::text, n_tup_upd::text, n_tup_del::text \
         FROM pg_stat_user_tables ORDER BY relname",
    )
    .await
    .into_iter()
    .map(|r| {
        let n = |i: usize| {
            r[i].as_deref()
                .unwrap_or("0")
                .parse::<i64>()
                .expect("count")
        };
        (r[0].clone().unwrap_or_default(), (n(1), n(2), n(3)))
    })
    .collect()
}

fn usernames(body: &Json) -> Vec<String> {
    body["user_info_list"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["username"].as_str().expect("username").to_owned())
        .collect()
}

fn group<'a>(body: &'a Json, group_no: &str) -> Option<&'a Json> {
    body["group_info_list"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group_no"] == group_no)
}

pub async fn login_succeeds(app: &TestApp, username: &str, password: &str) -> bool {
    let response = app.post_authenticate(username, password).await;
    assert_eq!(response.status(), 200);
    json_body(response).await["status"] == "success"
}

on_all_backends!(
    foreign_schema_read_only_serves_the_builtin_bytes_and_never_writes,
    |state: TestDb| async move {
        let backend = state.backend;
        let facts = facts();
        let hr = foreign_hr(backend).await;
        let ro = hr.read_only_user(&FOREIGN_TABLES, &[]).await;
        if let Some(user) = ro.user() {
            if backend == Backend::MySql {
                let grants =
                    rows_at(backend, &hr.url, &format!("SHOW GRANTS FOR '{user}'@'%'")).await;
                for grant in grants.iter().flatten().flatten() {
                    for write in [
                        "INSERT",
                        "UPDATE",
                        "DELETE",
                        "ALL PRIVILEGES",
                        "CREATE",
                        "DROP",
                    ] {
                        assert!(!grant.contains(write), "{grant}");
                    }
                }
            }
        }
        let before = HrFingerprint::take(&hr).await;
        let bcrypt_hash_before = hr
            .rows("SELECT pw FROM person WHERE login = 'bcruz102'")
            .await;

        let mut settings = mapped_settings(&mapping(backend), &ro.url, &state);
        // Without update_password a bcrypt login must leave the stored hash alone.
        settings.source.update_password = None;
        settings.auth.max_failures = 3;
        let app = state.spawn_with(settings.clone()).await;

        // /sync: byte for byte what the built-in tables serve for the same people.
        let expected = builtin_sync_bytes(backend).await;
        for _ in 0..2 {
            let response = app.post_sync().await;
            assert_eq!(response.status(), 200);
            let served = response.bytes().await.expect("body").to_vec();
            assert_eq!(
                String::from_utf8_lossy(&served),
                String::from_utf8_lossy(&expected)
            );
        }
        let body: Json = serde_json::from_slice(&expected).expect("JSON");
        let users = usernames(&body);
        assert_eq!(
            users.len() as u64,
            facts["served_users"].as_u64().expect("n")
        );
        let groups = body["group_info_list"].as_array().expect("groups");
        assert_eq!(
            groups.len() as u64,
            facts["served_departments"].as_u64().expect("n")
        );
        let members: usize = groups
            .iter()
            .map(|g| g["user_list"].as_array().expect("list").len())
            .sum();
        assert_eq!(
            members as u64,
            facts["served_memberships"].as_u64().expect("n")
        );
        for gone in facts["not_served"].as_array().expect("list") {
            let name = gone["username"].as_str().expect("username");
            assert!(!users.iter().any(|u| u == name), "{name} is served");
        }
        let inactive = facts["inactive_department"].as_str().expect("group");
        assert!(group(&body, inactive).is_none());
        let two = &facts["two_departments"];
        let who = two["username"].as_str().expect("username");
        for group_no in two["group_nos"].as_array().expect("list") {
            let g = group(&body, group_no.as_str().expect("group")).expect("served group");
            assert!(g["user_list"]
                .as_array()
                .expect("list")
                .iter()
                .any(|u| u == who));
        }

        // /authenticate: every hash format, wrong password, inactive, lockout.
        for key in ["login_ok", "login_ok_argon2id", "login_ok_bcrypt_2b"] {
            let login = &facts[key];
            let (user, password) = (
                login["username"].as_str().expect("username"),
                login["password"].as_str().expect("password"),
            );
            assert!(login_succeeds(&app, user, password).await, "{key}");
            assert!(!login_succeeds(&app, user, "wrong").await, "{key}");
        }
        let inactive = &facts["login_inactive"];
        assert!(
            !login_succeeds(
                &app,
                inactive["username"].as_str().expect("u"),
                inactive["password"].as_str().expect("p")
            )
            .await
        );
        assert!(!login_succeeds(&app, "nobody-here", "whatever").await);
        for _ in 0..3 {
            assert!(!login_succeeds(&app, "fgray106", "wrong").await);
        }
        assert!(
            !login_succeeds(&app, "fgray106", "pw-fgray106").await,
            "locked after auth.max_failures"
        );

        // The audit trail and the lockout live in the state database.
        let audit = app.audit().await;
        let reasons: Vec<(&str, &str)> = audit
            .iter()
            .map(|(u, _, reason, _)| (u.as_str(), reason.as_str()))
            .collect();
        for expected in [
            ("bcruz102", "success"),
            ("deklund104", "success"),
            ("cdahl103", "success"),
            ("bcruz102", "bad_password"),
            ("efox105", "inactive"),
            ("nobody-here", "unknown_user"),
            ("fgray106", "locked"),
        ] {
            assert!(reasons.contains(&expected), "{expected:?} in {reasons:?}");
        }
        assert_eq!(
            app.rows("SELECT 'x' FROM auth_lockouts WHERE username = 'fgray106'")
                .await
                .len(),
            1
        );

        // No write: the bcrypt hash is as it was (no update_password), a write
        // through hr-bridge's own HR pool fails, and the database shows nothing.
        assert_eq!(
            hr.rows("SELECT pw FROM person WHERE login = 'bcruz102'")
                .await,
            bcrypt_hash_before
        );
        let source = hr_bridge::source::open(&settings, &app.db).expect("source opens");
        assert!(
            source
                .db()
                .execute_script("UPDATE person SET pw = NULL WHERE login = 'aberg101'")
                .await
                .is_err(),
            "hr-bridge's HR pool must not be able to write"
        );
        source.db().close().await;
        app.stop().await;
        if backend == Backend::Postgres {
            // Let the server's backends flush what they counted as they exit.
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        }
        let after = HrFingerprint::take(&hr).await;
        assert_eq!(before, after);
        drop(ro);
    }
);

on_all_backends!(
    foreign_schema_rehashes_on_login_only_with_update_password,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        let ro = hr
            .read_only_user(
                &FOREIGN_TABLES,
                match backend {
                    Backend::Postgres => &["GRANT UPDATE (pw) ON person TO {user}"],
                    Backend::MySql => &["GRANT UPDATE (`pw`) ON `{db}`.`person` TO '{user}'@'%'"],
                    Backend::Sqlite => &[],
                },
            )
            .await;
        let url = match backend {
            // SQLite has no users: a writable file is the operator's choice here.
            Backend::Sqlite => format!("sqlite://{}?mode=rw", hr.sqlite_file().display()),
            _ => ro.url.clone(),
        };
        let settings = mapped_settings(&mapping(backend), &url, &state);
        assert!(settings.source.update_password.is_some());
        let app = state.spawn_with(settings).await;
        let hash = || async {
            hr.rows("SELECT pw FROM person WHERE login = 'cdahl103'")
                .await[0][0]
                .clone()
                .expect("hash")
        };
        assert!(hash().await.starts_with("$2b$"));
        assert!(login_succeeds(&app, "cdahl103", "pw-cdahl103").await);
        // The rehash is written after the answer: wait for it (generously).
        let mut rehashed = String::new();
        for _ in 0..100 {
            rehashed = hash().await;
            if rehashed.starts_with("$argon2id$") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(rehashed.starts_with("$argon2id$"), "still {rehashed}");
        assert!(login_succeeds(&app, "cdahl103", "pw-cdahl103").await);
        assert!(!login_succeeds(&app, "cdahl103", "wrong").await);
        app.stop().await;
        drop(ro);
    }
);

/// Runs the binary with the foreign mapping file, the HR and state URLs (an
/// empty `state_url` leaves it unset), and `overrides` as
/// `HR_BRIDGE__SOURCE__<KEY>` variables.
pub fn run_mapped(
    args: &[&str],
    backend: Backend,
    hr_url: &str,
    state_url: &str,
    overrides: &[(&str, &str)],
    stdin: &str,
) -> Output {
    use std::io::Write;
    let mut command = binary();
    command
        .arg("--config")
        .arg(mapping(backend))
        .args(args)
        .env("HR_BRIDGE__DATABASE__URL", hr_url)
        .env("HR_BRIDGE__SERVER__LISTEN", "127.0.0.1:0")
        .env("HR_BRIDGE__OMFLOW__USERNAME", "omflow")
        .env("HR_BRIDGE__OMFLOW__PASSWORD", "omflow-test-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // An empty state URL leaves state.url unset.
    if !state_url.is_empty() {
        command.env("HR_BRIDGE__STATE__URL", state_url);
    }
    for (key, sql) in overrides {
        command.env(format!("HR_BRIDGE__SOURCE__{}", key.to_uppercase()), sql);
    }
    let mut child = command.spawn().expect("hr-bridge starts");
    if let Some(mut input) = child.stdin.take() {
        // A command that refuses at start-up never reads it.
        let _ = input.write_all(stdin.as_bytes());
    }
    // `serve` must refuse at start-up; never leave it running if it does not.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

pub fn out(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub const PERSON_COLUMNS: &str =
    "p.login AS username, p.mail AS email, p.given_name AS nick_name, \
    p.staff_no AS ad_no, p.employer AS company, p.ext AS phone1, p.ext AS phone2, \
    p.ext AS extension_no, p.sex AS gender";

on_all_backends!(
    mapped_queries_that_do_not_fit_are_refused_before_serving,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        let before = HrFingerprint::take(&hr).await;
        let extra = format!("SELECT {PERSON_COLUMNS}, p.person_id AS pid FROM person p");
        let cases: [(&str, String, &[&str]); 4] = [
            (
                "employees",
                format!("SELECT {PERSON_COLUMNS} FROM no_such_table p"),
                &["source.employees", "no_such_table"],
            ),
            (
                "departments",
                "SELECT u.unit_id AS group_no, u.unit_name AS display_name FROM org_unit u"
                    .to_owned(),
                &["source.departments", "parent_group_no"],
            ),
            ("employees", extra, &["source.employees", "\"pid\""]),
            (
                "credentials",
                "SELECT pw AS password_hash, login AS username FROM person WHERE login = 'aberg101'"
                    .to_owned(),
                &["source.credentials", ":username"],
            ),
        ];
        for (key, sql, named) in &cases {
            for command in [&["check"][..], &["serve"][..]] {
                let output = run_mapped(command, backend, &hr.url, &state.url, &[(key, sql)], "");
                let text = out(&output);
                assert!(!output.status.success(), "{command:?} {key}: {text}");
                let line = text
                    .lines()
                    .find(|l| l.contains(named[0]))
                    .unwrap_or_else(|| panic!("{command:?} {key}: no line names it: {text}"));
                for name in *named {
                    assert!(line.contains(name), "{command:?}: {line}");
                }
            }
        }
        assert_eq!(before, HrFingerprint::take(&hr).await);
    }
);

/// PostgreSQL only: `::` casts next to the placeholder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_placeholder_works_inside_a_postgres_cast() {
    let Some(state) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let hr = foreign_hr(Backend::Postgres).await;
    let mut settings = mapped_settings(&mapping(Backend::Postgres), &hr.url, &state);
    settings.source.credentials = Some(
        "SELECT p.pw::text AS password_hash, p.login::text AS username, \
         (p.status = 'A') AS active FROM person p WHERE p.login::text = :username::text"
            .into(),
    );
    settings.source.update_password = None;
    let app = state.spawn_with(settings).await;
    assert!(login_succeeds(&app, "bcruz102", "pw-bcruz102").await);
    assert!(!login_succeeds(&app, "bcruz102", "wrong").await);
    app.stop().await;
}

on_all_backends!(
    credentials_query_returning_two_rows_is_an_ambiguous_failed_login,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        let mut settings = mapped_settings(&mapping(backend), &hr.url, &state);
        // One row per phone: bcruz102 has an office and a mobile number.
        settings.source.credentials = Some(
            "SELECT p.pw AS password_hash, p.login AS username FROM person p \
             JOIN person_phone ph ON ph.person_id = p.person_id WHERE p.login = :username"
                .into(),
        );
        settings.source.update_password = None;
        let app = state.spawn_with(settings).await;
        assert!(!login_succeeds(&app, "bcruz102", "pw-bcruz102").await);
        // A user with one phone row is one row: a normal login.
        assert!(login_succeeds(&app, "cdahl103", "pw-cdahl103").await);
        let audit = app.audit().await;
        assert!(
            audit.iter().any(|(u, outcome, reason, _)| u == "bcruz102"
                && outcome == "failure"
                && reason == "ambiguous_user"),
            "{audit:?}"
        );
        app.stop().await;
    }
);

on_all_backends!(
    writing_commands_are_refused_on_a_mapped_source,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        let before = HrFingerprint::take(&hr).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let csv = dir.path().join("employees.csv");
        std::fs::write(
            &csv,
            "username,email,nick_name\nnew.person,new.person@example.com,New Person\n",
        )
        .expect("write CSV");
        let csv = csv.display().to_string();
        for (args, stdin) in [
            (vec!["set-password", "aberg101"], "new-password\n"),
            (vec!["import", "--employees", csv.as_str()], ""),
            (
                vec!["seed-demo", "--employees", "5", "--departments", "2"],
                "",
            ),
        ] {
            let output = run_mapped(&args, backend, &hr.url, &state.url, &[], stdin);
            let text = out(&output);
            assert!(!output.status.success(), "{args:?}: {text}");
            assert!(
                text.contains("[source]") && text.contains(args[0]),
                "{args:?}: {text}"
            );
        }
        assert_eq!(before, HrFingerprint::take(&hr).await);
    }
);

on_all_backends!(
    forgiving_types_serve_integers_as_text_and_refuse_unclear_active,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        let employees = |active: &str| {
            format!(
                "SELECT p.login AS username, p.mail AS email, p.given_name AS nick_name, \
                 p.staff_no AS ad_no, p.employer AS company, NULL AS phone1, NULL AS phone2, \
                 p.ext AS extension_no, p.sex AS gender, {active} AS active FROM person p"
            )
        };
        let spawn = |employees: String, departments: Option<&str>| {
            let mut settings = mapped_settings(&mapping(backend), &hr.url, &state);
            settings.source.employees = Some(employees);
            if let Some(departments) = departments {
                settings.source.departments = Some(departments.to_owned());
            }
            settings
        };
        // `active` as 0/1 integers; integer keys served as strings.
        let settings = spawn(
            employees("CASE WHEN p.status = 'A' THEN 1 ELSE 0 END"),
            Some(
                "SELECT u.unit_id AS group_no, u.unit_name AS display_name, \
                 u.parent_unit_id AS parent_group_no, \
                 CASE WHEN u.status = 'A' THEN 1 ELSE 0 END AS active FROM org_unit u",
            ),
        );
        let refused_two = spawn(
            employees(
                "CASE WHEN p.login = 'bcruz102' THEN 2 WHEN p.status = 'A' THEN 1 ELSE 0 END",
            ),
            None,
        );
        let refused_yes = spawn(
            employees("CASE WHEN p.status = 'A' THEN 1 ELSE 0 END"),
            Some(
                "SELECT u.unit_id AS group_no, u.unit_name AS display_name, \
                 u.parent_unit_id AS parent_group_no, 'yes' AS active FROM org_unit u",
            ),
        );
        let mut app = state.spawn_with(settings).await;
        let response = app.post_sync().await;
        assert_eq!(response.status(), 200);
        let body = json_body(response).await;
        let users = usernames(&body);
        assert_eq!(users.len(), 28);
        assert!(!users.iter().any(|u| u == "efox105"));
        let ben = body["user_info_list"]
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["username"] == "bcruz102")
            .expect("bcruz102 served");
        assert_eq!(ben["ad_no"], "5102");
        let optics = group(&body, "211").expect("group 211");
        assert_eq!(optics["parent_group_no"], "21");
        assert!(group(&body, "32").is_none());

        for (settings, record, shown) in [
            (refused_two, "employee \"bcruz102\"", "active is 2"),
            (refused_yes, "department \"10\"", "active is \"yes\""),
        ] {
            let url = app.spawn_sibling(settings).await;
            let response = app
                .client
                .post(format!("{url}/sync"))
                .basic_auth(
                    crate::helpers::OMFLOW_USER,
                    Some(crate::helpers::OMFLOW_PASSWORD),
                )
                .send()
                .await
                .expect("request sent");
            assert_eq!(response.status(), 409);
            let message = fail_message(response).await;
            assert!(message.contains(&format!("{record}: {shown}")), "{message}");
        }
        app.stop().await;
    }
);

on_all_backends!(
    failed_rehash_write_never_fails_the_login,
    |state: TestDb| async move {
        let backend = state.backend;
        let hr = foreign_hr(backend).await;
        // As shipped, with update_password, but the user may not write (SQLite:
        // the file opened read-only): the rehash fails, the logins do not.
        let ro = hr.read_only_user(&FOREIGN_TABLES, &[]).await;
        let settings = mapped_settings(&mapping(backend), &ro.url, &state);
        assert!(settings.source.update_password.is_some());
        let app = state.spawn_with(settings).await;
        let hash = || async {
            hr.rows("SELECT pw FROM person WHERE login = 'cdahl103'")
                .await[0][0]
                .clone()
                .expect("hash")
        };
        let before = hash().await;
        for _ in 0..3 {
            assert!(login_succeeds(&app, "cdahl103", "pw-cdahl103").await);
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        assert_eq!(hash().await, before);
        app.stop().await;
        drop(ro);
    }
);
