//! The `/sync` document, deterministic by construction: users by username,
//! departments by group_no, each member list sorted, byte order throughout, so that
//! the same data always gives the same bytes. It is held LZ4-compressed (the same
//! bytes the deletion snapshot stores) and decompressed as it is sent.

use std::io::Read;
use std::sync::Arc;

/// A built `/sync` answer.
#[derive(Debug, Clone)]
pub struct SyncPayload {
    /// The JSON as an LZ4 frame.
    pub compressed: Arc<[u8]>,
    /// Length of the JSON itself.
    pub bytes: usize,
    pub users: usize,
    pub groups: usize,
    /// XXH3-128 of the JSON, hex: tells an unchanged payload without reading the snapshot.
    pub digest: String,
}

impl SyncPayload {
    /// A payload with nothing in it (what a validation-only build yields).
    pub fn empty() -> Self {
        Self {
            compressed: Arc::from(Vec::new().into_boxed_slice()),
            bytes: 0,
            users: 0,
            groups: 0,
            digest: String::new(),
        }
    }

    /// The JSON, decompressed as it is read.
    pub fn reader(&self) -> impl Read + Send + 'static {
        lz4_flex::frame::FrameDecoder::new(std::io::Cursor::new(self.compressed.clone()))
    }

    /// The whole JSON in memory (for the command line; the server streams it).
    pub fn json(&self) -> std::io::Result<Vec<u8>> {
        let mut json = Vec::with_capacity(self.bytes);
        self.reader().read_to_end(&mut json)?;
        Ok(json)
    }
}

/// OMFLOW knows `male`, `female` and `""`. HR data often says `M`, `Female ` and so
/// on, so case and surrounding blanks are forgiven and one-letter codes understood;
/// anything else is served as unknown.
pub fn normalise_gender(raw: Option<&str>) -> &'static str {
    match raw.map(|g| g.trim().to_ascii_lowercase()).as_deref() {
        Some("male" | "m") => "male",
        Some("female" | "f") => "female",
        _ => "",
    }
}
