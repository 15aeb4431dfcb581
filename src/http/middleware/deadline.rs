//! The request deadline (`server.request_timeout_secs`): a request still
//! unanswered then is answered here, with the fail envelope, and its handler is
//! dropped, which cancels its work. A client that never finished sending its body
//! gets 408; slow work on our side (a database lock, say) gets 503 + `Retry-After`.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::http::{AppState, RequestDeadline};

/// Runs the request against its deadline.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let deadline = Instant::now() + state.request_timeout;
    let (mut parts, body) = request.into_parts();
    // A body announced larger than the limit is refused at once, not after
    // waiting for bytes that would be refused anyway.
    let announced = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > state.body_limit as u64) {
        return ApiError::PayloadTooLarge(state.body_limit).into_response();
    }
    let received = Arc::new(AtomicBool::new(body.is_end_stream()));
    parts.extensions.insert(RequestDeadline(deadline));
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let body = Body::new(WatchedBody {
        inner: body,
        received: received.clone(),
    });
    match tokio::time::timeout_at(deadline, next.run(Request::from_parts(parts, body))).await {
        Ok(response) => response,
        Err(_) if !received.load(Ordering::Acquire) => {
            tracing::info!(%request_id, "request body did not arrive in time");
            ApiError::BodyTimedOut.into_response()
        }
        Err(_) => {
            tracing::warn!(
                %request_id,
                timeout_secs = state.request_timeout.as_secs(),
                "request did not finish in time; answered 503 and cancelled its work"
            );
            ApiError::TimedOut.into_response()
        }
    }
}

/// A request body that notes when it has been read to its end.
struct WatchedBody {
    inner: Body,
    received: Arc<AtomicBool>,
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || this.inner.is_end_stream() {
            this.received.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
