//! What a key may hold: one rule for `import`, `set-password`, `check` and
//! `/sync`, so that no name gets in by one door that another refuses.
//!
//! - No control, bidirectional or invisible character ([`crate::escape::is_control`])
//!   in a username, email or group_no: such a key forges lines or clears the
//!   screen wherever an operator reads it, and can look exactly like another.
//! - A username has at most [`MAX_USERNAME_BYTES`] bytes of UTF-8: the most
//!   `/authenticate` looks up (longer names are turned away there before any
//!   database work), and what every backend's key and audit columns hold. A
//!   longer name would be served to OMFLOW but could never log in.

use crate::escape::{code_point, first_control};
pub use crate::password::caps::MAX_USERNAME_BYTES;

/// The three keys of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Username,
    Email,
    GroupNo,
}

impl Key {
    /// The key of a column of the schema, if it holds one (`parent_group_no`
    /// names a group_no).
    pub fn of_column(column: &str) -> Option<Self> {
        match column {
            "username" => Some(Self::Username),
            "email" => Some(Self::Email),
            "group_no" | "parent_group_no" => Some(Self::GroupNo),
            _ => None,
        }
    }
}

/// Why `value` cannot be a `key`, worded to follow the column's name
/// (`username contains …`), or `None` when it can.
pub fn key_problem(key: Key, value: &str) -> Option<String> {
    if let Some(c) = first_control(value) {
        return Some(format!(
            "contains the control character {} (shown escaped); usernames, emails and \
             group_nos may not hold control, bidirectional or invisible characters",
            code_point(c)
        ));
    }
    if key == Key::Username && value.len() > MAX_USERNAME_BYTES {
        return Some(format!(
            "is {} bytes long; a username may have at most {MAX_USERNAME_BYTES} bytes \
             (UTF-8), the longest /authenticate accepts",
            value.len()
        ));
    }
    None
}

/// A key for a message: quoted and escaped, and cut to its first 64 characters
/// when it is longer (an over-long username would otherwise fill the screen).
pub fn shown(value: &str) -> String {
    const SHOWN_CHARS: usize = 64;
    match value.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", crate::escape::quote(&value[..cut])),
        None => crate::escape::quote(value).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_refused_in_every_key_and_length_in_usernames_only() {
        for key in [Key::Username, Key::Email, Key::GroupNo] {
            assert!(key_problem(key, "a\u{1b}[2J").is_some());
            assert!(key_problem(key, "a\nb").is_some());
            assert!(key_problem(key, "admin\u{202e}").is_some());
            assert!(key_problem(key, "Zoë.山田+x@example.com").is_none());
        }
        let long = "a".repeat(MAX_USERNAME_BYTES + 1);
        assert!(key_problem(Key::Username, &long).is_some());
        assert!(key_problem(Key::Username, &long[1..]).is_none());
        assert!(key_problem(Key::GroupNo, &long).is_none());
        // Bytes, not characters: 86 three-byte characters are 258 bytes.
        assert!(key_problem(Key::Username, &"山".repeat(86)).is_some());
    }

    #[test]
    fn long_keys_are_cut_when_shown() {
        assert_eq!(shown("alice"), "\"alice\"");
        let cut = shown(&"b".repeat(300));
        assert_eq!(cut, format!("\"{}\"…", "b".repeat(64)));
    }
}
