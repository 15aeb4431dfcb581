//! Reading an answer's body within a bound. A short answer (a fail envelope, a
//! login verdict) is kept up to [`SHORT_LIMIT`] bytes and cut there; a `/sync`
//! payload is never held: it is checked as it streams in (see [`super::payload`])
//! and reading stops past the operator's bound (`--max-body-mib`). An endless or
//! huge answer so costs neither memory nor more than the bound's bytes of reading.

use std::io::{BufReader, Read};

use anyhow::Context;
use axum::body::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::payload::{self, Problems, Summary};

/// A fail envelope is a line of JSON; a megabyte is far beyond any real one.
pub const SHORT_LIMIT: usize = 1 << 20;
/// Chunks in flight between the socket and the checking thread.
const CHUNKS_IN_FLIGHT: usize = 16;
/// serde_json reads a stream byte by byte; a buffer makes that a memory copy.
const PARSE_BUFFER: usize = 64 * 1024;

/// The first [`SHORT_LIMIT`] bytes of an answer.
#[derive(Debug, Default)]
pub struct Short {
    pub bytes: Bytes,
    /// The answer went on past the limit (and was not read further).
    pub truncated: bool,
}

/// Reads up to `limit` bytes and stops.
pub async fn read_short(mut body: Incoming, limit: usize) -> anyhow::Result<Short> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.context("the answer broke off")?.into_data() else {
            continue;
        };
        let room = limit - bytes.len();
        if data.len() > room {
            bytes.extend_from_slice(&data[..room]);
            return Ok(Short {
                bytes: bytes.into(),
                truncated: true,
            });
        }
        bytes.extend_from_slice(&data);
    }
    Ok(Short {
        bytes: bytes.into(),
        truncated: false,
    })
}

/// A payload checked as it streamed in.
#[derive(Debug)]
pub struct Streamed {
    /// Bytes read (all of them, unless the answer was too large or broke the JSON
    /// syntax, where reading stopped).
    pub bytes: u64,
    pub verdict: Verdict,
}

#[derive(Debug)]
pub enum Verdict {
    Checked(Result<Summary, Problems>),
    /// More than the limit: reading stopped there.
    TooLarge {
        limit: u64,
    },
}

/// Feeds the body to the payload checker on a blocking thread, chunk by chunk.
pub async fn check_streamed(mut body: Incoming, limit: u64) -> anyhow::Result<Streamed> {
    let (chunks, receiver) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let checker = tokio::task::spawn_blocking(move || {
        payload::check_reader(BufReader::with_capacity(
            PARSE_BUFFER,
            ChannelReader {
                receiver,
                current: Bytes::new(),
            },
        ))
    });
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.context("the answer broke off")?.into_data() else {
            continue;
        };
        bytes += data.len() as u64;
        if bytes > limit {
            // The checker sees the end of its input and stops on its own.
            return Ok(Streamed {
                bytes,
                verdict: Verdict::TooLarge { limit },
            });
        }
        if chunks.send(data).await.is_err() {
            // The checker stopped early (the JSON syntax broke): nothing more to read.
            break;
        }
    }
    drop(chunks);
    let verdict = checker.await.context("the payload check failed")?;
    Ok(Streamed {
        bytes,
        verdict: Verdict::Checked(verdict),
    })
}

/// The body's chunks as a blocking reader; the end of the channel is the end of
/// the input.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
