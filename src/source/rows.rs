//! Rows as read, packed: every text cell of a batch lives in one shared buffer, so
//! a row costs no allocation of its own however many columns it has (at a million
//! employees, one `String` per cell was most of the read's allocator work).

use std::borrow::Cow;
use std::marker::PhantomData;

use crate::fields::{Field, ACTIVE};

/// One cell as read, borrowed from its [`Rows`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Text(&'a str),
    /// Text whose bytes are not UTF-8 (SQLite stores whatever it is given).
    Invalid(&'a [u8]),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A value of a type that has no text form here (named for the message).
    Other(&'a str),
}

impl Value<'_> {
    /// The value of an `active` column: a boolean, or the integers 0 and 1.
    pub fn as_active(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            Self::Int(0) => Some(false),
            Self::Int(1) => Some(true),
            _ => None,
        }
    }
}

/// A cell as stored: text and bytes as ranges of the shared buffers.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Null,
    Text(u32, u32),
    Invalid(u32, u32),
    Int(i64),
    Float(f64),
    Bool(bool),
    Other(u32, u32),
}

/// Rows of one query, one cell for each of its `columns`.
#[derive(Debug, Default)]
pub struct Rows {
    /// The column names, in cell order.
    columns: &'static [&'static str],
    width: usize,
    cells: Vec<Cell>,
    text: String,
    bytes: Vec<u8>,
}

impl Rows {
    /// Room for `rows` rows of `columns`.
    pub fn new(columns: &'static [&'static str], rows: usize) -> Self {
        let width = columns.len();
        Self {
            columns,
            width,
            cells: Vec::with_capacity(width * rows),
            text: String::with_capacity(rows * width * 12),
            bytes: Vec::new(),
        }
    }

    /// The column names, in cell order.
    pub fn columns(&self) -> &'static [&'static str] {
        self.columns
    }

    /// Where each field of `F` (and `active`, if present) sits in these rows,
    /// found by name: a field the rows lack is an error, never a NULL.
    pub fn layout<F: Field>(&self) -> Result<Layout<F>, MissingColumn> {
        let find = |name: &str| self.columns.iter().position(|c| *c == name);
        let at = F::ALL
            .iter()
            .map(|field| find(field.name()).ok_or(MissingColumn(field.name())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Layout {
            at,
            active: find(ACTIVE),
            fields: PhantomData,
        })
    }

    /// Complete rows held.
    pub fn len(&self) -> usize {
        self.cells.len().checked_div(self.width).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Bytes of text and raw bytes held.
    pub fn text_bytes(&self) -> usize {
        self.text.len() + self.bytes.len()
    }

    pub fn row(&self, index: usize) -> Row<'_> {
        let start = index * self.width;
        Row {
            rows: self,
            cells: self.cells.get(start..start + self.width).unwrap_or(&[]),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        (0..self.len()).map(|i| self.row(i))
    }

    /// Empties the rows, keeping their buffers.
    pub fn clear(&mut self) {
        self.cells.clear();
        self.text.clear();
        self.bytes.clear();
    }

    fn span(len_before: usize, len_after: usize) -> (u32, u32) {
        let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        (at(len_before), at(len_after))
    }

    pub fn push_null(&mut self) {
        self.cells.push(Cell::Null);
    }

    pub fn push_int(&mut self, value: i64) {
        self.cells.push(Cell::Int(value));
    }

    pub fn push_float(&mut self, value: f64) {
        self.cells.push(Cell::Float(value));
    }

    pub fn push_bool(&mut self, value: bool) {
        self.cells.push(Cell::Bool(value));
    }

    /// A text cell as bytes: UTF-8 becomes text, anything else is kept to report.
    pub fn push_bytes(&mut self, value: Option<&[u8]>) {
        let Some(bytes) = value else {
            return self.push_null();
        };
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                let before = self.text.len();
                self.text.push_str(text);
                let (start, end) = Self::span(before, self.text.len());
                self.cells.push(Cell::Text(start, end));
            }
            Err(_) => {
                let before = self.bytes.len();
                self.bytes.extend_from_slice(bytes);
                let (start, end) = Self::span(before, self.bytes.len());
                self.cells.push(Cell::Invalid(start, end));
            }
        }
    }

    /// A cell of a type that has no text form, by its type's name.
    pub fn push_other(&mut self, type_name: &str) {
        let before = self.text.len();
        self.text.push_str(type_name);
        let (start, end) = Self::span(before, self.text.len());
        self.cells.push(Cell::Other(start, end));
    }
}

/// A field the rows of a read do not hold (a read plan that does not match its
/// field list: a bug, refused rather than served as empty values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no column {0:?}")]
pub struct MissingColumn(pub &'static str);

/// The cell of each field of `F` in a batch's rows, from [`Rows::layout`].
#[derive(Debug, Clone)]
pub struct Layout<F> {
    at: Vec<usize>,
    active: Option<usize>,
    fields: PhantomData<F>,
}

impl<F: Field> Layout<F> {
    /// Whether the rows hold `active`.
    pub fn has_active(&self) -> bool {
        self.active.is_some()
    }
}

/// One row of [`Rows`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    rows: &'a Rows,
    cells: &'a [Cell],
}

impl<'a> Row<'a> {
    /// The cell in column `index`; `Null` past the last column.
    pub fn get(&self, index: usize) -> Value<'a> {
        let text = |start: u32, end: u32| {
            self.rows
                .text
                .get(start as usize..end as usize)
                .unwrap_or("")
        };
        match self.cells.get(index) {
            None | Some(Cell::Null) => Value::Null,
            Some(Cell::Text(start, end)) => Value::Text(text(*start, *end)),
            Some(Cell::Other(start, end)) => Value::Other(text(*start, *end)),
            Some(Cell::Invalid(start, end)) => Value::Invalid(
                self.rows
                    .bytes
                    .get(*start as usize..*end as usize)
                    .unwrap_or(&[]),
            ),
            Some(Cell::Int(i)) => Value::Int(*i),
            Some(Cell::Float(f)) => Value::Float(*f),
            Some(Cell::Bool(b)) => Value::Bool(*b),
        }
    }

    pub fn width(&self) -> usize {
        self.cells.len()
    }

    /// The cell of `field`, where `layout` found it.
    pub fn field<F: Field>(&self, layout: &Layout<F>, field: F) -> Value<'a> {
        match layout.at.get(field.index()) {
            Some(&at) => self.get(at),
            None => Value::Null,
        }
    }

    /// The `active` cell, or `None` when the rows have no such column.
    pub fn active<F: Field>(&self, layout: &Layout<F>) -> Option<Value<'a>> {
        layout.active.map(|at| self.get(at))
    }
}

/// A cell as text: numbers and booleans written out, text borrowed.
pub fn text(value: Value<'_>) -> Result<Option<Cow<'_, str>>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Text(s) => Ok(Some(Cow::Borrowed(s))),
        Value::Int(i) => Ok(Some(Cow::Owned(i.to_string()))),
        Value::Float(f) => Ok(Some(Cow::Owned(f.to_string()))),
        Value::Bool(b) => Ok(Some(Cow::Owned(b.to_string()))),
        Value::Invalid(bytes) => Err(format!(
            "is not valid UTF-8 text ({} bytes: {})",
            bytes.len(),
            String::from_utf8_lossy(bytes)
        )),
        Value::Other(type_name) => Err(format!(
            "has the type {type_name}, which cannot be served as text; cast it in the query"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_come_back_as_pushed() {
        let mut rows = Rows::new(&["a", "b", "c"], 2);
        rows.push_bytes(Some("añb".as_bytes()));
        rows.push_bytes(Some(&[0xff, 0x41]));
        rows.push_int(7);
        rows.push_null();
        rows.push_bytes(None);
        rows.push_other("bytea");
        assert_eq!(rows.len(), 2);
        let first = rows.row(0);
        assert_eq!(first.get(0), Value::Text("añb"));
        assert_eq!(first.get(1), Value::Invalid(&[0xff, 0x41]));
        assert_eq!(first.get(2), Value::Int(7));
        assert_eq!(first.get(3), Value::Null);
        let second = rows.row(1);
        assert_eq!(second.get(0), Value::Null);
        assert_eq!(second.get(1), Value::Null);
        assert_eq!(second.get(2), Value::Other("bytea"));
        rows.clear();
        assert!(rows.is_empty());
    }
}
