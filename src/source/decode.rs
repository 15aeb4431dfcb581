//! sqlx cells into packed [`Rows`], forgiving about types (numbers become text,
//! `active` may be a boolean or 0/1) but never about bytes: text that is not
//! UTF-8 arrives as [`super::Value::Invalid`] for validation to report.

use sqlx::{Row, TypeInfo, ValueRef};

use super::rows::Rows;

/// Appends a sqlx row to `rows`: `text` leading text columns, then the raw ones.
/// Text is copied straight from the driver's buffer into the batch's.
pub(super) fn decode_row<R>(rows: &mut Rows, row: &R, text: usize)
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<&'r [u8]>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i32>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i16>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<bool>: sqlx::Decode<'r, R::Database>,
{
    for i in 0..row.len() {
        if i < text {
            rows.push_bytes(row.try_get_unchecked::<Option<&[u8]>, _>(i).ok().flatten());
        } else {
            push_raw(rows, row, i);
        }
    }
}

/// An `active` cell: booleans and integers as such, text kept for the message.
fn push_raw<R>(rows: &mut Rows, row: &R, i: usize)
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<&'r [u8]>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i32>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i16>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<bool>: sqlx::Decode<'r, R::Database>,
{
    let Ok(raw) = row.try_get_raw(i) else {
        return rows.push_null();
    };
    if raw.is_null() {
        return rows.push_null();
    }
    let type_info = raw.type_info();
    let type_name = type_info.name();
    let int = |rows: &mut Rows, v: Option<i64>| match v {
        Some(v) => rows.push_int(v),
        None => rows.push_null(),
    };
    match raw_kind(type_name) {
        RawKind::Bool => match row.try_get_unchecked::<Option<bool>, _>(i).ok().flatten() {
            Some(b) => rows.push_bool(b),
            None => rows.push_null(),
        },
        RawKind::Int2 => int(
            rows,
            row.try_get_unchecked::<Option<i16>, _>(i)
                .ok()
                .flatten()
                .map(i64::from),
        ),
        RawKind::Int4 => int(
            rows,
            row.try_get_unchecked::<Option<i32>, _>(i)
                .ok()
                .flatten()
                .map(i64::from),
        ),
        RawKind::Int8 => int(
            rows,
            row.try_get_unchecked::<Option<i64>, _>(i).ok().flatten(),
        ),
        // The driver's eight bytes, read as signed: a value past i64::MAX comes
        // out negative, and is kept as its own digits for the message.
        RawKind::UInt8 => match row.try_get_unchecked::<Option<i64>, _>(i).ok().flatten() {
            Some(v) if v >= 0 => rows.push_int(v),
            Some(v) => rows.push_bytes(Some((v as u64).to_string().as_bytes())),
            None => rows.push_null(),
        },
        RawKind::Text => {
            rows.push_bytes(row.try_get_unchecked::<Option<&[u8]>, _>(i).ok().flatten())
        }
        RawKind::Other => rows.push_other(&type_name.to_lowercase()),
    }
}

/// How a raw (`active`) cell is read, by its column's driver type name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RawKind {
    Bool,
    Int2,
    Int4,
    /// 64-bit, and MySQL's integers of every width (the driver widens them).
    Int8,
    /// MySQL's `BIGINT UNSIGNED` (what `CAST(… AS UNSIGNED)` gives).
    UInt8,
    /// Text, kept as bytes for the message (and for invalid UTF-8).
    Text,
    /// Anything else: reported by its type name, in lower case.
    Other,
}

/// The [`RawKind`] of a column whose driver type is called `type_name`.
pub(super) fn raw_kind(type_name: &str) -> RawKind {
    // Driver type names are upper case; compared without allocating (once a row).
    let mut upper = [0u8; 24];
    let type_name = match type_name.as_bytes() {
        name if name.len() <= upper.len() => {
            upper[..name.len()].copy_from_slice(name);
            upper[..name.len()].make_ascii_uppercase();
            std::str::from_utf8(&upper[..name.len()]).unwrap_or(type_name)
        }
        _ => type_name,
    };
    match type_name {
        "BOOL" => RawKind::Bool,
        "INT2" => RawKind::Int2,
        "INT4" => RawKind::Int4,
        "INT8" | "BOOLEAN" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT"
        | "INTEGER" | "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED"
        | "INT UNSIGNED" => RawKind::Int8,
        "BIGINT UNSIGNED" => RawKind::UInt8,
        "TEXT" | "VARCHAR" | "CHAR" | "BPCHAR" | "NAME" | "TINYTEXT" | "MEDIUMTEXT"
        | "LONGTEXT" | "ENUM" => RawKind::Text,
        _ => RawKind::Other,
    }
}
