//! Sample organisations: a small, readable one for `serve --demo`, and synthetic
//! ones of any size for trials and benchmarks (`seed-demo`).

use crate::db::{DepartmentRow, EmployeeRow, MembershipRow};

/// Employees with their memberships, inserted together.
pub type EmployeeChunk = (Vec<EmployeeRow>, Vec<MembershipRow>);

/// Employees generated per chunk: a million-person organisation is inserted
/// without ever being held in memory at once.
const CHUNK: usize = 5_000;

/// An organisation ready to insert; every employee gets the same password hash.
pub struct Organisation {
    /// Parents before children, as inserts need them.
    pub departments: Vec<DepartmentRow>,
    /// Employees and their memberships, generated as they are inserted.
    pub chunks: Box<dyn Iterator<Item = EmployeeChunk> + Send>,
}

fn department(group_no: &str, display_name: &str, parent: Option<&str>) -> DepartmentRow {
    DepartmentRow {
        group_no: group_no.into(),
        display_name: display_name.into(),
        parent_group_no: parent.map(Into::into),
        active: true,
    }
}

fn employee(username: &str, nick_name: &str, gender: &str, ad_no: usize) -> EmployeeRow {
    EmployeeRow {
        username: username.into(),
        email: format!("{username}@example.com"),
        nick_name: nick_name.into(),
        ad_no: Some(format!("E{ad_no:05}")),
        company: Some("Example Corp".into()),
        phone1: Some(format!("+1-555-01{:02}", ad_no % 100)),
        phone2: None,
        extension_no: Some(format!("{}", 2000 + ad_no)),
        gender: Some(gender.into()),
        active: true,
    }
}

/// The sample company's first employee, whom `serve --demo` makes a console
/// operator when no `admin.*` people are configured.
pub const FIRST_EMPLOYEE: &str = "alice";

/// The small company `serve --demo` starts with.
pub fn sample() -> Organisation {
    let departments = vec![
        department("HQ", "Example Corp", None),
        department("ENG", "Engineering", Some("HQ")),
        department("ENG-PLAT", "Platform", Some("ENG")),
        department("ENG-APP", "Applications", Some("ENG")),
        department("OPS", "Operations", Some("HQ")),
        department("HR", "Human Resources", Some("HQ")),
        department("FIN", "Finance", Some("HQ")),
    ];
    let people = [
        ("alice", "Alice Chen", "female", "HQ"),
        ("bob", "Bob Martin", "male", "ENG"),
        ("carol", "Carol Diaz", "female", "ENG-PLAT"),
        ("dave", "Dave Kim", "male", "ENG-PLAT"),
        ("erin", "Erin Novak", "female", "ENG-APP"),
        ("frank", "Frank Osei", "male", "ENG-APP"),
        ("grace", "Grace Liu", "female", "OPS"),
        ("heidi", "Heidi Weber", "female", "HR"),
        ("ivan", "Ivan Petrov", "male", "FIN"),
        ("judy", "Judy Tanaka", "", "FIN"),
    ];
    let (mut employees, mut memberships) = (Vec::new(), Vec::new());
    for (i, (username, name, gender, group)) in people.iter().enumerate() {
        let mut e = employee(username, name, gender, i + 1);
        if gender.is_empty() {
            e.gender = None;
        }
        employees.push(e);
        memberships.push(MembershipRow {
            group_no: (*group).into(),
            username: (*username).into(),
        });
    }
    Organisation {
        departments,
        chunks: Box::new(std::iter::once((employees, memberships))),
    }
}

/// A synthetic company: departments in a tree of fan-out 5, every employee in one
/// department and every fifth in a second one (so 100,000 employees give 120,000
/// memberships, as in the benchmark).
pub fn synthetic(employees: usize, departments: usize) -> Organisation {
    let width = digits(departments);
    let group_no = move |i: usize| format!("D{i:0width$}");
    let department_rows = (0..departments)
        .map(|i| DepartmentRow {
            group_no: group_no(i),
            display_name: format!("Department {i}"),
            parent_group_no: (i > 0).then(|| group_no((i - 1) / 5)),
            active: true,
        })
        .collect();
    let user_width = digits(employees);
    let chunks = (0..employees).step_by(CHUNK).map(move |start| {
        let end = (start + CHUNK).min(employees);
        let mut rows = Vec::with_capacity(end - start);
        let mut memberships = Vec::with_capacity((end - start) * 6 / 5 + 1);
        for i in start..end {
            let username = format!("user{i:0user_width$}");
            let gender = ["male", "female", ""][i % 3];
            let mut e = employee(&username, &format!("Person {i}"), gender, i);
            e.phone2 = (i % 2 == 0).then(|| format!("+1-555-{:07}", i));
            if gender.is_empty() {
                e.gender = None;
            }
            if departments > 0 {
                memberships.push(MembershipRow {
                    group_no: group_no(i % departments),
                    username: username.clone(),
                });
                let second = (i / 5 + 1) % departments;
                if i % 5 == 0 && second != i % departments {
                    memberships.push(MembershipRow {
                        group_no: group_no(second),
                        username: username.clone(),
                    });
                }
            }
            rows.push(e);
        }
        (rows, memberships)
    });
    Organisation {
        departments: department_rows,
        chunks: Box::new(chunks),
    }
}

fn digits(n: usize) -> usize {
    n.max(1).to_string().len()
}
