//! The `/sync` document, deterministic by construction: users by username,
//! departments by group_no, each member list sorted, byte order throughout, so that
//! the same data always gives the same bytes. It is held LZ4-compressed (the same
//! bytes the deletion snapshot stores) and decompressed as it is sent.

use std::io::Read;
use std::sync::Arc;

/// Bytes per piece of a compressed payload.
const PIECE: usize = 1 << 20;

/// Bytes kept as fixed-size pieces: growing one buffer by doubling would hold up
/// to twice the payload (and copy it) at the moment it is largest.
#[derive(Debug, Default)]
pub struct Pieces {
    done: Vec<Box<[u8]>>,
    current: Vec<u8>,
}

impl Pieces {
    /// The pieces, sealed.
    pub fn finish(mut self) -> Arc<[Box<[u8]>]> {
        if !self.current.is_empty() {
            self.done
                .push(std::mem::take(&mut self.current).into_boxed_slice());
        }
        Arc::from(self.done)
    }
}

impl std::io::Write for Pieces {
    fn write(&mut self, mut data: &[u8]) -> std::io::Result<usize> {
        let written = data.len();
        while !data.is_empty() {
            if self.current.capacity() == 0 {
                self.current = Vec::with_capacity(PIECE);
            }
            let room = PIECE - self.current.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.current.extend_from_slice(now);
            data = rest;
            if self.current.len() == PIECE {
                // Full to capacity: boxing it reallocates nothing.
                self.done
                    .push(std::mem::take(&mut self.current).into_boxed_slice());
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads sealed pieces in order.
struct PiecesReader {
    pieces: Arc<[Box<[u8]>]>,
    index: usize,
    offset: usize,
}

/// The bytes of `pieces`, in order, as one stream.
pub fn read_pieces(pieces: Arc<[Box<[u8]>]>) -> impl Read + Send + 'static {
    PiecesReader {
        pieces,
        index: 0,
        offset: 0,
    }
}

impl Read for PiecesReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(piece) = self.pieces.get(self.index) {
            if self.offset < piece.len() {
                let n = buf.len().min(piece.len() - self.offset);
                buf[..n].copy_from_slice(&piece[self.offset..self.offset + n]);
                self.offset += n;
                return Ok(n);
            }
            self.index += 1;
            self.offset = 0;
        }
        Ok(0)
    }
}

/// A built `/sync` answer.
#[derive(Debug, Clone)]
pub struct SyncPayload {
    /// The JSON as an LZ4 frame, in pieces.
    pub compressed: Arc<[Box<[u8]>]>,
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
            compressed: Arc::from(Vec::new()),
            bytes: 0,
            users: 0,
            groups: 0,
            digest: String::new(),
        }
    }

    /// The JSON, decompressed as it is read.
    pub fn reader(&self) -> impl Read + Send + 'static {
        lz4_flex::frame::FrameDecoder::new(read_pieces(self.compressed.clone()))
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
