//! `hr-bridge import`: CSV files in, one all-or-nothing upsert out. Every problem is
//! reported as `FILE:LINE: reason` and nothing is written unless there is none.

mod parse;
#[cfg(test)]
mod parse_tests;

pub use parse::{
    parse_file, CsvTable, ImportProblem, Record, TableSpec, DEPARTMENTS, EMPLOYEES, MEMBERS,
};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use crate::db::{Cell, Db, DbCause, DbError, DirectoryTables, KeyRow, TableWrite};
use crate::escape::quote;
use parse::{duplicates, problem};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} problem(s) in the CSV files; nothing was written", .0.len())]
    Invalid(Vec<ImportProblem>),
    /// The current rows could not be read: nothing was planned or written.
    #[error("cannot read the current HR tables, nothing was written: {}", one_line(.0))]
    Read(#[source] DbError),
    /// The database refused the writes: the transaction was rolled back.
    #[error("the database refused the import, nothing was written: {}", one_line(.0))]
    Write(#[source] DbError),
    /// A dry run's writes were refused (and rolled back, as always).
    #[error("the database would refuse the import (a dry run tries the writes and rolls them back): {}", one_line(.0))]
    WouldRefuse(#[source] DbError),
    /// The keys could not be compared the way the database compares them.
    #[error("cannot compare the keys as the database does, nothing was written: {}", one_line(.0))]
    Compare(#[source] DbError),
}

/// A database error as one line: the database's own message (and the constraint it
/// names), without the driver's wrapping.
fn one_line(e: &DbError) -> String {
    let text = match e {
        DbError::Query(DbCause::Sqlx(sqlx::Error::Database(db))) => match db.constraint() {
            Some(constraint) => format!("{} (constraint {constraint})", db.message()),
            None => db.message().to_owned(),
        },
        other => other.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The CSV files to import.
#[derive(Debug, Default)]
pub struct ImportRequest {
    pub employees: Option<PathBuf>,
    pub departments: Option<PathBuf>,
    pub members: Option<PathBuf>,
    /// Delete rows of the given tables that the files do not list.
    pub replace: bool,
}

/// What an import does (or, with `--dry-run`, would do) to one table.
#[derive(Debug, Default)]
pub struct TableChange {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
    pub deleted: Vec<String>,
}

#[derive(Debug, Default)]
pub struct ImportPlan {
    pub employees: TableChange,
    pub departments: TableChange,
    pub members: TableChange,
    write: Vec<TableWrite>,
}

/// Existing rows of one table as records, keyed like the file's.
fn existing(rows: Vec<BTreeMap<&'static str, Cell>>, spec: &TableSpec) -> BTreeMap<String, Record> {
    rows.into_iter()
        .map(|cells| {
            let record = Record { line: 0, cells };
            (record.key(spec), record)
        })
        .collect()
}

/// Merges a file into the existing rows; returns the merged view and the change.
fn merge(
    spec: &TableSpec,
    file: Option<&CsvTable>,
    mut current: BTreeMap<String, Record>,
    replace: bool,
) -> Merged {
    let mut change = TableChange::default();
    let Some(file) = file else {
        return Merged {
            all: current,
            change,
            ..Merged::default()
        };
    };
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    let listed: HashSet<String> = file.records.iter().map(|r| r.key(spec)).collect();
    let mut deletes = Vec::new();
    if replace {
        let gone: Vec<String> = current
            .keys()
            .filter(|k| !listed.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            current.remove(&key);
            change.deleted.push(key.replace('\u{1f}', " / "));
            deletes.push(key);
        }
    }
    for record in &file.records {
        let key = record.key(spec);
        match current.get_mut(&key) {
            None => {
                change.added.push(key.replace('\u{1f}', " / "));
                inserts.push(record.clone());
                current.insert(key, record.clone());
            }
            Some(old) => {
                let differs = record
                    .cells
                    .iter()
                    .any(|(c, v)| old.cells.get(c) != Some(v));
                if differs {
                    change.updated.push(key.replace('\u{1f}', " / "));
                    updates.push(record.clone());
                    for (c, v) in &record.cells {
                        old.cells.insert(c, v.clone());
                    }
                    old.line = record.line;
                } else {
                    change.unchanged += 1;
                    old.line = record.line;
                }
            }
        }
    }
    Merged {
        all: current,
        change,
        inserts,
        updates,
        deletes,
    }
}

/// A file merged into a table's stored rows.
#[derive(Default)]
struct Merged {
    /// Every row as it would be after the import.
    all: BTreeMap<String, Record>,
    change: TableChange,
    /// Rows whose key is new.
    inserts: Vec<Record>,
    /// Stored rows the file changes.
    updates: Vec<Record>,
    /// Keys of stored rows to delete (`--replace`).
    deletes: Vec<String>,
}

/// Parses and validates the files against the database, and plans the writes.
/// Every problem of every file is reported at once: the checks against the
/// database run even when a file already has problems of its own.
pub async fn plan(db: &Db, request: &ImportRequest) -> Result<ImportPlan, ImportError> {
    let mut found = Vec::new();
    let employees = request
        .employees
        .as_deref()
        .and_then(|p| parse_file(p, &EMPLOYEES, &mut found));
    let departments = request
        .departments
        .as_deref()
        .and_then(|p| parse_file(p, &DEPARTMENTS, &mut found));
    let members = request
        .members
        .as_deref()
        .and_then(|p| parse_file(p, &MEMBERS, &mut found));
    // A file given but unreadable (bad header) says nothing about its rows: skip
    // the checks that would need them rather than report their absence.
    let employees_known = request.employees.is_none() || employees.is_some();
    let departments_known = request.departments.is_none() || departments.is_some();
    if let Some(t) = &employees {
        duplicates(
            t,
            "username",
            |r| r.text("username").map(str::to_lowercase),
            &mut found,
        );
        duplicates(
            t,
            "email",
            |r| r.text("email").map(str::to_lowercase),
            &mut found,
        );
    }
    if let Some(t) = &departments {
        duplicates(
            t,
            "group_no",
            |r| r.text("group_no").map(str::to_lowercase),
            &mut found,
        );
    }
    if let Some(t) = &members {
        duplicates(
            t,
            "membership",
            |r| Some(r.key(&MEMBERS).to_lowercase()),
            &mut found,
        );
    }

    let DirectoryTables {
        employees: db_employees,
        departments: db_departments,
        members: db_members,
    } = db.directory_tables().await.map_err(ImportError::Read)?;
    let stored_employees = existing(db_employees, &EMPLOYEES);
    let stored_departments = existing(db_departments, &DEPARTMENTS);
    let stored_members = existing(db_members, &MEMBERS);
    for (spec, file, stored) in [
        (&EMPLOYEES, &employees, &stored_employees),
        (&DEPARTMENTS, &departments, &stored_departments),
        (&MEMBERS, &members, &stored_members),
    ] {
        if let Some(file) = file {
            key_clashes(db, spec, file, stored, &mut found).await?;
        }
    }
    // Stored emails, for moving emails between employees (see `park_emails`).
    let stored_emails: HashMap<String, String> = stored_employees
        .iter()
        .filter_map(|(key, r)| Some((key.clone(), r.text("email")?.to_owned())))
        .collect();
    let employees_merged = merge(
        &EMPLOYEES,
        employees.as_ref(),
        stored_employees,
        request.replace,
    );
    let departments_merged = merge(
        &DEPARTMENTS,
        departments.as_ref(),
        stored_departments,
        request.replace,
    );
    let members_merged = merge(&MEMBERS, members.as_ref(), stored_members, request.replace);
    let all_employees = &employees_merged.all;
    let all_departments = &departments_merged.all;

    let file_of = |line: u64, table: Option<&CsvTable>| -> (String, u64) {
        (table.map_or_else(String::new, |t| t.label.clone()), line)
    };
    // Departments: parents exist, active ones have active parents, no cycles.
    for (key, record) in all_departments.iter().filter(|_| departments_known) {
        let Some(parent) = record.text("parent_group_no") else {
            continue;
        };
        let (file, line) = file_of(record.line, departments.as_ref());
        let parent_record = all_departments.get(parent);
        let report = |reason: String| problem(&file, line, reason);
        match parent_record {
            None => found.push(report(format!(
                "department {} has parent_group_no {}, which is neither in the file nor in the database", quote(key), quote(parent)
            ))),
            Some(p) => {
                let active = |r: &Record| !matches!(r.cells.get("active"), Some(Cell::Bool(false)));
                if active(record) && !active(p) {
                    found.push(report(format!(
                        "active department {} has parent {}, which is inactive", quote(key), quote(parent)
                    )));
                }
            }
        }
    }
    for cycle in cycles(all_departments) {
        let first = &cycle[0];
        let record = &all_departments[first];
        let (file, line) = file_of(record.line, departments.as_ref());
        let chain: Vec<String> = cycle
            .iter()
            .chain(Some(first))
            .map(|k| quote(k).to_string())
            .collect();
        found.push(problem(
            &file,
            line,
            format!("departments form a parent cycle: {}", chain.join(" → ")),
        ));
    }
    // Emails are unique across every employee, compared case-insensitively. Two
    // rows of the file sharing one were reported as duplicates already.
    let mut emails: HashMap<String, (&str, u64)> = HashMap::new();
    for (key, record) in all_employees.iter().filter(|_| employees_known) {
        let Some(email) = record.text("email") else {
            continue;
        };
        let Some((other, other_line)) = emails.insert(email.to_lowercase(), (key, record.line))
        else {
            continue;
        };
        if record.line > 0 && other_line > 0 {
            continue;
        }
        // Report it on the file's row, naming the stored one.
        let (culprit, line, holder) = if record.line > 0 {
            (key.as_str(), record.line, other)
        } else {
            (other, other_line, key.as_str())
        };
        let (file, line) = file_of(line, employees.as_ref());
        found.push(problem(
            &file,
            line,
            format!(
                "email {} of {} is already used by employee {}",
                quote(email),
                quote(culprit),
                quote(holder)
            ),
        ));
    }
    if let Some(file) = employees.as_ref().filter(|_| employees_known) {
        email_clashes(db, file, all_employees, &mut found).await?;
    }
    // Memberships from the file name an existing department and employee (stored
    // ones of deleted rows go with them: the schema cascades). Rows with an empty
    // key were reported when the file was read.
    for record in members_merged.all.values().filter(|r| r.line > 0) {
        let (file, line) = file_of(record.line, members.as_ref());
        let (Some(group), Some(user)) = (record.text("group_no"), record.text("username")) else {
            continue;
        };
        if departments_known && !all_departments.contains_key(group) {
            found.push(problem(
                &file,
                line,
                format!("member of unknown department {}", quote(group)),
            ));
        }
        if employees_known && !all_employees.contains_key(user) {
            found.push(problem(
                &file,
                line,
                format!("unknown employee {}", quote(user)),
            ));
        }
    }
    if !found.is_empty() {
        // Problems of rows that were already in the database carry no file.
        for p in &mut found {
            if p.file.is_empty() {
                p.file = "(database)".into();
            }
        }
        found.sort();
        found.dedup();
        return Err(ImportError::Invalid(found));
    }

    let parked = park_emails(&employees_merged, &stored_emails);
    let employee_columns = column_list(employees.as_ref());
    let write = vec![
        TableWrite::DeleteMembers {
            pairs: members_merged
                .deletes
                .iter()
                .filter_map(|k| k.split_once('\u{1f}'))
                .map(|(g, u)| (g.to_owned(), u.to_owned()))
                .collect(),
        },
        // Deleted employees go first, so that their emails are free for others.
        TableWrite::Delete {
            table: EMPLOYEES.table,
            key: "username",
            keys: employees_merged.deletes,
        },
        TableWrite::ParkEmails { pairs: parked },
        // Parents before children, so that every new parent exists when referenced.
        upsert(
            &DEPARTMENTS,
            column_list(departments.as_ref()),
            parents_first(
                departments_merged
                    .updates
                    .into_iter()
                    .chain(departments_merged.inserts)
                    .collect(),
            ),
        ),
        upsert(
            &EMPLOYEES,
            employee_columns.clone(),
            employees_merged.updates,
        ),
        // New employees by plain INSERT: on MySQL an upsert also fires on the email
        // key and would overwrite whichever employee holds that email.
        insert(&EMPLOYEES, employee_columns, employees_merged.inserts),
        upsert(
            &MEMBERS,
            column_list(members.as_ref()),
            members_merged
                .updates
                .into_iter()
                .chain(members_merged.inserts)
                .collect(),
        ),
        // Departments last: their children have been moved or deleted by now.
        TableWrite::Delete {
            table: DEPARTMENTS.table,
            key: "group_no",
            keys: departments_merged.deletes,
        },
    ];
    Ok(ImportPlan {
        employees: employees_merged.change,
        departments: departments_merged.change,
        members: members_merged.change,
        write,
    })
}

fn column_list(table: Option<&CsvTable>) -> Vec<&'static str> {
    table.map(|t| t.columns.clone()).unwrap_or_default()
}

/// Stored employees whose email another employee of this import takes (a swap or
/// rotation of emails), each with a temporary unique email to hold meanwhile.
///
/// The unique index on `email` is checked row by row, so giving alice bob's email
/// before bob has his new one fails even though the end state is valid. Moving the
/// emails that are taken over out of the way first, in the same transaction, makes
/// any order of the rows work; the updates then give every parked row its new email.
fn park_emails(
    employees: &Merged,
    stored_emails: &HashMap<String, String>,
) -> Vec<(String, String)> {
    // MySQL compares emails case-insensitively, so compare as it would.
    let wanted: HashMap<String, &str> = employees
        .updates
        .iter()
        .chain(&employees.inserts)
        .filter_map(|r| Some((r.text("email")?.to_lowercase(), r.text("username")?)))
        .collect();
    let taken: HashSet<String> = stored_emails.values().map(|e| e.to_lowercase()).collect();
    let mut placeholders = (0u64..)
        .map(|n| format!("hr-bridge-import-{n}.invalid"))
        .filter(|p| !taken.contains(p));
    let mut parked = Vec::new();
    for record in &employees.updates {
        let (Some(user), Some(new_email)) = (record.text("username"), record.text("email")) else {
            continue;
        };
        let Some(old_email) = stored_emails.get(user) else {
            continue;
        };
        if old_email == new_email {
            continue;
        }
        let taken_by_other = wanted
            .get(&old_email.to_lowercase())
            .is_some_and(|other| *other != user);
        if taken_by_other {
            if let Some(placeholder) = placeholders.next() {
                parked.push((user.to_owned(), placeholder));
            }
        }
    }
    parked
}

/// The upsert of `rows`, each laid out in the file's column order.
fn upsert(spec: &TableSpec, columns: Vec<&'static str>, rows: Vec<Record>) -> TableWrite {
    TableWrite::Insert {
        table: spec.table,
        update_on: Some(spec.key),
        rows: laid_out(&columns, rows),
        columns,
    }
}

/// Each row's cells in `columns` order; a missing cell is NULL.
fn laid_out(columns: &[&'static str], rows: Vec<Record>) -> Vec<Vec<Cell>> {
    rows.into_iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| r.cells.get(c).cloned().unwrap_or(Cell::Text(None)))
                .collect()
        })
        .collect()
}

/// The plain INSERT of new `rows`, each laid out in the file's column order.
fn insert(spec: &TableSpec, columns: Vec<&'static str>, rows: Vec<Record>) -> TableWrite {
    TableWrite::Insert {
        table: spec.table,
        update_on: None,
        rows: laid_out(&columns, rows),
        columns,
    }
}

/// Writes a plan in one transaction: all of it, or (on any error) nothing.
pub async fn apply(db: &Db, plan: &ImportPlan) -> Result<(), ImportError> {
    db.apply_import(&plan.write, true)
        .await
        .map_err(ImportError::Write)
}

/// Tries a plan's writes in one transaction and rolls it back: a dry run meets
/// whatever the database would refuse in the real run, and writes nothing.
pub async fn rehearse(db: &Db, plan: &ImportPlan) -> Result<(), ImportError> {
    db.apply_import(&plan.write, false)
        .await
        .map_err(ImportError::WouldRefuse)
}

/// Why two byte-wise different keys still clash, for the messages below.
const COLLATION_NOTE: &str = "to the database (MySQL/MariaDB compares keys by the column's \
    collation, which can ignore case, accents and trailing spaces); use one spelling";

/// Keys of `file` that the database would hold equal to a stored key or to
/// another key of the file although their bytes differ. On MySQL/MariaDB such a
/// row fails the real run (a duplicate key), or worse, an upsert lands on the
/// stored row of the other spelling; a byte-wise plan would call it new.
async fn key_clashes(
    db: &Db,
    spec: &TableSpec,
    file: &CsvTable,
    stored: &BTreeMap<String, Record>,
    found: &mut Vec<ImportProblem>,
) -> Result<(), ImportError> {
    let mut owners: Vec<(u64, String)> = Vec::with_capacity(stored.len() + file.records.len());
    owners.extend(stored.keys().map(|k| (0, k.clone())));
    owners.extend(file.records.iter().map(|r| (r.line, r.key(spec))));
    let rows: Vec<KeyRow> = owners
        .iter()
        .map(|(line, owner)| KeyRow {
            line: *line,
            owner,
            values: owner.split('\u{1f}').collect(),
        })
        .collect();
    let columns: Vec<&'static str> = spec.key.to_vec();
    let pairs = db
        .collation_clashes(spec.table, &columns, &rows)
        .await
        .map_err(ImportError::Compare)?;
    let what = spec.key.join(" / ");
    let shown = |k: &str| quote(&k.replace('\u{1f}', " / ")).to_string();
    for (a, b) in pairs {
        let ((a_line, a_key), (b_line, b_key)) = (&owners[a], &owners[b]);
        let reason = if *a_line == 0 {
            format!(
                "{what} {} is the same key as the stored {} {COLLATION_NOTE}",
                shown(b_key),
                shown(a_key)
            )
        } else if a_key.to_lowercase() == b_key.to_lowercase() {
            // Reported as a duplicate of the file already.
            continue;
        } else {
            format!(
                "{what} {} is the same key as {} at line {a_line} {COLLATION_NOTE}",
                shown(b_key),
                shown(a_key)
            )
        };
        found.push(problem(&file.label, *b_line, reason));
    }
    Ok(())
}

/// Emails that the database would hold equal though their bytes differ, among
/// the employees as they would be after the import. Emails equal but for their
/// letter case are reported by the case-insensitive check already.
async fn email_clashes(
    db: &Db,
    file: &CsvTable,
    all: &BTreeMap<String, Record>,
    found: &mut Vec<ImportProblem>,
) -> Result<(), ImportError> {
    let people: Vec<(&str, &str, u64)> = all
        .iter()
        .filter_map(|(username, r)| Some((username.as_str(), r.text("email")?, r.line)))
        .collect();
    let rows: Vec<KeyRow> = people
        .iter()
        .map(|(username, email, line)| KeyRow {
            line: *line,
            owner: username,
            values: vec![email],
        })
        .collect();
    let pairs = db
        .collation_clashes(EMPLOYEES.table, &["email"], &rows)
        .await
        .map_err(ImportError::Compare)?;
    for (a, b) in pairs {
        let (mut first, mut second) = (people[a], people[b]);
        if first.1.to_lowercase() == second.1.to_lowercase() {
            continue;
        }
        // Reported on the later line of the file; a stored row has line 0.
        if first.2 > second.2 {
            std::mem::swap(&mut first, &mut second);
        }
        let holder = if first.2 == 0 {
            format!("employee {}", quote(first.0))
        } else {
            format!("{} at line {}", quote(first.0), first.2)
        };
        found.push(problem(
            &file.label,
            second.2,
            format!(
                "email {} of {} is the same as email {} of {holder} {COLLATION_NOTE}",
                quote(second.1),
                quote(second.0),
                quote(first.1)
            ),
        ));
    }
    Ok(())
}

/// Each loop in the parent links, from its smallest key, following parents.
fn cycles(all: &BTreeMap<String, Record>) -> Vec<Vec<String>> {
    let mut done: HashSet<&str> = HashSet::new();
    let mut found = Vec::new();
    for start in all.keys() {
        let mut path: Vec<&str> = Vec::new();
        let mut node = Some(start.as_str());
        while let Some(current) = node {
            if done.contains(current) {
                break;
            }
            if let Some(at) = path.iter().position(|p| *p == current) {
                let mut cycle: Vec<String> = path[at..].iter().map(|s| (*s).to_owned()).collect();
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.cmp(b.1))
                    .map_or(0, |(i, _)| i);
                cycle.rotate_left(min);
                found.push(cycle);
                break;
            }
            path.push(current);
            node = all.get(current).and_then(|r| r.text("parent_group_no"));
        }
        done.extend(path);
    }
    found
}

/// Orders department rows so that a parent listed in the same batch comes first.
fn parents_first(rows: Vec<Record>) -> Vec<Record> {
    let keys: HashSet<String> = rows
        .iter()
        .filter_map(|r| r.text("group_no").map(str::to_owned))
        .collect();
    let mut by_key: HashMap<String, Record> = rows
        .into_iter()
        .filter_map(|r| Some((r.text("group_no")?.to_owned(), r)))
        .collect();
    let mut ordered = Vec::with_capacity(by_key.len());
    let mut names: Vec<String> = keys.iter().cloned().collect();
    names.sort();
    fn visit(
        name: &str,
        by_key: &mut HashMap<String, Record>,
        keys: &HashSet<String>,
        out: &mut Vec<Record>,
    ) {
        let Some(record) = by_key.remove(name) else {
            return;
        };
        if let Some(parent) = record.text("parent_group_no") {
            if keys.contains(parent) {
                visit(parent, by_key, keys, out);
            }
        }
        out.push(record);
    }
    for name in names {
        visit(&name, &mut by_key, &keys, &mut ordered);
    }
    ordered
}
