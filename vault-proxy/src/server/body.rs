//! Body types: one boxed streaming body for everything the proxy sends, and
//! the bounded buffer that makes an OAuth route's request replayable after a
//! refresh.
//!
//! Streaming is the rule: a client's request body and the upstream's
//! response body pass frame by frame. Only OAuth routes buffer a request
//! body, up to [`REPLAY_LIMIT`], so the request can be sent again after a 401
//! and a refresh; a larger body streams on (prefix, then the rest) and a 401
//! passes through to the client. All buffered bodies together stay within
//! [`BUFFER_BUDGET`]: past it a body streams on as a larger one does, so
//! clients that send many large bodies at once (any process of the harness
//! uid can connect) cannot run the proxy out of memory.

use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::HeaderMap;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

/// A boxed error from either side.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every request and response the proxy produces.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// The largest request body an OAuth route buffers for replay (32 MiB).
pub const REPLAY_LIMIT: usize = 32 << 20;

/// The most request-body bytes buffered at once, all requests together
/// (four bodies at the limit).
pub const BUFFER_BUDGET: usize = 4 * REPLAY_LIMIT;

/// Bytes buffered now, all requests together.
static BUFFERED: AtomicUsize = AtomicUsize::new(0);

/// A share of [`BUFFER_BUDGET`], given back when dropped.
#[derive(Default)]
struct Reservation(AtomicUsize);

impl Reservation {
    /// Take `n` more bytes of the budget; false (nothing taken) when they
    /// do not fit.
    fn take(&self, n: usize) -> bool {
        let before = BUFFERED.fetch_add(n, Ordering::AcqRel);
        if before.saturating_add(n) > BUFFER_BUDGET {
            BUFFERED.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        self.0.fetch_add(n, Ordering::AcqRel);
        true
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        BUFFERED.fetch_sub(*self.0.get_mut(), Ordering::AcqRel);
    }
}

/// A complete body.
pub fn full(b: impl Into<Bytes>) -> ProxyBody {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body streamed from the other side, frame by frame.
pub fn stream(incoming: Incoming) -> ProxyBody {
    incoming.map_err(BoxError::from).boxed_unsync()
}

/// A buffered request body that can be sent any number of times.
#[derive(Clone, Default)]
pub struct Replayable {
    chunks: Vec<Bytes>,
    trailers: Option<HeaderMap>,
    /// Its bytes' share of the budget, held while it can be replayed.
    _reserved: Arc<Reservation>,
}

impl Replayable {
    /// A fresh body over the same bytes.
    pub fn body(&self) -> ProxyBody {
        let len = self.chunks.iter().map(|c| c.len() as u64).sum();
        Chunks {
            chunks: self.chunks.iter().cloned().collect(),
            trailers: self.trailers.clone(),
            rest: None,
            remaining: Some(len),
            _reserved: None,
        }
        .boxed_unsync()
    }
}

/// The outcome of buffering a request body.
pub enum Buffered {
    /// The whole body, within the limit.
    Whole(Replayable),
    /// Over the limit: what was read, followed by the rest of the stream.
    TooLarge(ProxyBody),
}

/// Read `incoming` until its end, or until more than `limit` bytes or more
/// than the [`BUFFER_BUDGET`] left (then it is [`Buffered::TooLarge`]).
pub async fn buffer_up_to(mut incoming: Incoming, limit: usize) -> Result<Buffered, hyper::Error> {
    let mut chunks = Vec::new();
    let mut total = 0usize;
    let reserved = Arc::new(Reservation::default());
    while let Some(frame) = incoming.frame().await {
        let frame = frame?;
        match frame.into_data() {
            Ok(data) => {
                total += data.len();
                let fits = total <= limit && reserved.take(data.len());
                chunks.push(data);
                if !fits {
                    return Ok(Buffered::TooLarge(
                        Chunks {
                            chunks: chunks.into(),
                            trailers: None,
                            rest: Some(incoming),
                            remaining: None,
                            _reserved: Some(reserved),
                        }
                        .boxed_unsync(),
                    ));
                }
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    return Ok(Buffered::Whole(Replayable {
                        chunks,
                        trailers: Some(t),
                        _reserved: reserved,
                    }));
                }
            }
        }
    }
    Ok(Buffered::Whole(Replayable {
        chunks,
        trailers: None,
        _reserved: reserved,
    }))
}

/// Buffered chunks, then trailers, then (for an over-limit body) the rest of the stream.
struct Chunks {
    chunks: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    rest: Option<Incoming>,
    /// Exact length when the whole body is buffered.
    remaining: Option<u64>,
    /// The buffered prefix's share of the budget (an over-limit body).
    _reserved: Option<Arc<Reservation>>,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(c) = this.chunks.pop_front() {
            if let Some(r) = this.remaining.as_mut() {
                *r -= c.len() as u64;
            }
            return Poll::Ready(Some(Ok(Frame::data(c))));
        }
        if let Some(t) = this.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(t))));
        }
        match this.rest.as_mut() {
            Some(rest) => Pin::new(rest)
                .poll_frame(cx)
                .map(|o| o.map(|r| r.map_err(BoxError::from))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
            && self.trailers.is_none()
            && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) if self.trailers.is_none() => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back_when_a_body_is_dropped() {
        let first = Reservation::default();
        assert!(first.take(BUFFER_BUDGET));
        assert!(!Reservation::default().take(1), "over the budget");
        drop(first);
        let again = Reservation::default();
        assert!(again.take(BUFFER_BUDGET), "given back on drop");
    }
}
