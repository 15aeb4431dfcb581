//! `hr-bridge import`: CSV upserts in one transaction, every problem with its line
//! number, nothing written on error.

use std::path::Path;
use std::process::{Command, Output};

use crate::helpers::{json_body, TestApp};
use crate::on_all_backends;

fn import(app: &TestApp, dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hr-bridge"));
    command
        .current_dir(dir)
        .env("HR_BRIDGE__DATABASE__URL", &app.test_db.url)
        .env("RUST_LOG", "warn")
        .arg("import");
    command.args(args).output().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const DEPARTMENTS: &str = "\u{feff}group_no,display_name,parent_group_no,active\n\
    ENG,Engineering,HQ,true\n\
    HQ,Head Office,,1\n\
    OLD,Old,HQ,false\n";
const EMPLOYEES: &str = "username,email,nick_name,gender,phone1,active\n\
    alice,alice@example.com,Alice,F,111,TRUE\n\
    bob,bob@example.com,\"Bob, Jr.\",m,,1\n\
    carol,carol@example.com,Carol,,,0\n";
const MEMBERS: &str = "group_no,username\nENG,alice\nENG,bob\nHQ,carol\n";

async fn users(app: &TestApp) -> Vec<String> {
    let body = json_body(app.post_sync().await).await;
    body["user_info_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

/// A folder holding the three sample CSV files.
fn sample_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "departments.csv", DEPARTMENTS);
    write(dir.path(), "employees.csv", EMPLOYEES);
    write(dir.path(), "members.csv", MEMBERS);
    dir
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const ALL: [&str; 6] = [
    "--departments",
    "departments.csv",
    "--employees",
    "employees.csv",
    "--members",
    "members.csv",
];

on_all_backends!(
    import_upserts_all_files_in_one_go,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let dir = sample_files();

        let dry = import(&app, dir.path(), &[&ALL[..], &["--dry-run"]].concat());
        assert!(dry.status.success(), "{}", stderr(&dry));
        assert!(
            stdout(&dry).contains("employees: 3 added, 0 updated, 0 unchanged, 0 deleted"),
            "{}",
            stdout(&dry)
        );
        assert!(stdout(&dry).contains("dry run"));
        assert!(users(&app).await.is_empty(), "a dry run wrote something");

        let done = import(&app, dir.path(), &ALL);
        assert!(done.status.success(), "{}", stderr(&done));
        let body = json_body(app.post_sync().await).await;
        assert_eq!(body["user_info_list"].as_array().unwrap().len(), 2);
        assert_eq!(body["user_info_list"][1]["nick_name"], "Bob, Jr.");
        assert_eq!(body["user_info_list"][0]["gender"], "female");
        assert_eq!(
            body["group_info_list"][0]["user_list"],
            serde_json::json!(["alice", "bob"])
        );

        // Again: nothing changes. Then one change; the stored hash is kept.
        crate::authenticate::add_employee(
            &app,
            "dave",
            Some(&crate::authenticate::argon2id("pw")),
            true,
        )
        .await;
        let again = import(&app, dir.path(), &ALL);
        assert!(
            stdout(&again).contains("employees: 0 added, 0 updated, 3 unchanged"),
            "{}",
            stdout(&again)
        );
        write(
            dir.path(),
            "employees.csv",
            "username,email,nick_name\ndave,dave@new.example.com,Dave\n",
        );
        let update = import(&app, dir.path(), &["--employees", "employees.csv"]);
        assert!(
            stdout(&update).contains("employees: 0 added, 1 updated"),
            "{}",
            stdout(&update)
        );
        let login = json_body(app.post_authenticate("dave", "pw").await).await;
        assert_eq!(login["status"], "success");
    }
);

on_all_backends!(
    import_replace_deletes_rows_missing_from_the_file,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let dir = sample_files();
        assert!(import(&app, dir.path(), &ALL).status.success());
        write(
            dir.path(),
            "employees.csv",
            "username,email,nick_name\nalice,alice@example.com,Alice\n",
        );
        let out = import(
            &app,
            dir.path(),
            &["--employees", "employees.csv", "--replace"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("2 deleted"), "{}", stdout(&out));
        assert_eq!(users(&app).await, ["alice"]);
    }
);

on_all_backends!(
    import_reports_every_problem_with_its_line_and_writes_nothing,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let dir = sample_files();
        assert!(import(&app, dir.path(), &ALL).status.success());
        let before = users(&app).await;

        // Problems found in the files alone.
        write(
            dir.path(),
            "employees.csv",
            "username,email,nick_name,fax\nx,x@e.com,X,1\n",
        );
        write(
            dir.path(),
            "departments.csv",
            "group_no,display_name,active\nA,A,maybe\nA,Again,true\n",
        );
        write(
            dir.path(),
            "members.csv",
            "group_no,username\nENG,alice\nENG,alice\n",
        );
        let out = import(&app, dir.path(), &ALL);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("employees.csv:1: unknown column \"fax\""),
            "{err}"
        );
        assert!(
            err.contains("departments.csv:2: active must be true, false, 1 or 0, not \"maybe\""),
            "{err}"
        );
        assert!(
            err.contains("departments.csv:3: duplicate group_no \"a\" (first at line 2)"),
            "{err}"
        );
        assert!(err.contains("members.csv:3: duplicate membership"), "{err}");

        // Problems found against the database: unknown parent, member, cycle, email.
        write(
            dir.path(),
            "departments.csv",
            "group_no,display_name,parent_group_no\nX,X,NOPE\nC1,C1,C2\nC2,C2,C1\n",
        );
        write(
            dir.path(),
            "employees.csv",
            "username,email,nick_name\nzed,ALICE@example.com,Zed\n",
        );
        write(
            dir.path(),
            "members.csv",
            "group_no,username\nENG,ghost\nGONE,alice\n",
        );
        let out = import(&app, dir.path(), &ALL);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        for expected in [
        "departments.csv:2: department \"X\" has parent_group_no \"NOPE\", which is neither in the file nor in the database",
        "departments.csv:3: departments form a parent cycle: C1 → C2 → C1",
        "members.csv:2: unknown employee \"ghost\"",
        "members.csv:3: member of unknown department \"GONE\"",
        "is already used by employee",
        "nothing was written",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
        assert_eq!(
            users(&app).await,
            before,
            "a failed import changed the data"
        );
    }
);
