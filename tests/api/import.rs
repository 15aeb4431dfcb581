//! `hr-bridge import`: CSV upserts in one transaction, every problem with its line
//! number, nothing written on error.

use std::path::Path;
use std::process::Output;

use crate::helpers::{json_body, TestApp};
use crate::on_all_backends;

fn import(app: &TestApp, dir: &Path, args: &[&str]) -> Output {
    let mut command = crate::helpers::binary();
    command
        .current_dir(dir)
        .env("HR_BRIDGE__DATABASE__URL", &app.test_db.url)
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
        "departments.csv:3: departments form a parent cycle: \"C1\" → \"C2\" → \"C1\"",
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

/// Each employee's email, by username.
async fn emails(app: &TestApp) -> Vec<(String, String)> {
    app.rows("SELECT username, email FROM employees ORDER BY username")
        .await
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect()
}

on_all_backends!(
    import_swaps_and_rotates_emails_between_employees,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "employees.csv",
            "username,email,nick_name\nalice,a@example.com,Alice\nbob,b@example.com,Bob\n\
             carol,c@example.com,Carol\n",
        );
        let first = import(&app, dir.path(), &["--employees", "employees.csv"]);
        assert!(first.status.success(), "{}", stderr(&first));

        // alice and bob swap; then carol takes alice's old one while alice takes
        // carol's (a rotation through three rows listed in an awkward order).
        write(
            dir.path(),
            "employees.csv",
            "username,email,nick_name\nalice,b@example.com,Alice\nbob,a@example.com,Bob\n",
        );
        let swap = import(&app, dir.path(), &["--employees", "employees.csv"]);
        assert!(swap.status.success(), "{}", stderr(&swap));
        assert_eq!(
            emails(&app).await,
            [
                ("alice".to_owned(), "b@example.com".to_owned()),
                ("bob".to_owned(), "a@example.com".to_owned()),
                ("carol".to_owned(), "c@example.com".to_owned()),
            ]
        );
        write(
            dir.path(),
            "employees.csv",
            "username,email,nick_name\ncarol,A@example.com,Carol\nbob,b@example.com,Bob\n\
             alice,c@example.com,Alice\n",
        );
        let rotate = import(&app, dir.path(), &["--employees", "employees.csv"]);
        assert!(rotate.status.success(), "{}", stderr(&rotate));

        // A new employee takes the email of one who gets another, listed first: on
        // MySQL an upsert would fire on the email key and overwrite bob's row.
        write(
            dir.path(),
            "employees.csv",
            "username,email,nick_name\ndave,b@example.com,Dave\nbob,bob@example.com,Bob\n",
        );
        let takeover = import(&app, dir.path(), &["--employees", "employees.csv"]);
        assert!(takeover.status.success(), "{}", stderr(&takeover));
        assert_eq!(
            emails(&app).await,
            [
                ("alice".to_owned(), "c@example.com".to_owned()),
                ("bob".to_owned(), "bob@example.com".to_owned()),
                ("carol".to_owned(), "A@example.com".to_owned()),
                ("dave".to_owned(), "b@example.com".to_owned()),
            ]
        );
        let names = app
            .rows("SELECT nick_name FROM employees ORDER BY username")
            .await;
        assert_eq!(
            names,
            [["Alice"], ["Bob"], ["Carol"], ["Dave"]].map(|[n]| vec![Some(n.to_owned())])
        );

        // --replace: a deleted employee's email goes to a new one in the same run.
        write(
            dir.path(),
            "employees.csv",
            "username,email,nick_name\nalice,c@example.com,Alice\nbob,bob@example.com,Bob\n\
             carol,A@example.com,Carol\nerin,b@example.com,Erin\n",
        );
        let replaced = import(
            &app,
            dir.path(),
            &["--employees", "employees.csv", "--replace"],
        );
        assert!(replaced.status.success(), "{}", stderr(&replaced));
        assert_eq!(
            users(&app).await,
            ["alice", "bob", "carol", "erin"],
            "{}",
            stdout(&replaced)
        );
    }
);

on_all_backends!(
    import_refused_by_the_database_says_why_in_one_line_and_writes_nothing,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let dir = sample_files();
        assert!(import(&app, dir.path(), &ALL).status.success());
        // A rule of the operator's own that hr-bridge does not know about.
        app.exec("CREATE UNIQUE INDEX employees_ad_no_unique ON employees (ad_no)")
            .await;
        let before = emails(&app).await;
        write(
            dir.path(),
            "employees.csv",
            "username,email,nick_name,ad_no\nalice,b@example.com,Alice,7\n\
             bob,alice@example.com,Bob,8\nnew1,new1@example.com,New,9\nnew2,new2@example.com,New,9\n",
        );
        let out = import(&app, dir.path(), &["--employees", "employees.csv"]);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: the database refused the import, nothing was written: "),
            "{err}"
        );
        assert!(
            !stdout(&out).contains("added"),
            "a refused import printed a plan that did not happen: {}",
            stdout(&out)
        );
        assert_eq!(
            emails(&app).await,
            before,
            "a refused import wrote something"
        );
    }
);

on_all_backends!(
    import_reports_crlf_lines_odd_bytes_and_every_stage_at_once,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let dir = sample_files();
        assert!(import(&app, dir.path(), &ALL).status.success());
        let before = users(&app).await;
        // What Excel writes: CRLF line breaks, here with a quoted field spanning
        // two lines, a bad gender on line 5, and a duplicate email on line 6.
        write(
            dir.path(),
            "employees.csv",
            "username,email,nick_name,gender\r\nx1,x1@e.com,X1,\r\nx2,x2@e.com,\"Two\r\nLines\",\r\n\
             x3,x3@e.com,X3,robot\r\nx4,X1@e.com,X4,\r\n",
        );
        // Bytes that are not UTF-8 on line 3, a NUL byte on line 4.
        let mut departments = b"group_no,display_name\r\nD1,Fine\r\nD2,Caf".to_vec();
        departments.extend_from_slice(b"\xe9\r\nD3,Nul\0l\r\n");
        std::fs::write(dir.path().join("departments.csv"), departments).unwrap();
        // A later stage: members naming an employee and a department nobody has.
        write(
            dir.path(),
            "members.csv",
            "group_no,username\r\nENG,ghost\r\nNOWHERE,alice\r\n",
        );
        let out = import(&app, dir.path(), &ALL);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        for expected in [
            "employees.csv:5: gender must be male, female or empty, not \"robot\"",
            "employees.csv:6: duplicate email \"x1@e.com\" (first at line 2)",
            "departments.csv:3: field 2 is not valid UTF-8",
            "departments.csv:4: display_name contains a NUL byte",
            "members.csv:2: unknown employee \"ghost\"",
            "members.csv:3: member of unknown department \"NOWHERE\"",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            users(&app).await,
            before,
            "a failed import changed the data"
        );
    }
);

/// Runs the import of `args` as a dry run and then for real: both must agree,
/// succeeding where `ok`, else both failing, the dry run saying `why`.
fn dry_run_agrees(app: &TestApp, dir: &Path, args: &[&str], ok: bool, why: &str) {
    let dry = import(app, dir, &[args, &["--dry-run"]].concat());
    let real = import(app, dir, args);
    assert_eq!(
        (dry.status.success(), real.status.success()),
        (ok, ok),
        "{args:?}\ndry run: {}{}\nreal run: {}{}",
        stdout(&dry),
        stderr(&dry),
        stdout(&real),
        stderr(&real)
    );
    if !ok {
        assert!(
            stderr(&dry).contains(why),
            "{why} missing from: {}",
            stderr(&dry)
        );
        assert!(
            stderr(&dry).contains("nothing was written") || stderr(&dry).contains("would refuse")
        );
    }
}

on_all_backends!(
    a_dry_run_finds_every_key_the_database_would_refuse,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "employees.csv",
            "username,email,nick_name\nalice,alice@example.com,Alice\njose,jose@example.com,Jose\n",
        );
        write(
            dir.path(),
            "departments.csv",
            "group_no,display_name\nENG,Engineering\n",
        );
        assert!(import(
            &app,
            dir.path(),
            &[
                "--employees",
                "employees.csv",
                "--departments",
                "departments.csv"
            ]
        )
        .status
        .success());
        // MariaDB's utf8mb4_unicode_ci holds each of these equal to another key;
        // PostgreSQL and SQLite compare bytes and take them as new keys.
        let folds = app.backend() != Backend::MySql;
        let employees = ["--employees", "employees.csv"];
        for (file, why) in [
            // Case, against a stored key.
            ("username,email,nick_name\nALICE,alice2@example.com,Alice\n",
             "employees.csv:2: username \"ALICE\" is the same key as the stored \"alice\""),
            // Trailing spaces, within the file.
            ("username,email,nick_name\nbob,bob@example.com,Bob\nbob ,bob2@example.com,Bob\n",
             "employees.csv:3: username \"bob \" is the same key as \"bob\" at line 2"),
            // Emoji, which this collation does not tell apart.
            ("username,email,nick_name\nfox🦊,fox1@example.com,Fox\nfox🐶,fox2@example.com,Dog\n",
             "username \"fox🐶\" is the same key as \"fox🦊\" at line 2"),
            // Accents, in the email's unique index.
            ("username,email,nick_name\nann,josé@example.com,Ann\n",
             "employees.csv:2: email \"josé@example.com\" of \"ann\" is the same as email \"jose@example.com\" of employee \"jose\""),
            // Longer than MariaDB's VARCHAR(1024) holds: only the database knows.
            (&*format!("username,email,nick_name\nlong,long@example.com,{}\n", "n".repeat(1100)),
             "the database would refuse the import"),
        ] {
            write(dir.path(), "employees.csv", file);
            dry_run_agrees(&app, dir.path(), &employees, folds, why);
        }
        // An upsert that MariaDB would land on the stored "ENG" while the plan
        // called it new: refused before anything is written.
        write(
            dir.path(),
            "departments.csv",
            "group_no,display_name\neng,Lower\n",
        );
        dry_run_agrees(
            &app,
            dir.path(),
            &["--departments", "departments.csv"],
            folds,
            "departments.csv:2: group_no \"eng\" is the same key as the stored \"ENG\"",
        );
        if !folds {
            let names = app
                .rows("SELECT display_name FROM departments WHERE group_no = 'ENG'")
                .await;
            assert_eq!(names, [[Some("Engineering".to_owned())]]);
        }
        // Memberships compare as pairs.
        write(dir.path(), "members.csv", "group_no,username\nENG,alice\n");
        assert!(import(&app, dir.path(), &["--members", "members.csv"])
            .status
            .success());
        write(
            dir.path(),
            "members.csv",
            "group_no,username\nENG,jose\nEng,jose \n",
        );
        let members = ["--members", "members.csv"];
        if folds {
            // Elsewhere "Eng" is no department and "jose " no employee.
            let out = import(&app, dir.path(), &members);
            assert!(!out.status.success());
        } else {
            dry_run_agrees(
                &app,
                dir.path(),
                &members,
                false,
                "members.csv:3: group_no / username \"Eng / jose \" is the same key as \"ENG / jose\" at line 2",
            );
        }
    }
);
