//! A reader of PostgreSQL's binary `COPY … TO STDOUT (FORMAT binary)` stream,
//! independent of the driver: it is fed the payloads of the CopyData messages
//! as they arrive and hands on each tuple's cells as byte slices (`None` for
//! NULL). The server usually sends one tuple a message (the header travels
//! with the first), but the protocol promises nothing of the kind: a message may
//! end inside a tuple or hold several, and both are handled.
//!
//! The format (PostgreSQL documentation, "COPY", "Binary Format"): an 11-byte
//! signature `PGCOPY\n\xff\r\n\0`, a 32-bit flags field (bit 16: OIDs included;
//! bits 0-15 reserved and must be zero… in practice only bit 16 is ever set, and
//! unknown bits 16-31 are to be ignored), a 32-bit header-extension length and
//! that many bytes; then tuples, each a 16-bit field count followed, per field,
//! by a 32-bit length (-1 for NULL) and that many bytes; then the trailer, a
//! field count of -1. All integers are big-endian.

use std::ops::Range;

/// The 11 bytes every binary COPY stream starts with.
pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Flags bit 16: each tuple carries an OID field first (only old servers and
/// `WITH OIDS` tables send it; COPY of a query never does).
const FLAG_OIDS: u32 = 1 << 16;
/// Bits 0-15 are "critical": a reader must refuse a stream with one it does not
/// know.
const CRITICAL_FLAGS: u32 = 0xffff;

/// A stream that is not binary COPY as documented, or not the shape expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyFormatError {
    #[error("the binary COPY stream does not start with the PGCOPY signature")]
    Signature,
    #[error("the binary COPY stream has flags this reader does not know ({0:#x})")]
    Flags(u32),
    #[error("a binary COPY tuple has {found} fields where {expected} were expected")]
    FieldCount { expected: usize, found: i16 },
    #[error("a binary COPY field has the invalid length {0}")]
    FieldLength(i32),
    #[error("the binary COPY stream goes on after its trailer")]
    AfterTrailer,
    #[error("the binary COPY stream ended without its trailer")]
    Truncated,
}

/// Where the reader is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Tuples,
    Done,
}

/// One tuple's cells, borrowed from the data fed.
#[derive(Debug, Clone, Copy)]
pub struct Tuple<'a> {
    data: &'a [u8],
    cells: &'a [Option<Range<usize>>],
}

impl<'a> Tuple<'a> {
    /// Number of cells.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Cell `index`: its bytes, or `None` for NULL (and past the last cell).
    pub fn get(&self, index: usize) -> Option<&'a [u8]> {
        let range = self.cells.get(index)?.clone()?;
        self.data.get(range)
    }
}

/// Reads a binary COPY stream of tuples of `columns` fields.
#[derive(Debug)]
pub struct CopyReader {
    columns: usize,
    state: State,
    /// Whether tuples lead with an OID field (skipped).
    oids: bool,
    /// The unread end of earlier chunks: part of a header or of a tuple.
    pending: Vec<u8>,
    /// The cells of the tuple being read, reused from tuple to tuple.
    cells: Vec<Option<Range<usize>>>,
}

/// What parsing from the start of some bytes found.
enum Step {
    /// The item is not complete yet: more bytes are needed.
    More,
    /// An item of this many bytes was read (for a tuple, `cells` hold it).
    Read(usize),
}

/// A failure of [`CopyReader::feed`]: the stream's, or the caller's own.
#[derive(Debug)]
pub enum FeedError<E> {
    Format(CopyFormatError),
    Row(E),
}

impl<E> From<CopyFormatError> for FeedError<E> {
    fn from(e: CopyFormatError) -> Self {
        Self::Format(e)
    }
}

fn be_i16(bytes: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn be_i32(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl CopyReader {
    /// A reader of tuples that must each have `columns` fields.
    pub fn new(columns: usize) -> Self {
        Self {
            columns,
            state: State::Header,
            oids: false,
            pending: Vec::new(),
            cells: Vec::with_capacity(columns),
        }
    }

    /// Reads `chunk`, the next bytes of the stream, calling `row` for each tuple
    /// it completes. Bytes of an unfinished item are kept for the next chunk.
    pub fn feed<E>(
        &mut self,
        chunk: &[u8],
        mut row: impl FnMut(Tuple<'_>) -> Result<(), E>,
    ) -> Result<(), FeedError<E>> {
        if self.pending.is_empty() {
            // The usual case: whole tuples, read where they lie.
            let used = self.read_all(chunk, &mut row)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(chunk);
            let used = self.read_all(&pending, &mut row);
            // Keep the buffer (and its capacity) for the next partial tuple.
            let used = match used {
                Ok(used) => used,
                Err(e) => {
                    self.pending = pending;
                    return Err(e);
                }
            };
            pending.drain(..used);
            self.pending = pending;
        }
        Ok(())
    }

    /// Checks that the stream ended where it may: after its trailer.
    pub fn finish(&self) -> Result<(), CopyFormatError> {
        if self.state == State::Done && self.pending.is_empty() {
            Ok(())
        } else {
            Err(CopyFormatError::Truncated)
        }
    }

    /// Reads every complete item at the start of `data`; returns the bytes used.
    fn read_all<E>(
        &mut self,
        data: &[u8],
        row: &mut impl FnMut(Tuple<'_>) -> Result<(), E>,
    ) -> Result<usize, FeedError<E>> {
        let mut at = 0;
        while at < data.len() {
            let rest = &data[at..];
            let step = match self.state {
                State::Header => self.header(rest)?,
                State::Tuples => self.tuple(rest)?,
                State::Done => return Err(CopyFormatError::AfterTrailer.into()),
            };
            let Step::Read(used) = step else {
                break;
            };
            if self.state == State::Tuples && !self.cells.is_empty() {
                row(Tuple {
                    data: rest,
                    cells: &self.cells,
                })
                .map_err(FeedError::Row)?;
                self.cells.clear();
            }
            if self.state == State::Header {
                self.state = State::Tuples;
            }
            at += used;
        }
        Ok(at)
    }

    /// The header at the start of `data`: signature, flags, extension.
    fn header(&mut self, data: &[u8]) -> Result<Step, CopyFormatError> {
        let known = data.len().min(SIGNATURE.len());
        if data[..known] != SIGNATURE[..known] {
            return Err(CopyFormatError::Signature);
        }
        let (Some(flags), Some(extension)) = (be_u32(data, 11), be_u32(data, 15)) else {
            return Ok(Step::More);
        };
        if flags & CRITICAL_FLAGS != 0 {
            return Err(CopyFormatError::Flags(flags));
        }
        self.oids = flags & FLAG_OIDS != 0;
        let Some(total) = usize::try_from(extension)
            .ok()
            .and_then(|e| e.checked_add(19))
        else {
            return Err(CopyFormatError::Flags(flags));
        };
        if data.len() < total {
            return Ok(Step::More);
        }
        Ok(Step::Read(total))
    }

    /// The tuple (or trailer) at the start of `data`; its cells go in
    /// `self.cells` (left empty for the trailer, and when more bytes are needed).
    fn tuple(&mut self, data: &[u8]) -> Result<Step, CopyFormatError> {
        self.cells.clear();
        let Some(count) = be_i16(data, 0) else {
            return Ok(Step::More);
        };
        if count == -1 {
            self.state = State::Done;
            return Ok(Step::Read(2));
        }
        let fields = usize::try_from(count).unwrap_or(usize::MAX);
        let skip = usize::from(self.oids);
        if count < 0 || fields != self.columns + skip || fields == 0 {
            return Err(CopyFormatError::FieldCount {
                expected: self.columns,
                found: count,
            });
        }
        let mut at = 2;
        for field in 0..fields {
            let Some(length) = be_i32(data, at) else {
                self.cells.clear();
                return Ok(Step::More);
            };
            at += 4;
            let cell = match length {
                -1 => None,
                n if n >= 0 => {
                    let end = at + n as usize;
                    if end > data.len() {
                        self.cells.clear();
                        return Ok(Step::More);
                    }
                    let range = at..end;
                    at = end;
                    Some(range)
                }
                n => {
                    self.cells.clear();
                    return Err(CopyFormatError::FieldLength(n));
                }
            };
            if field >= skip {
                self.cells.push(cell);
            }
        }
        Ok(Step::Read(at))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A stream of `rows` as the server writes it (cells `None` for NULL).
    pub(crate) fn encode(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        for row in rows {
            out.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for cell in row {
                match cell {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(bytes) => {
                        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                        out.extend_from_slice(bytes);
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    type Cells = Vec<Option<Vec<u8>>>;

    /// Feeds `chunks` to a reader of `columns`; returns the rows read.
    fn read(columns: usize, chunks: &[&[u8]]) -> Result<Vec<Cells>, CopyFormatError> {
        let mut reader = CopyReader::new(columns);
        let mut rows = Vec::new();
        for chunk in chunks {
            reader
                .feed(chunk, |t| {
                    rows.push((0..t.len()).map(|i| t.get(i).map(<[u8]>::to_vec)).collect());
                    Ok::<_, ()>(())
                })
                .map_err(|e| match e {
                    FeedError::Format(f) => f,
                    FeedError::Row(()) => unreachable!(),
                })?;
        }
        reader.finish()?;
        Ok(rows)
    }

    fn sample() -> Vec<Cells> {
        vec![
            vec![Some(b"alice".to_vec()), None, Some(Vec::new())],
            vec![Some(vec![0xff, 0x00]), Some(b"x".to_vec()), Some(vec![1])],
        ]
    }

    #[test]
    fn reads_tuples_nulls_and_empty_cells_in_one_chunk() {
        let stream = encode(&sample());
        assert_eq!(read(3, &[&stream]), Ok(sample()));
    }

    #[test]
    fn reads_an_empty_result() {
        let stream = encode(&[]);
        assert_eq!(read(3, &[&stream]), Ok(vec![]));
    }

    #[test]
    fn one_byte_at_a_time() {
        let stream = encode(&sample());
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(read(3, &chunks), Ok(sample()));
    }

    #[test]
    fn refuses_a_wrong_signature() {
        let mut stream = encode(&sample());
        stream[0] = b'X';
        assert_eq!(read(3, &[&stream]), Err(CopyFormatError::Signature));
        // Known as soon as the first wrong byte arrives.
        let mut reader = CopyReader::new(3);
        let e = reader.feed(b"PGCOPX", |_| Ok::<_, ()>(()));
        assert!(matches!(
            e,
            Err(FeedError::Format(CopyFormatError::Signature))
        ));
    }

    #[test]
    fn refuses_critical_flags_and_skips_the_extension() {
        let mut stream = encode(&sample());
        stream[14] = 1;
        assert_eq!(read(3, &[&stream]), Err(CopyFormatError::Flags(1)));
        // A header extension of 3 bytes is skipped.
        let mut stream = encode(&sample());
        stream[18] = 3;
        stream.splice(19..19, [7, 7, 7]);
        assert_eq!(read(3, &[&stream]), Ok(sample()));
    }

    #[test]
    fn skips_oids_when_the_flag_says_so() {
        let mut with_oids = Vec::new();
        for row in sample() {
            let mut cells = vec![Some(vec![0, 0, 0, 42])];
            cells.extend(row);
            with_oids.push(cells);
        }
        let mut stream = encode(&with_oids);
        stream[12] = 1; // flags = 1 << 16
        assert_eq!(read(3, &[&stream]), Ok(sample()));
    }

    #[test]
    fn refuses_a_tuple_of_another_width() {
        let stream = encode(&sample());
        assert_eq!(
            read(2, &[&stream]),
            Err(CopyFormatError::FieldCount {
                expected: 2,
                found: 3
            })
        );
    }

    #[test]
    fn refuses_a_negative_length_other_than_null() {
        let mut stream = encode(&[vec![Some(b"a".to_vec())]]);
        // Header 19, count 2, then the length.
        stream[21..25].copy_from_slice(&(-2i32).to_be_bytes());
        assert_eq!(read(1, &[&stream]), Err(CopyFormatError::FieldLength(-2)));
    }

    #[test]
    fn refuses_a_stream_cut_short_or_running_on() {
        let stream = encode(&sample());
        let cut = &stream[..stream.len() - 1];
        assert_eq!(read(3, &[cut]), Err(CopyFormatError::Truncated));
        let cut = &stream[..stream.len() - 2];
        assert_eq!(read(3, &[cut]), Err(CopyFormatError::Truncated));
        let mut longer = stream.clone();
        longer.push(0);
        assert_eq!(read(3, &[&longer]), Err(CopyFormatError::AfterTrailer));
    }

    #[test]
    fn a_row_error_stops_the_read() {
        let stream = encode(&sample());
        let mut reader = CopyReader::new(3);
        let mut seen = 0;
        let e = reader.feed(&stream, |_| {
            seen += 1;
            Err("full")
        });
        assert!(matches!(e, Err(FeedError::Row("full"))));
        assert_eq!(seen, 1);
    }

    fn cell() -> impl Strategy<Value = Option<Vec<u8>>> {
        prop::option::weighted(0.8, prop::collection::vec(any::<u8>(), 0..40))
    }

    proptest! {
        /// Any split of the stream into chunks (splitting tuples, joining
        /// them, empty chunks) reads the same rows.
        #[test]
        fn any_chunking_reads_the_same_rows(
            rows in prop::collection::vec(prop::collection::vec(cell(), 3), 0..30),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let stream = encode(&rows);
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            at.push(0);
            at.push(stream.len());
            at.sort_unstable();
            let chunks: Vec<&[u8]> = at.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
            prop_assert_eq!(read(3, &chunks), Ok(rows));
        }
    }
}
