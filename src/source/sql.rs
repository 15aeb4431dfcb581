//! SQL text handling for mapped queries: named placeholders (`:username`) turned
//! into the backend's own bind parameters, and the wrappers that give every query
//! the same column types and byte order whatever the HR schema looks like.
//!
//! A placeholder is recognised only as a whole word outside string literals,
//! quoted identifiers and comments, and never right after another `:`, so that
//! PostgreSQL casts (`login::text`) stay casts. Values are always bound, never
//! spliced into the text.

use crate::db::Backend;

/// A query whose named placeholders have been replaced by bind parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The SQL with `$1…` (PostgreSQL) or `?` (MySQL, SQLite) parameters.
    pub sql: String,
    /// For each parameter in order, the index into the names it was bound from.
    pub order: Vec<usize>,
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

/// Replaces each `:name` of `names` in `sql` by a bind parameter of `backend`.
/// Placeholders not in `names` are left alone (they are not ours to interpret).
pub fn bind_named(sql: &str, names: &[&str], backend: Backend) -> Bound {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut order = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                // Skip to the closing quote; a doubled quote is an escaped one.
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    if bytes[i] == b'\\' && quote == b'\'' && backend == Backend::MySql {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b':' => {
                let after_colon = i > 0 && bytes[i - 1] == b':';
                let next_is_colon = bytes.get(i + 1) == Some(&b':');
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && is_word(bytes[end]) {
                    end += 1;
                }
                let found = (!after_colon && !next_is_colon)
                    .then(|| {
                        names
                            .iter()
                            .position(|n| n.as_bytes() == &bytes[start..end])
                    })
                    .flatten();
                match found {
                    Some(index) => {
                        out.push_str(&sql[copied..i]);
                        order.push(index);
                        match backend {
                            Backend::Postgres => {
                                out.push('$');
                                out.push_str(&order.len().to_string());
                            }
                            Backend::MySql | Backend::Sqlite => out.push('?'),
                        }
                        copied = end;
                        i = end;
                    }
                    None => i = end.max(i + 1),
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    Bound { sql: out, order }
}

/// The query text without a trailing semicolon, so that it can be a subquery.
pub fn as_subquery(sql: &str) -> &str {
    sql.trim().trim_end_matches(';').trim_end()
}

/// `column` of the wrapped query as text (SQLite keeps its own value types).
pub fn text_column(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Postgres => format!("CAST(hrb_src.{column} AS TEXT) AS {column}"),
        Backend::MySql => format!("CAST(hrb_src.{column} AS CHAR) AS {column}"),
        Backend::Sqlite => format!("hrb_src.{column} AS {column}"),
    }
}

/// An ORDER BY term that sorts `column` by the bytes of its text form, which is
/// the order the payload is written in.
pub fn byte_order(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Postgres => format!("CAST(hrb_src.{column} AS TEXT) COLLATE \"C\""),
        Backend::MySql => format!("CAST(hrb_src.{column} AS BINARY)"),
        // A CAST keeps a column's collation in SQLite: BINARY must be said.
        Backend::Sqlite => format!("CAST(hrb_src.{column} AS TEXT) COLLATE BINARY"),
    }
}

/// Wraps `inner` so that it returns `text_columns` as text, `raw_columns` as they
/// are, ordered by `order_by` (in byte order), with an optional row limit.
pub fn wrap(
    backend: Backend,
    inner: &str,
    text_columns: &[&str],
    raw_columns: &[&str],
    order_by: &[&str],
    limit: Option<u32>,
) -> String {
    wrap_in(
        backend,
        inner,
        text_columns,
        raw_columns,
        order_by,
        Order::Bytes,
        limit,
    )
}

/// How a wrapped query orders its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// By the bytes of the keys' text: always the payload's order, but the
    /// database must sort (MariaDB takes ~10 s for 1.2M memberships).
    Bytes,
    /// By the keys as the database compares them: an index can deliver this
    /// without sorting, and for most data it is byte order too. The builder
    /// checks every key and the read is redone in `Bytes` when it is not.
    Collation,
}

/// A WHERE term of a wrapped query that keeps only rows whose `column` is, byte
/// for byte, the value bound as parameter number `first_param` (and after): no
/// collation may fold case, width or trailing spaces into a match. It runs in the
/// database, before any LIMIT. The plain comparison leads so that an index on the
/// column can still find the rows. Returns the term and how many times the value
/// must be bound.
pub fn exact_match(backend: Backend, column: &str, first_param: usize) -> (String, usize) {
    match backend {
        Backend::Postgres => (
            format!(
                "CAST(hrb_src.{column} AS TEXT) = ${first_param} \
                 AND CAST(hrb_src.{column} AS TEXT) COLLATE \"C\" = ${first_param}"
            ),
            1,
        ),
        // VARBINARY compares bytes and, unlike a _bin collation, does not pad.
        Backend::MySql => (
            format!(
                "hrb_src.{column} = ? AND CAST(hrb_src.{column} AS BINARY) = CAST(? AS BINARY)"
            ),
            2,
        ),
        // A CAST keeps the column's collation (NOCASE, RTRIM): BINARY must be said.
        Backend::Sqlite => (
            format!("CAST(hrb_src.{column} AS TEXT) COLLATE BINARY = ?"),
            1,
        ),
    }
}

/// [`wrap`] with a WHERE term (see [`exact_match`]) applied before the limit.
pub fn wrap_where(
    backend: Backend,
    inner: &str,
    text_columns: &[&str],
    raw_columns: &[&str],
    filter: &str,
    limit: Option<u32>,
) -> String {
    let mut sql = wrap_in(
        backend,
        inner,
        text_columns,
        raw_columns,
        &[],
        Order::Bytes,
        None,
    );
    sql.push_str(" WHERE ");
    sql.push_str(filter);
    if let Some(n) = limit {
        sql.push_str(&format!(" LIMIT {n}"));
    }
    sql
}

/// [`wrap`], ordering by `order`.
pub fn wrap_in(
    backend: Backend,
    inner: &str,
    text_columns: &[&str],
    raw_columns: &[&str],
    order_by: &[&str],
    order: Order,
    limit: Option<u32>,
) -> String {
    let mut select: Vec<String> = text_columns
        .iter()
        .map(|c| text_column(backend, c))
        .collect();
    select.extend(raw_columns.iter().map(|c| format!("hrb_src.{c} AS {c}")));
    let mut sql = format!(
        "SELECT {} FROM ({}) AS hrb_src",
        select.join(", "),
        as_subquery(inner)
    );
    if !order_by.is_empty() {
        let terms: Vec<String> = order_by
            .iter()
            .map(|c| match order {
                Order::Bytes => byte_order(backend, c),
                Order::Collation => format!("hrb_src.{c}"),
            })
            .collect();
        sql.push_str(" ORDER BY ");
        sql.push_str(&terms.join(", "));
    }
    if let Some(n) = limit {
        sql.push_str(&format!(" LIMIT {n}"));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_whole_placeholders_only() {
        let bound = bind_named(
            "SELECT pw::text FROM u WHERE login = :username AND note <> ':username' \
             -- :username\n AND x = :usernames",
            &["username"],
            Backend::Postgres,
        );
        assert_eq!(
            bound.sql,
            "SELECT pw::text FROM u WHERE login = $1 AND note <> ':username' \
             -- :username\n AND x = :usernames"
        );
        assert_eq!(bound.order, vec![0]);
    }

    #[test]
    fn repeated_names_bind_in_order_for_question_marks() {
        let bound = bind_named(
            "UPDATE u SET pw = :new_hash WHERE login = :username AND pw = :old_hash",
            &["username", "old_hash", "new_hash"],
            Backend::MySql,
        );
        assert_eq!(bound.sql, "UPDATE u SET pw = ? WHERE login = ? AND pw = ?");
        assert_eq!(bound.order, vec![2, 0, 1]);
    }

    #[test]
    fn postgres_cast_after_placeholder_stays_a_cast() {
        let bound = bind_named(
            "SELECT 1 WHERE login = :username::text",
            &["username"],
            Backend::Postgres,
        );
        assert_eq!(bound.sql, "SELECT 1 WHERE login = $1::text");
    }
}
