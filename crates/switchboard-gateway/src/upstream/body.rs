//! Reading an upstream's HTTP answer on the direct path ([`super::exchange`]): what kind of
//! body it is, a size limit on it, and draining the rest of an answer stream so its
//! connection goes back to the pool.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use http::{HeaderMap, header::CONTENT_TYPE};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use sse_stream::SseStream;

/// Largest JSON answer read (rmcp's default limit too).
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;
/// Largest SSE answer stream read, all events together.
pub(super) const MAX_STREAM_BYTES: u64 = 64 * 1024 * 1024;
/// How long the rest of an answer stream (after the response) is read so the connection can be
/// reused; servers end it right after the response.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(250);

/// Read the rest of an answer stream so the connection can be reused: at once if it has
/// ended already (the common case), else in the background for a moment.
pub(super) fn drain(mut events: SseStream<Capped>) {
    match events.next().now_or_never() {
        Some(None) => {}
        _ => {
            tokio::spawn(async move {
                let rest = async { while events.next().await.is_some() {} };
                let _ = tokio::time::timeout(DRAIN_TIMEOUT, rest).await;
            });
        }
    }
}

pub(super) async fn read_json(mut body: Capped) -> Result<Bytes, String> {
    body.limit = MAX_JSON_BYTES;
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(format!("reading the answer failed: {error}")),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Json,
    Stream,
    Other(Option<String>),
}

impl Kind {
    pub(super) fn of(headers: &HeaderMap) -> Self {
        let Some(value) = headers.get(CONTENT_TYPE) else {
            return Kind::Other(None);
        };
        let essence = value
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        if essence.eq_ignore_ascii_case("application/json") {
            Kind::Json
        } else if essence.eq_ignore_ascii_case("text/event-stream") {
            Kind::Stream
        } else {
            Kind::Other(Some(String::from_utf8_lossy(value.as_bytes()).into_owned()))
        }
    }
}

/// A response body that fails once it has delivered more than `limit` bytes.
pub struct Capped {
    inner: reqwest::Body,
    read: u64,
    limit: u64,
}

impl Capped {
    pub(super) fn new(inner: reqwest::Body, limit: u64) -> Self {
        Self {
            inner,
            read: 0,
            limit,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(u64),
}

impl Body for Capped {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    if this.read > this.limit {
                        return Poll::Ready(Some(Err(BodyError::TooLarge(this.limit))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn content_kinds() {
        let mut headers = HeaderMap::new();
        assert_eq!(Kind::of(&headers), Kind::Other(None));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(Kind::of(&headers), Kind::Json);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("Text/Event-Stream"));
        assert_eq!(Kind::of(&headers), Kind::Stream);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        assert_eq!(
            Kind::of(&headers),
            Kind::Other(Some("text/html".to_owned()))
        );
    }
}
