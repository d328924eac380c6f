//! Thin, feature-gated adapters that mount [`StatusWebhook`](crate::webhook::StatusWebhook) in web frameworks.
//!
//! Every adapter does the same three things and nothing else:
//!
//! 1. reads the request body with the webhook's [`body_limit`](crate::webhook::StatusWebhook::body_limit),
//!    stopping at the first byte past it (a `Content-Length` over the limit is refused before
//!    reading anything); an oversized body is answered with the webhook's own
//!    [`payload_too_large`](crate::webhook::StatusWebhook::payload_too_large) 413;
//! 2. hands the method, the raw request target (path and query exactly as received, including
//!    any prefix the app is nested under), the headers and the body to
//!    [`StatusWebhook::handle`](crate::webhook::StatusWebhook::handle);
//! 3. sends back the [`WebhookResponse`](crate::webhook::WebhookResponse) as it is: status, headers, short text body.
//!
//! Every status code comes from [`WebhookError::status_code`](crate::webhook::WebhookError::status_code),
//! with one exception no webhook can see: a body the client stopped sending halfway (a dropped
//! connection, broken chunked encoding) is answered `400 Bad Request` here, as the frameworks
//! themselves do.
//!
//! # The public URL
//!
//! Twilio signs the exact URL it called. Configure it on the webhook with
//! [`public_url(base)`](crate::webhook::StatusWebhookBuilder::public_url): the scheme and host
//! Twilio calls, plus any path prefix a reverse proxy strips before the request reaches the
//! app. The adapter appends the request target it received. For example, when Twilio calls
//! `https://example.com/api/twilio/status` and the proxy forwards `/twilio/status`, the base is
//! `https://example.com/api`. Use
//! [`trusted_proxy`](crate::webhook::StatusWebhookBuilder::trusted_proxy) only behind a proxy
//! you control that sets (and overwrites) `Forwarded`/`X-Forwarded-*`.

#[cfg(any(feature = "axum", feature = "actix-web", feature = "warp"))]
use {
    bytes::{Buf, BufMut, Bytes, BytesMut},
    futures_util::{Stream, StreamExt},
    http::{HeaderMap, HeaderValue, StatusCode, header},
};

#[cfg(feature = "actix-web")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-web")))]
pub mod actix_web;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
#[cfg(feature = "warp")]
#[cfg_attr(docsrs, doc(cfg(feature = "warp")))]
pub mod warp;

/// Why an adapter stopped reading a request body.
#[cfg(any(feature = "axum", feature = "actix-web", feature = "warp"))]
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body (or its declared `Content-Length`) is larger than the limit.
    TooLarge,
    /// The client stopped sending or sent a broken body.
    Read,
}

/// Reads a request body, refusing a declared `Content-Length` over `limit` before reading and
/// stopping at the first chunk that takes the body past `limit`.
#[cfg(any(feature = "axum", feature = "actix-web", feature = "warp"))]
pub(crate) async fn read_limited<S, B, E>(
    headers: &HeaderMap,
    body: S,
    limit: usize,
) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(limit).min(limit));
    let mut buf = BytesMut::with_capacity(capacity);
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| BodyError::Read)?;
        if chunk.remaining() > limit - buf.len() {
            return Err(BodyError::TooLarge);
        }
        buf.put(chunk);
    }
    Ok(buf.freeze())
}

/// The `400` sent when the body could not be read (see the module docs).
#[cfg(any(feature = "axum", feature = "actix-web", feature = "warp"))]
const BODY_READ_FAILED: &str = "could not read request body\n";

/// The HTTP response for a body that could not be read: the webhook's 413 when it was too
/// large, `400` when the client broke off.
#[cfg(any(feature = "axum", feature = "actix-web", feature = "warp"))]
pub(crate) fn body_error_response<B: From<&'static str>>(
    webhook: &crate::webhook::StatusWebhook,
    error: BodyError,
) -> http::Response<B> {
    match error {
        BodyError::TooLarge => to_http(&webhook.payload_too_large()),
        BodyError::Read => {
            tracing::debug!("status callback body could not be read");
            text_response(StatusCode::BAD_REQUEST, &[], BODY_READ_FAILED)
        }
    }
}

/// The webhook's answer as an `http` response: its status, its headers, and its short reason
/// as a `text/plain` body (no body at all for a 204).
#[cfg(any(feature = "axum", feature = "actix-web", feature = "warp"))]
pub(crate) fn to_http<B: From<&'static str>>(
    response: &crate::webhook::WebhookResponse,
) -> http::Response<B> {
    text_response(response.status, &response.headers, response.body())
}

#[cfg(any(feature = "axum", feature = "actix-web", feature = "warp"))]
fn text_response<B: From<&'static str>>(
    status: StatusCode,
    headers: &[(http::HeaderName, HeaderValue)],
    body: &'static str,
) -> http::Response<B> {
    let mut response = http::Response::new(B::from(body));
    *response.status_mut() = status;
    let map = response.headers_mut();
    for (name, value) in headers {
        map.append(name.clone(), value.clone());
    }
    if !body.is_empty() {
        map.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    response
}

#[cfg(all(test, any(feature = "axum", feature = "actix-web", feature = "warp")))]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static str]) -> impl Stream<Item = Result<Bytes, ()>> {
        futures_util::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p.as_bytes()))))
    }

    #[tokio::test]
    async fn reads_up_to_the_limit_and_stops_past_it() {
        let h = HeaderMap::new();
        let body = read_limited(&h, chunks(&["ab", "cd"]), 4).await.unwrap();
        assert_eq!(&body[..], b"abcd");
        assert!(matches!(
            read_limited(&h, chunks(&["ab", "cde"]), 4).await,
            Err(BodyError::TooLarge)
        ));
    }

    #[tokio::test]
    async fn declared_length_over_the_limit_is_refused_unread() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        let never = futures_util::stream::pending::<Result<Bytes, ()>>();
        assert!(matches!(
            read_limited(&h, never, 4).await,
            Err(BodyError::TooLarge)
        ));
    }

    #[tokio::test]
    async fn a_broken_body_is_a_read_error() {
        let h = HeaderMap::new();
        let broken = futures_util::stream::iter([Ok(Bytes::from_static(b"ab")), Err(())]);
        assert!(matches!(
            read_limited(&h, broken, 4).await,
            Err(BodyError::Read)
        ));
    }
}
