//! Reading one CSV file against its table's columns: header checks, value
//! parsing (booleans, gender, required cells) and duplicate keys within the file.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use crate::db::Cell;
use crate::directory::keys::{key_problem, Key};
use crate::escape::{escape, quote};
use crate::fields::{self, DepartmentField, EmployeeField};

/// One CSV table: its name, columns, which are required, and which are booleans.
#[derive(Debug)]
pub struct TableSpec {
    pub table: &'static str,
    pub columns: &'static [&'static str],
    pub required: &'static [&'static str],
    pub key: &'static [&'static str],
}

/// The CSV headers are the tables' columns, from [`crate::fields`].
pub const EMPLOYEES: TableSpec = TableSpec {
    table: "employees",
    columns: &fields::EMPLOYEE_TABLE,
    required: &fields::EMPLOYEE_REQUIRED,
    key: &[EmployeeField::Username.name()],
};
pub const DEPARTMENTS: TableSpec = TableSpec {
    table: "departments",
    columns: &fields::DEPARTMENT_TABLE,
    required: &fields::DEPARTMENT_REQUIRED,
    key: &[DepartmentField::GroupNo.name()],
};
pub const MEMBERS: TableSpec = TableSpec {
    table: "department_members",
    columns: &fields::MEMBERSHIP_COLUMNS,
    required: &fields::MEMBERSHIP_COLUMNS,
    key: &fields::MEMBERSHIP_COLUMNS,
};

/// A problem tied to a place in a file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImportProblem {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for ImportProblem {
    // Reasons quote values from the file; escaped again here so that no message
    // can carry a control character to the terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            escape(&self.file),
            self.line,
            escape(&self.reason)
        )
    }
}

/// One parsed CSV row: the columns the file has, with their values.
#[derive(Debug, Clone)]
pub struct Record {
    pub line: u64,
    pub cells: BTreeMap<&'static str, Cell>,
}

impl Record {
    pub(super) fn text(&self, column: &str) -> Option<&str> {
        match self.cells.get(column) {
            Some(Cell::Text(Some(s))) => Some(s),
            _ => None,
        }
    }

    pub(super) fn key(&self, spec: &TableSpec) -> String {
        spec.key
            .iter()
            .map(|c| self.text(c).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\u{1f}")
    }
}

/// A parsed file: which columns it has and its rows.
#[derive(Debug, Clone)]
pub struct CsvTable {
    pub label: String,
    pub columns: Vec<&'static str>,
    pub records: Vec<Record>,
}

pub(super) fn problem(file: &str, line: u64, reason: impl Into<String>) -> ImportProblem {
    ImportProblem {
        file: file.to_owned(),
        line,
        reason: reason.into(),
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Line numbers of records, counted from their byte offsets.
///
/// The csv crate's own line count is one short after a CRLF line break (what Excel
/// and Python write): it starts the next record at the `\n` and counts it only
/// later. Counting the line breaks before a record's first real byte is right for
/// LF, CRLF and quoted fields spanning lines alike. Records come in order, so the
/// count resumes where the last one stopped (linear in the file, not quadratic).
struct Lines<'a> {
    text: &'a [u8],
    counted_to: usize,
    newlines: u64,
}

impl<'a> Lines<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self {
            text,
            counted_to: 0,
            newlines: 0,
        }
    }

    /// The 1-based line on which the record starting at `byte` begins.
    fn at(&mut self, byte: u64) -> u64 {
        let text = self.text;
        let mut start = usize::try_from(byte).unwrap_or(usize::MAX).min(text.len());
        start += text[start..]
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if start < self.counted_to {
            // Not expected (records come in order); count afresh.
            self.counted_to = 0;
            self.newlines = 0;
        }
        let more = text[self.counted_to..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.newlines += u64::try_from(more).unwrap_or(u64::MAX);
        self.counted_to = start;
        self.newlines + 1
    }

    /// The line of the record a CSV error is about, if the error says.
    fn of_error(&mut self, e: &csv::Error) -> Option<u64> {
        e.position().map(|p| self.at(p.byte()))
    }
}

/// A CSV error in words, without the csv crate's own (CRLF-miscounted) position.
fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "field {} is not valid UTF-8; save the file as UTF-8",
            err.field() + 1
        ),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} field(s) but the header has {expected_len}"),
        _ => format!("malformed CSV: {e}"),
    }
}

/// Reads and checks one CSV file against `spec`; problems go to `found`.
pub fn parse_file(
    path: &Path,
    spec: &TableSpec,
    found: &mut Vec<ImportProblem>,
) -> Option<CsvTable> {
    let label = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            found.push(problem(&label, 0, format!("cannot read the file: {e}")));
            return None;
        }
    };
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            let line = Lines::new(text).of_error(&e).unwrap_or(1);
            found.push(problem(
                &label,
                line,
                format!("cannot read the header row: {}", csv_reason(&e)),
            ));
            return None;
        }
    };
    let mut columns = Vec::new();
    let mut header_ok = true;
    for name in headers.iter().map(str::trim) {
        match spec.columns.iter().find(|c| **c == name) {
            Some(column) if columns.contains(column) => {
                found.push(problem(
                    &label,
                    1,
                    format!("column {} appears twice", quote(name)),
                ));
                header_ok = false;
            }
            Some(column) => columns.push(*column),
            None => {
                found.push(problem(
                    &label,
                    1,
                    format!(
                        "unknown column {}; {} has: {}",
                        quote(name),
                        spec.table,
                        spec.columns.join(", ")
                    ),
                ));
                header_ok = false;
            }
        }
    }
    for required in spec.required {
        if !columns.contains(required) {
            found.push(problem(
                &label,
                1,
                format!("missing required column {}", quote(required)),
            ));
            header_ok = false;
        }
    }
    if !header_ok {
        return None;
    }
    let mut records = Vec::new();
    let mut lines = Lines::new(text);
    for result in reader.records() {
        let row = match result {
            Ok(row) => row,
            Err(e) => {
                let line = lines.of_error(&e).unwrap_or(0);
                found.push(problem(&label, line, csv_reason(&e)));
                continue;
            }
        };
        let line = row.position().map_or(0, |p| lines.at(p.byte()));
        let mut cells = BTreeMap::new();
        for (column, value) in columns.iter().zip(row.iter()) {
            let cell = if *column == fields::ACTIVE {
                match parse_bool(value) {
                    Some(b) => Cell::Bool(b),
                    None => {
                        found.push(problem(
                            &label,
                            line,
                            format!("active must be true, false, 1 or 0, not {}", quote(value)),
                        ));
                        continue;
                    }
                }
            } else if value.contains('\0') {
                // PostgreSQL cannot store it, and no HR value needs it.
                found.push(problem(
                    &label,
                    line,
                    format!("{column} contains a NUL byte"),
                ));
                continue;
            } else if value.is_empty() {
                if spec.required.contains(column) {
                    found.push(problem(&label, line, format!("{column} is empty")));
                    continue;
                }
                Cell::Text(None)
            } else if *column == EmployeeField::Gender.name() {
                match value.trim().to_ascii_lowercase().as_str() {
                    "male" | "m" => Cell::Text(Some("male".into())),
                    "female" | "f" => Cell::Text(Some("female".into())),
                    _ => {
                        found.push(problem(
                            &label,
                            line,
                            format!("gender must be male, female or empty, not {}", quote(value)),
                        ));
                        continue;
                    }
                }
            } else if let Some(reason) =
                Key::of_column(column).and_then(|key| key_problem(key, value))
            {
                found.push(problem(&label, line, format!("{column} {reason}")));
                continue;
            } else {
                Cell::Text(Some(value.to_owned()))
            };
            cells.insert(*column, cell);
        }
        records.push(Record { line, cells });
    }
    Some(CsvTable {
        label,
        columns,
        records,
    })
}

/// Reports rows of one file whose key (or another unique column) repeats.
pub(super) fn duplicates(
    table: &CsvTable,
    what: &str,
    key: impl Fn(&Record) -> Option<String>,
    found: &mut Vec<ImportProblem>,
) {
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in &table.records {
        let Some(k) = key(record) else { continue };
        if let Some(first) = seen.get(&k) {
            found.push(problem(
                &table.label,
                record.line,
                format!(
                    "duplicate {what} {} (first at line {first})",
                    quote(&k.replace('\u{1f}', " / "))
                ),
            ));
        } else {
            seen.insert(k, record.line);
        }
    }
}
