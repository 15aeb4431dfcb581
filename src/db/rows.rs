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

/// What a password check needs to know about an employee.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub password_hash: Option<String>,
    pub active: bool,
}
