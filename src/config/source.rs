//! `[source]`: SQL that maps an existing HR schema onto the contract's columns.

use serde::Deserialize;

/// Unset keys keep the built-in tables' queries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSettings {
    pub employees: Option<String>,
    pub departments: Option<String>,
    pub memberships: Option<String>,
    pub credentials: Option<String>,
    pub update_password: Option<String>,
}

impl SourceSettings {
    /// True when any query is configured: the HR database is then read-only to us.
    pub fn is_mapped(&self) -> bool {
        [
            &self.employees,
            &self.departments,
            &self.memberships,
            &self.credentials,
            &self.update_password,
        ]
        .iter()
        .any(|q| q.as_deref().is_some_and(|q| !q.trim().is_empty()))
    }
}
