//! The payload's JSON on its way into an LZ4 frame, hashed (XXH3-128) as it goes,
//! gathered in chunks so that the serializer's many small writes cost little.

use std::io::Write;

use lz4_flex::frame::FrameEncoder;
use xxhash_rust::xxh3::Xxh3;

use super::payload::{Pieces, SyncPayload};

/// Bytes gathered before they are hashed and compressed.
const CHUNK: usize = 64 * 1024;

/// The JSON on its way into the compressed payload, hashed as it goes.
pub(super) struct PayloadWriter {
    pending: Vec<u8>,
    hasher: Xxh3,
    encoder: FrameEncoder<Pieces>,
    len: usize,
}

impl PayloadWriter {
    pub(super) fn new() -> Self {
        Self {
            pending: Vec::with_capacity(CHUNK + 1024),
            hasher: Xxh3::new(),
            encoder: FrameEncoder::new(Pieces::default()),
            len: 0,
        }
    }

    fn drain(&mut self) -> std::io::Result<()> {
        self.hasher.update(&self.pending);
        self.encoder.write_all(&self.pending)?;
        self.len += self.pending.len();
        self.pending.clear();
        Ok(())
    }

    pub(super) fn finish(mut self, users: usize, groups: usize) -> std::io::Result<SyncPayload> {
        self.drain()?;
        let compressed = self.encoder.finish().map_err(std::io::Error::other)?;
        Ok(SyncPayload {
            compressed: compressed.finish(),
            bytes: self.len,
            users,
            groups,
            digest: format!("{:032x}", self.hasher.digest128()),
        })
    }
}

impl Write for PayloadWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    // The JSON serializer writes a few bytes at a time: no retry loop around them.
    #[inline]
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.pending.extend_from_slice(data);
        if self.pending.len() >= CHUNK {
            self.drain()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `{"name":"value",...` (the object left open for what follows).
/// Names are the contract's field names: plain ASCII, written as they are.
pub(super) fn write_object<'v>(
    out: &mut PayloadWriter,
    fields: impl Iterator<Item = (&'static str, &'v str)>,
) -> std::io::Result<()> {
    for (i, (name, value)) in fields.enumerate() {
        out.write_all(if i == 0 { b"{\"" } else { b",\"" })?;
        out.write_all(name.as_bytes())?;
        out.write_all(b"\":")?;
        serde_json::to_writer(&mut *out, value).map_err(std::io::Error::from)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the values (quotes, backslashes, controls, any script),
        /// the object written is JSON holding exactly them, and the payload's
        /// length and digest are those of the JSON.
        #[test]
        fn values_are_escaped_into_valid_json(
            values in prop::collection::vec(any::<String>(), 1..6),
            chunks in 1usize..4,
        ) {
            let mut out = PayloadWriter::new();
            // Several objects, so that some cross a chunk boundary.
            let mut expected = Vec::new();
            out.write_all(b"[").map_err(|e| TestCaseError::fail(e.to_string()))?;
            for round in 0..chunks * 400 {
                if round > 0 {
                    out.write_all(b",").map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
                let names = ["a", "b_c", "d1", "e", "f", "g"];
                write_object(&mut out, names.iter().copied().zip(values.iter().map(String::as_str)))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                out.write_all(b"}").map_err(|e| TestCaseError::fail(e.to_string()))?;
                expected.push(serde_json::Value::Object(
                    names.iter().zip(&values).map(|(n, v)| ((*n).to_owned(), v.clone().into())).collect(),
                ));
            }
            out.write_all(b"]").map_err(|e| TestCaseError::fail(e.to_string()))?;
            let payload = out.finish(0, 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let json = payload.json().map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(json.len(), payload.bytes);
            prop_assert_eq!(&payload.digest, &format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&json)));
            let parsed: serde_json::Value = serde_json::from_slice(&json)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed, serde_json::Value::Array(expected));
        }
    }
}
