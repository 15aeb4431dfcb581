//! Plain rows as the database returns them; the domain turns them into meaning.

/// An employee as stored, minus the password hash.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EmployeeRow {
    pub username: String,
    pub email: String,
    pub nick_name: String,
    pub ad_no: Option<String>,
    pub company: Option<String>,
    pub phone1: Option<String>,
    pub phone2: Option<String>,
    pub extension_no: Option<String>,
    pub gender: Option<String>,
    pub active: bool,
}

/// A department as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DepartmentRow {
    pub group_no: String,
    pub display_name: String,
    pub parent_group_no: Option<String>,
    pub active: bool,
}

/// One membership of an employee in a department.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MembershipRow {
    pub group_no: String,
    pub username: String,
}

/// Everything `/sync` needs, read in one consistent snapshot.
#[derive(Debug, Default)]
pub struct DirectoryRows {
    /// Active employees only.
    pub employees: Vec<EmployeeRow>,
    /// Every department, active or not, so that validation can tell an inactive
    /// parent from a missing one.
    pub departments: Vec<DepartmentRow>,
    /// Memberships whose employee and department are both active.
    pub memberships: Vec<MembershipRow>,
}

impl DirectoryRows {
    /// Keeps only memberships whose employee and department are both served.
    pub fn new(
        employees: Vec<EmployeeRow>,
        departments: Vec<DepartmentRow>,
        mut memberships: Vec<MembershipRow>,
    ) -> Self {
        {
            let users: std::collections::HashSet<&str> =
                employees.iter().map(|e| e.username.as_str()).collect();
            let groups: std::collections::HashSet<&str> = departments
                .iter()
                .filter(|d| d.active)
                .map(|d| d.group_no.as_str())
                .collect();
            memberships.retain(|m| {
                users.contains(m.username.as_str()) && groups.contains(m.group_no.as_str())
            });
        }
        Self {
            employees,
            departments,
            memberships,
        }
    }
}

/// What a password check needs to know about an employee.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub password_hash: Option<String>,
    pub active: bool,
}
