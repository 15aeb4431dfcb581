//! Plain rows as the database returns them; the domain turns them into meaning.

use super::from_row;
use crate::fields::{DepartmentField, EmployeeField};

from_row! {
    /// An employee as stored, minus the password hash.
    #[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl EmployeeRow {
    /// The value of `field` (`None` for NULL).
    pub fn field(&self, field: EmployeeField) -> Option<&str> {
        match field {
            EmployeeField::Username => Some(&self.username),
            EmployeeField::Email => Some(&self.email),
            EmployeeField::NickName => Some(&self.nick_name),
            EmployeeField::AdNo => self.ad_no.as_deref(),
            EmployeeField::Company => self.company.as_deref(),
            EmployeeField::Phone1 => self.phone1.as_deref(),
            EmployeeField::Phone2 => self.phone2.as_deref(),
            EmployeeField::ExtensionNo => self.extension_no.as_deref(),
            EmployeeField::Gender => self.gender.as_deref(),
        }
    }
}

from_row! {
    /// A department as stored.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DepartmentRow {
        pub group_no: String,
        pub display_name: String,
        pub parent_group_no: Option<String>,
        pub active: bool,
    }
}

impl DepartmentRow {
    /// The value of `field` (`None` for NULL).
    pub fn field(&self, field: DepartmentField) -> Option<&str> {
        match field {
            DepartmentField::GroupNo => Some(&self.group_no),
            DepartmentField::DisplayName => Some(&self.display_name),
            DepartmentField::ParentGroupNo => self.parent_group_no.as_deref(),
        }
    }
}

from_row! {
    /// One membership of an employee in a department.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MembershipRow {
        pub group_no: String,
        pub username: String,
    }
}

from_row! {
    /// What a password check needs to know about an employee.
    #[derive(Debug, Clone)]
    pub struct Credentials {
        pub password_hash: Option<String>,
        pub active: bool,
    }
}
