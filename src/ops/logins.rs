//! Login figures for the console's overview: successes and failures per hour,
//! from the audit trail.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::db::{Db, DbError};

/// One hour's logins.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoginHour {
    /// `2026-11-24T18` (UTC).
    pub hour: String,
    pub successes: i64,
    pub failures: i64,
}

/// Logins per hour over the last `hours` hours, one entry per hour (empty hours
/// included), oldest first.
pub async fn per_hour(db: &Db, hours: u32) -> Result<Vec<LoginHour>, DbError> {
    let now = SystemTime::now();
    let span = Duration::from_secs(u64::from(hours.saturating_sub(1)) * 3600);
    let first = now.checked_sub(span).unwrap_or(SystemTime::UNIX_EPOCH);
    let first_hour = hour_of(first);
    let rows = db
        .login_counts_per_hour(&format!("{first_hour}:00:00.000Z"))
        .await?;
    let mut by_hour: BTreeMap<String, LoginHour> = (0..hours)
        .map(|i| {
            let at = first + Duration::from_secs(u64::from(i) * 3600);
            let hour = hour_of(at);
            (
                hour.clone(),
                LoginHour {
                    hour,
                    ..LoginHour::default()
                },
            )
        })
        .collect();
    for row in rows {
        if let Some(entry) = by_hour.get_mut(&row.hour) {
            match row.outcome.as_str() {
                "success" => entry.successes += row.count,
                _ => entry.failures += row.count,
            }
        }
    }
    Ok(by_hour.into_values().collect())
}

/// `2026-11-24T18` for an instant in that hour (UTC).
fn hour_of(at: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    text.chars().take(13).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_the_audit_texts_first_thirteen_characters() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(3600 * 5 + 59);
        assert_eq!(hour_of(at), "1970-01-01T05");
    }
}
