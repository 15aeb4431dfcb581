//! `hr-bridge import`: CSV files in, one all-or-nothing upsert out. Every problem is
//! reported as `FILE:LINE: reason` and nothing is written unless there is none.

mod parse;

pub use parse::{
    parse_file, CsvTable, ImportProblem, Record, TableSpec, DEPARTMENTS, EMPLOYEES, MEMBERS,
};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use crate::db::{Cell, Db, DbError, DirectoryTables, TableWrite};
use parse::{duplicates, problem};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} problem(s) in the CSV files; nothing was written", .0.len())]
    Invalid(Vec<ImportProblem>),
    #[error(transparent)]
    Db(#[from] DbError),
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
) -> (
    BTreeMap<String, Record>,
    TableChange,
    Vec<Record>,
    Vec<String>,
) {
    let mut change = TableChange::default();
    let Some(file) = file else {
        return (current, change, Vec::new(), Vec::new());
    };
    let mut upserts = Vec::new();
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
                upserts.push(record.clone());
                current.insert(key, record.clone());
            }
            Some(old) => {
                let differs = record
                    .cells
                    .iter()
                    .any(|(c, v)| old.cells.get(c) != Some(v));
                if differs {
                    change.updated.push(key.replace('\u{1f}', " / "));
                    upserts.push(record.clone());
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
    (current, change, upserts, deletes)
}

/// Parses and validates the files against the database, and plans the writes.
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
    if !found.is_empty() {
        found.sort();
        return Err(ImportError::Invalid(found));
    }

    let DirectoryTables {
        employees: db_employees,
        departments: db_departments,
        members: db_members,
    } = db.directory_tables().await?;
    let (all_employees, employees_change, employee_upserts, employee_deletes) = merge(
        &EMPLOYEES,
        employees.as_ref(),
        existing(db_employees, &EMPLOYEES),
        request.replace,
    );
    let (all_departments, departments_change, department_upserts, department_deletes) = merge(
        &DEPARTMENTS,
        departments.as_ref(),
        existing(db_departments, &DEPARTMENTS),
        request.replace,
    );
    let (all_members, members_change, member_upserts, member_deletes) = merge(
        &MEMBERS,
        members.as_ref(),
        existing(db_members, &MEMBERS),
        request.replace,
    );

    let file_of = |line: u64, table: Option<&CsvTable>| -> (String, u64) {
        (table.map_or_else(String::new, |t| t.label.clone()), line)
    };
    // Departments: parents exist, active ones have active parents, no cycles.
    for (key, record) in &all_departments {
        let Some(parent) = record.text("parent_group_no") else {
            continue;
        };
        let (file, line) = file_of(record.line, departments.as_ref());
        let parent_record = all_departments.get(parent);
        let report = |reason: String| problem(&file, line, reason);
        match parent_record {
            None => found.push(report(format!(
                "department {key:?} has parent_group_no {parent:?}, which is neither in the file nor in the database"
            ))),
            Some(p) => {
                let active = |r: &Record| !matches!(r.cells.get("active"), Some(Cell::Bool(false)));
                if active(record) && !active(p) {
                    found.push(report(format!(
                        "active department {key:?} has parent {parent:?}, which is inactive"
                    )));
                }
            }
        }
    }
    for cycle in cycles(&all_departments) {
        let first = &cycle[0];
        let record = &all_departments[first];
        let (file, line) = file_of(record.line, departments.as_ref());
        let mut chain = cycle.clone();
        chain.push(first.clone());
        found.push(problem(
            &file,
            line,
            format!("departments form a parent cycle: {}", chain.join(" → ")),
        ));
    }
    // Emails are unique across every employee, compared case-insensitively.
    let mut emails: HashMap<String, &str> = HashMap::new();
    for (key, record) in &all_employees {
        let Some(email) = record.text("email") else {
            continue;
        };
        if let Some(other) = emails.insert(email.to_lowercase(), key) {
            let (file, line) = file_of(record.line, employees.as_ref());
            found.push(problem(
                &file,
                line,
                format!("email {email:?} of {key:?} is already used by employee {other:?}"),
            ));
        }
    }
    // Memberships from the file name an existing department and employee (stored
    // ones of deleted rows go with them: the schema cascades).
    for record in all_members.values().filter(|r| r.line > 0) {
        let (file, line) = file_of(record.line, members.as_ref());
        let group = record.text("group_no").unwrap_or("");
        let user = record.text("username").unwrap_or("");
        if !all_departments.contains_key(group) {
            found.push(problem(
                &file,
                line,
                format!("member of unknown department {group:?}"),
            ));
        }
        if !all_employees.contains_key(user) {
            found.push(problem(&file, line, format!("unknown employee {user:?}")));
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

    let mut write = Vec::new();
    // Parents before children, so that every new parent exists when referenced.
    let ordered = parents_first(department_upserts);
    let column_list = |t: Option<&CsvTable>| t.map(|t| t.columns.clone()).unwrap_or_default();
    write.push(TableWrite::DeleteMembers {
        pairs: member_deletes
            .iter()
            .filter_map(|k| k.split_once('\u{1f}'))
            .map(|(g, u)| (g.to_owned(), u.to_owned()))
            .collect(),
    });
    write.push(upsert(
        &DEPARTMENTS,
        column_list(departments.as_ref()),
        ordered,
    ));
    write.push(upsert(
        &EMPLOYEES,
        column_list(employees.as_ref()),
        employee_upserts,
    ));
    write.push(upsert(
        &MEMBERS,
        column_list(members.as_ref()),
        member_upserts,
    ));
    write.push(TableWrite::Delete {
        table: EMPLOYEES.table,
        key: "username",
        keys: employee_deletes,
    });
    write.push(TableWrite::Delete {
        table: DEPARTMENTS.table,
        key: "group_no",
        keys: department_deletes,
    });
    Ok(ImportPlan {
        employees: employees_change,
        departments: departments_change,
        members: members_change,
        write,
    })
}

/// The upsert of `rows`, each laid out in the file's column order.
fn upsert(spec: &TableSpec, columns: Vec<&'static str>, rows: Vec<Record>) -> TableWrite {
    let rows = rows
        .into_iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| r.cells.get(c).cloned().unwrap_or(Cell::Text(None)))
                .collect()
        })
        .collect();
    TableWrite::Upsert {
        table: spec.table,
        key: spec.key,
        columns,
        rows,
    }
}

/// Writes a plan in one transaction.
pub async fn apply(db: &Db, plan: &ImportPlan) -> Result<(), DbError> {
    db.apply_import(&plan.write).await
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
