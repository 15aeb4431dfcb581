//! The CSV parser on its own: headers, values, line numbers, as properties
//! over files written by a real CSV writer.

use std::collections::BTreeMap;
use std::io::Write;

use proptest::prelude::*;

use super::parse::{parse_file, CsvTable, ImportProblem, TableSpec, DEPARTMENTS, EMPLOYEES};
use crate::db::Cell;

/// Parses `bytes` as a file of `spec`.
fn parse(bytes: &[u8], spec: &TableSpec) -> (Option<CsvTable>, Vec<ImportProblem>) {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(bytes).expect("the file is written");
    let mut found = Vec::new();
    let table = parse_file(file.path(), spec, &mut found);
    (table, found)
}

fn reasons(found: &[ImportProblem]) -> Vec<(u64, String)> {
    found.iter().map(|p| (p.line, p.reason.clone())).collect()
}

#[test]
fn headers_name_unknown_repeated_and_missing_columns() {
    let (table, found) = parse(b"username,nick,username\n", &EMPLOYEES);
    assert!(table.is_none());
    let found = reasons(&found);
    assert!(
        found.iter().any(|(l, r)| *l == 1
            && r.starts_with("unknown column \"nick\"; employees has: username, email, nick_name")),
        "{found:?}"
    );
    assert!(
        found.contains(&(1, "column \"username\" appears twice".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&(1, "missing required column \"email\"".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&(1, "missing required column \"nick_name\"".into())),
        "{found:?}"
    );
}

#[test]
fn a_byte_order_mark_and_blanks_around_names_are_fine() {
    let (table, found) = parse(
        b"\xef\xbb\xbf group_no , display_name\nHQ,Head office\n",
        &DEPARTMENTS,
    );
    assert!(found.is_empty(), "{found:?}");
    let table = table.expect("parsed");
    assert_eq!(table.columns, ["group_no", "display_name"]);
    assert_eq!(
        table.records[0].cells["display_name"],
        Cell::Text(Some("Head office".into()))
    );
}

#[test]
fn bad_values_are_named_with_their_line() {
    let file =
        "group_no,display_name,active\r\nA,,true\r\nB,Bee,yes\r\nC\u{1b},Sea,0\r\nD,D\0,1\r\n";
    let (_, found) = parse(file.as_bytes(), &DEPARTMENTS);
    let found = reasons(&found);
    assert!(
        found.contains(&(2, "display_name is empty".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&(3, "active must be true, false, 1 or 0, not \"yes\"".into())),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(l, r)| *l == 4 && r.starts_with("group_no ")),
        "{found:?}"
    );
    assert!(
        found.contains(&(5, "display_name contains a NUL byte".into())),
        "{found:?}"
    );
}

#[test]
fn a_row_of_the_wrong_width_is_named() {
    let (_, found) = parse(b"group_no,display_name\nA,Ay\nB\n", &DEPARTMENTS);
    assert_eq!(
        reasons(&found),
        [(3, "the row has 1 field(s) but the header has 2".to_owned())]
    );
}

/// One employee row as written, and the cells the parser must make of it.
#[derive(Debug, Clone)]
struct Employee {
    username: String,
    email: String,
    nick_name: String,
    company: String,
    gender: (&'static str, Option<&'static str>),
    active: (&'static str, bool),
}

fn employee() -> impl Strategy<Value = Employee> {
    (
        "[a-z0-9._-]{1,12}",
        "[a-z]{1,8}@[a-z]{1,8}\\.example",
        // Any text but NUL, line breaks and quotes included.
        "[^\u{0}]{1,20}",
        "[^\u{0}]{0,20}",
        prop::sample::select(vec![
            ("male", Some("male")),
            ("F", Some("female")),
            (" m ", Some("male")),
            ("female", Some("female")),
            ("", None),
        ]),
        prop::sample::select(vec![
            ("true", true),
            ("0", false),
            ("FALSE", false),
            ("1", true),
        ]),
    )
        .prop_map(
            |(username, email, nick_name, company, gender, active)| Employee {
                username,
                email,
                nick_name,
                company,
                gender,
                active,
            },
        )
}

proptest! {
    #[test]
    fn written_rows_come_back_with_their_lines(
        employees in prop::collection::vec(employee(), 0..12),
        crlf in any::<bool>(),
    ) {
        let mut writer = csv::WriterBuilder::new()
            .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
            .from_writer(Vec::new());
        writer
            .write_record(["username", "email", "nick_name", "company", "gender", "active"])
            .expect("header");
        for e in &employees {
            writer
                .write_record([&e.username, &e.email, &e.nick_name, &e.company, e.gender.0, e.active.0])
                .expect("row");
        }
        let bytes = writer.into_inner().expect("flushed");
        let (table, found) = parse(&bytes, &EMPLOYEES);
        prop_assert!(found.is_empty(), "{:?}", found);
        let table = table.expect("parsed");
        prop_assert_eq!(table.records.len(), employees.len());
        // A record starts one line after the previous one ended; a quoted
        // field holding line breaks spans several.
        let mut line = 2;
        for (e, record) in employees.iter().zip(&table.records) {
            prop_assert_eq!(record.line, line);
            let text = |s: &str| Cell::Text((!s.is_empty()).then(|| s.to_owned()));
            let expected = BTreeMap::from([
                ("username", text(&e.username)),
                ("email", text(&e.email)),
                ("nick_name", text(&e.nick_name)),
                ("company", text(&e.company)),
                ("gender", Cell::Text(e.gender.1.map(str::to_owned))),
                ("active", Cell::Bool(e.active.1)),
            ]);
            prop_assert_eq!(&record.cells, &expected);
            let breaks = [&e.nick_name, &e.company]
                .iter()
                .map(|s| s.matches('\n').count() as u64)
                .sum::<u64>();
            line += 1 + breaks;
        }
    }
}
