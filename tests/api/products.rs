//! The shipped mappings (config/sources/*.toml) over real product layouts
//! (tests/fixtures/sources/{odoo,orangehrm,frappe}): each fixture holds one bad
//! row that `hr-bridge check` and `/sync` must name, and once it is fixed `/sync`
//! serves exactly what facts.json says.

use hr_bridge::db::Backend;
use hr_bridge::password::StoredHash;
use serde_json::Value as Json;

use crate::helpers::{
    binary, fail_message, json_body, mapped_settings, repo_file, repo_path, TestApp, TestDb,
};

/// The fields of a served user, in the order `/sync` writes them.
const USER_FIELDS: [&str; 9] = [
    "username",
    "email",
    "nick_name",
    "ad_no",
    "company",
    "phone1",
    "phone2",
    "extension_no",
    "gender",
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s<'a>(value: &'a Json, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
}

/// `hr-bridge check` as an operator runs it: the shipped mapping file plus the
/// URLs in the environment.
fn check(mapping: &std::path::Path, hr_url: &str, state_url: &str) -> std::process::Output {
    binary()
        .arg("--config")
        .arg(mapping)
        .arg("check")
        .env("HR_BRIDGE__DATABASE__URL", hr_url)
        .env("HR_BRIDGE__STATE__URL", state_url)
        .output()
        .expect("hr-bridge runs")
}

async fn login(app: &TestApp, facts: &Json, key: &str) -> bool {
    let response = app
        .post_authenticate(s(&facts[key], "username"), s(&facts[key], "password"))
        .await;
    assert_eq!(response.status(), 200);
    json_body(response).await["status"] == "success"
}

fn group<'a>(body: &'a Json, group_no: &str) -> &'a Json {
    body["group_info_list"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group_no"] == group_no)
        .unwrap_or_else(|| panic!("group {group_no} is served"))
}

fn in_group(body: &Json, group_no: &str, username: &str) -> bool {
    group(body, group_no)["user_list"]
        .as_array()
        .expect("user_list")
        .iter()
        .any(|u| u == username)
}

/// Runs one product fixture through check, /sync and /authenticate.
async fn product(dir: &str, backend: Backend) {
    let facts: Json = serde_json::from_str(&repo_file(&format!(
        "tests/fixtures/sources/{dir}/facts.json"
    )))
    .expect("facts.json");
    let Some(hr) = TestDb::create(backend).await else {
        return;
    };
    hr.load(&repo_file(s(&facts, "schema"))).await;
    let state = TestDb::create(Backend::Sqlite).await.expect("SQLite state");
    let mapping = repo_path(s(&facts, "mapping"));
    let bad = &facts["bad_row"];
    let bad_users: Vec<&str> = bad["usernames"]
        .as_array()
        .expect("usernames")
        .iter()
        .map(|u| u.as_str().expect("username"))
        .collect();

    // The bad row: `check` names it and exits 1, /sync refuses naming it.
    let output = check(&mapping, &hr.url, &state.url);
    let printed = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{printed}{}",
        text(&output.stderr)
    );
    let line = printed
        .lines()
        .find(|l| l.contains(s(bad, "email")))
        .unwrap_or_else(|| panic!("no line names the bad e-mail: {printed}"));
    for user in &bad_users {
        assert!(line.contains(user), "{line}");
    }
    assert_eq!(printed.lines().count(), 1, "exactly one problem: {printed}");

    let settings = mapped_settings(&mapping, &hr.url, &state);
    let app = state.spawn_with(settings).await;
    let response = app.post_sync().await;
    assert_eq!(response.status(), 409);
    let message = fail_message(response).await;
    for user in &bad_users {
        assert!(message.contains(user), "{message}");
    }

    // Fixed in the HR system: served as facts.json says.
    hr.load(s(bad, "fix_sql")).await;
    let output = check(&mapping, &hr.url, &app.test_db.url);
    assert!(output.status.success(), "{}", text(&output.stdout));
    let response = app.post_sync().await;
    assert_eq!(response.status(), 200);
    let raw = response.text().await.expect("body");
    let body: Json = serde_json::from_str(&raw).expect("JSON");
    let users = body["user_info_list"].as_array().expect("users");
    let groups = body["group_info_list"].as_array().expect("groups");
    assert_eq!(
        users.len() as u64,
        facts["served_users_after_fix"].as_u64().expect("n")
    );
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
        facts["served_memberships_after_fix"].as_u64().expect("n")
    );
    let two = &facts["two_departments"];
    for group_no in two["group_nos"].as_array().expect("group_nos") {
        assert!(in_group(
            &body,
            group_no.as_str().expect("group_no"),
            s(two, "username")
        ));
    }
    for gone in facts["not_served"].as_array().expect("not_served") {
        if let Some(username) = gone["username"].as_str() {
            assert!(!users.iter().any(|u| u["username"] == username), "{gone}");
        }
        if let Some(name) = gone["employee"].as_str() {
            assert!(!users.iter().any(|u| u["nick_name"] == name), "{gone}");
        }
    }
    // Frappe: a rehired person's Left record adds no membership.
    if let Some(rehired) = facts.get("rehired") {
        let name = s(rehired, "username");
        assert!(in_group(&body, s(rehired, "group_no"), name), "{rehired}");
        assert!(
            !in_group(&body, s(rehired, "left_group_no"), name),
            "a Left record's department lists {name}"
        );
    }
    if let Some(inactive) = facts["inactive_department"].as_str() {
        assert!(!groups.iter().any(|g| g["group_no"] == inactive));
    }
    // The user example, byte for byte as written in the payload.
    let example = &facts["user_example"];
    let fields: Vec<String> = USER_FIELDS
        .iter()
        .map(|f| format!("{}:{}", Json::from(*f), Json::from(s(example, f))))
        .collect();
    let expected = format!("{{{}}}", fields.join(","));
    assert!(raw.contains(&expected), "{expected} not in the payload");
    let department = &facts["department_example"];
    let served = group(&body, s(department, "group_no"));
    assert_eq!(served["display_name"], department["display_name"]);
    assert_eq!(served["parent_group_no"], department["parent_group_no"]);
    if let Some(root) = facts.get("root_department") {
        let served = group(&body, s(root, "group_no"));
        assert_eq!(served["display_name"], root["display_name"]);
        assert_eq!(served["parent_group_no"], "");
    }
    if let Some(multi) = facts.get("multi_company_user") {
        let name = s(multi, "username");
        let served: Vec<&Json> = users.iter().filter(|u| u["username"] == name).collect();
        assert_eq!(served.len(), 1, "{name} served once");
        assert_eq!(served[0]["company"], multi["company"]);
        assert_eq!(served[0]["phone1"], multi["phone1"]);
        for group_no in multi["group_nos"].as_array().expect("group_nos") {
            assert!(in_group(&body, group_no.as_str().expect("group_no"), name));
        }
    }

    // Logins.
    let ok_hash = hr_hash(&hr, dir, s(&facts["login_ok"], "username")).await;
    if StoredHash::parse(&ok_hash).is_ok() {
        assert!(login(&app, &facts, "login_ok").await, "login_ok");
    } else {
        // Odoo's passlib `$pbkdf2-sha512$` is accepted only once the "auth"
        // helper's hash formats merge; until then this login cannot verify.
        assert!(ok_hash.starts_with("$pbkdf2-sha512$"), "{ok_hash}");
        eprintln!("NOTE: {dir} login_ok not asserted: {ok_hash:.16}… is not verifiable yet");
    }
    assert!(!login(&app, &facts, "login_inactive").await);
    assert!(!login(&app, &facts, "login_disabled_account").await);
    // OrangeHRM: the installer's admin is employee 0001, served and able to log in.
    if facts.get("login_installer_admin").is_some() {
        assert!(
            users.iter().any(|u| u["username"] == "admin"),
            "admin served"
        );
        assert!(login(&app, &facts, "login_installer_admin").await, "admin");
    }
    // Frappe: statuses Suspended and Inactive are not served and cannot log in.
    for key in ["login_status_suspended", "login_status_inactive"] {
        if facts.get(key).is_some() {
            assert!(!login(&app, &facts, key).await, "{key}");
        }
    }
    // A name the database cannot compare (a 4-byte character against utf8mb3).
    if facts.get("login_uncomparable").is_some() {
        assert!(!login(&app, &facts, "login_uncomparable").await);
        let name = s(&facts["login_uncomparable"], "username");
        let audit = app.audit().await;
        assert!(
            audit
                .iter()
                .any(|(u, _, reason, _)| u == name && reason == "unknown_user"),
            "{audit:?}"
        );
    }
    app.stop().await;
}

/// The stored hash of `username` in the product's own table.
async fn hr_hash(hr: &TestDb, dir: &str, username: &str) -> String {
    let sql = match dir {
        "odoo" => format!("SELECT password FROM res_users WHERE login = '{username}'"),
        "orangehrm" => {
            format!("SELECT user_password FROM ohrm_user WHERE user_name = '{username}'")
        }
        _ => format!(
            "SELECT CAST(password AS CHAR) FROM __Auth WHERE doctype = 'User' \
             AND name = '{username}' AND fieldname = 'password'"
        ),
    };
    hr.rows(&sql).await[0][0].clone().expect("stored hash")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_mapping_on_postgres() {
    product("odoo", Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orangehrm_mapping_on_mariadb() {
    product("orangehrm", Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frappe_hr_mapping_on_mariadb() {
    product("frappe", Backend::MySql).await;
}

/// The release binary over OrangeHRM's real charset: a login name with a 4-byte
/// character is a plain failed login (200), logged once as a warning, with no
/// error and no backtrace in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orangehrm_uncomparable_login_is_a_plain_failed_login_in_the_log() {
    use std::process::Stdio;
    let Some(hr) = TestDb::create(Backend::MySql).await else {
        return;
    };
    let facts: Json =
        serde_json::from_str(&repo_file("tests/fixtures/sources/orangehrm/facts.json"))
            .expect("facts.json");
    hr.load(&repo_file(s(&facts, "schema"))).await;
    let state = TestDb::create(Backend::Sqlite).await.expect("SQLite state");
    let reserved = crate::helpers::free_port();
    let port = reserved.port();
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut child = binary()
        .arg("--config")
        .arg(repo_path(s(&facts, "mapping")))
        .arg("serve")
        .env("HR_BRIDGE__DATABASE__URL", &hr.url)
        .env("HR_BRIDGE__STATE__URL", &state.url)
        .env("HR_BRIDGE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("HR_BRIDGE__OMFLOW__USERNAME", crate::helpers::OMFLOW_USER)
        .env(
            "HR_BRIDGE__OMFLOW__PASSWORD",
            crate::helpers::OMFLOW_PASSWORD,
        )
        .env("HR_BRIDGE__AUTH__FAILURE_FLOOR_MS", "0")
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .stdout(Stdio::from(log.reopen().expect("log")))
        .stderr(Stdio::from(log.reopen().expect("log")))
        .spawn()
        .expect("serve starts");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    loop {
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "serve did not get ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let login = &facts["login_uncomparable"];
    let response = client
        .post(format!("{base}/authenticate"))
        .basic_auth(
            crate::helpers::OMFLOW_USER,
            Some(crate::helpers::OMFLOW_PASSWORD),
        )
        .json(&serde_json::json!({"username": s(login, "username"), "password": s(login, "password")}))
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let body = response.text().await.expect("body");
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(log.path()).expect("log");
    assert_eq!(status, 200, "{body}\n{text}");
    assert!(body.contains("\"fail\""), "{body}");
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("source.credentials failed"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(!text.contains("ERROR"), "{text}");
    assert!(!text.to_lowercase().contains("backtrace"), "{text}");
}
