//! One entry of `user_info_list` or `group_info_list`, read straight from the JSON
//! stream without building a JSON tree: each field is matched against the
//! contract's list, and only the values a rule needs are copied out (the rest are
//! checked to be strings and dropped), rather than a map and two strings for
//! every field as `serde_json::Value` would build.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What a field must hold.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A string; `keep`: its text is needed.
    Str { keep: bool },
    /// An array of strings, all kept (a department's `user_list`).
    Names,
}

/// A field's value as far as the rules care.
#[derive(Debug, Default)]
pub enum Field {
    #[default]
    Missing,
    /// A string, with its text when kept.
    Str(Option<String>),
    NotString,
    /// The strings of an array, and how many members were not strings.
    Names(Vec<String>, usize),
    NotArray,
}

/// An entry that was a JSON object.
#[derive(Debug)]
pub struct Entry {
    /// One per field of the contract's list, in its order.
    pub fields: Vec<Field>,
    /// Keys the contract does not know, in the order met.
    pub unexpected: Vec<String>,
}

impl Entry {
    /// The kept text of field `i`, `""` when it is anything else.
    pub fn text(&self, i: usize) -> &str {
        match &self.fields[i] {
            Field::Str(Some(text)) => text,
            _ => "",
        }
    }
}

/// Reads one entry; `None` when it is not an object.
pub struct EntrySeed(pub &'static [(&'static str, Kind)]);

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = Option<Entry>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = Option<Entry>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entry = Entry {
            fields: (0..self.0.len()).map(|_| Field::Missing).collect(),
            unexpected: Vec::new(),
        };
        while let Some(key) = map.next_key_seed(KeySeed(self.0))? {
            match key {
                Ok(i) => entry.fields[i] = map.next_value_seed(FieldSeed(self.0[i].1))?,
                Err(unknown) => {
                    entry.unexpected.push(unknown);
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(entry))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A key: its index in the field list, or the unknown key itself.
struct KeySeed(&'static [(&'static str, Kind)]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Result<usize, String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Result<usize, String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .iter()
            .position(|(name, _)| *name == key)
            .ok_or_else(|| key.to_owned()))
    }
}

/// A field's value, judged by its [`Kind`].
struct FieldSeed(Kind);

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Field, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl FieldSeed {
    fn other(&self) -> Field {
        match self.0 {
            Kind::Str { .. } => Field::NotString,
            Kind::Names => Field::NotArray,
        }
    }
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_str<E>(self, text: &str) -> Result<Field, E> {
        Ok(match self.0 {
            Kind::Str { keep } => Field::Str(keep.then(|| text.to_owned())),
            Kind::Names => Field::NotArray,
        })
    }

    fn visit_string<E>(self, text: String) -> Result<Field, E> {
        Ok(match self.0 {
            Kind::Str { keep } => Field::Str(keep.then_some(text)),
            Kind::Names => Field::NotArray,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        let Kind::Names = self.0 else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Field::NotString);
        };
        let mut names = Vec::new();
        let mut not_strings = 0;
        while let Some(member) = seq.next_element_seed(FieldSeed(Kind::Str { keep: true }))? {
            match member {
                Field::Str(Some(name)) => names.push(name),
                _ => not_strings += 1,
            }
        }
        Ok(Field::Names(names, not_strings))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(self.other())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Field, E> {
        Ok(self.other())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Field, E> {
        Ok(self.other())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Field, E> {
        Ok(self.other())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Field, E> {
        Ok(self.other())
    }

    fn visit_unit<E>(self) -> Result<Field, E> {
        Ok(self.other())
    }
}
