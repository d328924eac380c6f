//! Thin, feature-gated adapters that mount [`StatusWebhook`](crate::webhook::StatusWebhook) in web frameworks.
//!
//! Every adapter does the same three things and nothing else:
//!
//! 1. reads the request body with the webhook's [`body_limit`](crate::webhook::StatusWebhook::body_limit),
//!    stopping at the first byte past it (a `Content-Length` over the limit is refused before
//!    reading anything), and within its
//!    [`body_read_timeout`](crate::webhook::StatusWebhook::body_read_timeout), growing the buffer
//!    as bytes arrive (never from the declared length); an oversized body is answered with the
//!    webhook's own [`payload_too_large`](crate::webhook::StatusWebhook::payload_too_large) 413,
//!    a body not received in time with `408 Request Timeout`;
//! 2. hands the method, the raw request target (path and query exactly as received, including
//!    any prefix the app is nested under), the headers and the body to
//!    [`StatusWebhook::handle`](crate::webhook::StatusWebhook::handle);
//! 3. sends back the [`WebhookResponse`](crate::webhook::WebhookResponse) as it is: status, headers, short text body.
//!
//! Every status code comes from [`WebhookError::status_code`](crate::webhook::WebhookError::status_code),
//! with two exceptions no webhook can see: a body the client stopped sending halfway (a dropped
//! connection, broken chunked encoding) is answered `400 Bad Request` here, as the frameworks
//! themselves do, and a body still incomplete at the deadline `408 Request Timeout`.
//!
//! # Slow clients
//!
//! The adapters bound the body; the request head is the server's job. actix-web closes a
//! connection whose head is late (`client_request_timeout`, 5 s by default). `axum::serve` and
//! warp's server set no such limit: serve them through hyper-util's connection builder with
//! `http1().header_read_timeout(..)` and a timer, as `examples/axum_app.rs` and
//! `examples/warp_app.rs` do.
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

#[cfg(feature = "actix-web")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-web")))]
pub mod actix_web;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
#[cfg(feature = "warp")]
#[cfg_attr(docsrs, doc(cfg(feature = "warp")))]
pub mod warp;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

/// What every adapter shares: reading the body with the limit, and the response translation.
#[cfg(any(
    feature = "axum",
    feature = "actix-web",
    feature = "warp",
    feature = "tower"
))]
mod shared {
    use bytes::{Buf, BufMut, Bytes, BytesMut};
    use futures_util::{Stream, StreamExt};
    use http::{HeaderMap, HeaderValue, StatusCode, header};

    /// Why an adapter stopped reading a request body.
    #[derive(Debug)]
    pub(crate) enum BodyError {
        /// The body (or its declared `Content-Length`) is larger than the limit.
        TooLarge,
        /// The client stopped sending or sent a broken body.
        Read,
        /// The whole body did not arrive within the deadline.
        Timeout,
    }

    /// Reads a request body with the webhook's limit and deadline (see [`read_within`]).
    #[cfg(any(feature = "axum", feature = "actix-web", feature = "warp"))]
    pub(crate) async fn read_limited<S, B, E>(
        webhook: &crate::webhook::StatusWebhook,
        headers: &HeaderMap,
        body: S,
    ) -> Result<Bytes, BodyError>
    where
        S: Stream<Item = Result<B, E>>,
        B: Buf,
    {
        read_within(
            webhook.body_limit(),
            webhook.body_read_timeout(),
            headers,
            body,
        )
        .await
    }

    /// Reads a request body of at most `limit` bytes within `deadline`: a declared
    /// `Content-Length` over the limit is refused before reading, reading stops at the first
    /// chunk that takes the body past the limit, and the whole body must arrive in time. The
    /// buffer grows with what arrives, so a client declaring a large body and sending nothing
    /// costs nothing.
    pub(crate) async fn read_within<S, B, E>(
        limit: usize,
        deadline: std::time::Duration,
        headers: &HeaderMap,
        body: S,
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
        let read = async {
            let mut buf = BytesMut::new();
            let mut body = std::pin::pin!(body);
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|_| BodyError::Read)?;
                if chunk.remaining() > limit - buf.len() {
                    return Err(BodyError::TooLarge);
                }
                buf.put(chunk);
            }
            Ok(buf.freeze())
        };
        tokio::time::timeout(deadline, read)
            .await
            .unwrap_or(Err(BodyError::Timeout))
    }

    /// The HTTP response for a body that could not be read: the webhook's 413 when it was too
    /// large, `400` when the client broke off, `408` (closing the connection) when it was too
    /// slow.
    #[cfg(any(feature = "axum", feature = "actix-web", feature = "warp"))]
    pub(crate) fn body_error_response<B: From<&'static str>>(
        webhook: &crate::webhook::StatusWebhook,
        error: BodyError,
    ) -> http::Response<B> {
        // (The webhook counts its own 413.)
        let refusal = match error {
            BodyError::TooLarge => return to_http(&webhook.payload_too_large()),
            BodyError::Read => {
                tracing::debug!("status callback body could not be read");
                guard_error(error, webhook.body_limit())
            }
            BodyError::Timeout => {
                tracing::warn!("status callback refused: body not received in time");
                guard_error(error, webhook.body_limit())
            }
        };
        crate::metrics::callback_answered(refusal.status_code().as_u16());
        guard_response(&refusal)
    }

    /// The webhook's answer as an `http` response: its status, its headers, and its short reason
    /// as a `text/plain` body (no body at all for a 204).
    #[cfg(any(feature = "axum", feature = "actix-web", feature = "warp"))]
    pub(crate) fn to_http<B: From<&'static str>>(
        response: &crate::webhook::WebhookResponse,
    ) -> http::Response<B> {
        text_response(response.status, &response.headers, response.body())
    }

    /// The guard's refusal as an `http` response.
    pub(crate) fn guard_response<B: From<&'static str>>(
        error: &crate::guard::GuardError,
    ) -> http::Response<B> {
        text_response(error.status_code(), &error.headers(), error.body())
    }

    /// The guard's view of a body error.
    pub(crate) fn guard_error(error: BodyError, limit: usize) -> crate::guard::GuardError {
        match error {
            BodyError::TooLarge => crate::guard::GuardError::PayloadTooLarge { limit },
            BodyError::Read => crate::guard::GuardError::BodyRead,
            BodyError::Timeout => crate::guard::GuardError::BodyTimeout,
        }
    }

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
        use std::sync::Arc;
        use std::time::Duration;

        use super::*;
        use crate::webhook::StatusWebhook;
        use crate::{AuthToken, MemoryStore, SignatureValidator};

        fn webhook(limit: usize) -> StatusWebhook {
            StatusWebhook::builder(
                SignatureValidator::new(AuthToken::new("t")),
                Arc::new(MemoryStore::new()),
            )
            .public_url("https://example.com")
            .body_limit(limit)
            .body_read_timeout(Duration::from_millis(50))
            .build()
            .unwrap()
        }

        fn chunks(parts: &[&'static str]) -> impl Stream<Item = Result<Bytes, ()>> {
            futures_util::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p.as_bytes()))))
        }

        #[tokio::test]
        async fn reads_up_to_the_limit_and_stops_past_it() {
            let (h, w) = (HeaderMap::new(), webhook(4));
            let body = read_limited(&w, &h, chunks(&["ab", "cd"])).await.unwrap();
            assert_eq!(&body[..], b"abcd");
            assert!(matches!(
                read_limited(&w, &h, chunks(&["ab", "cde"])).await,
                Err(BodyError::TooLarge)
            ));
        }

        #[tokio::test]
        async fn declared_length_over_the_limit_is_refused_unread() {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
            let never = futures_util::stream::pending::<Result<Bytes, ()>>();
            assert!(matches!(
                read_limited(&webhook(4), &h, never).await,
                Err(BodyError::TooLarge)
            ));
        }

        #[tokio::test]
        async fn a_stalled_body_times_out() {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("4"));
            let stalled = futures_util::stream::iter([Ok(Bytes::from_static(b"ab"))])
                .chain(futures_util::stream::pending::<Result<Bytes, ()>>());
            assert!(matches!(
                read_limited(&webhook(4), &h, stalled).await,
                Err(BodyError::Timeout)
            ));
        }

        #[tokio::test]
        async fn a_broken_body_is_a_read_error() {
            let h = HeaderMap::new();
            let broken = futures_util::stream::iter([Ok(Bytes::from_static(b"ab")), Err(())]);
            assert!(matches!(
                read_limited(&webhook(4), &h, broken).await,
                Err(BodyError::Read)
            ));
        }
    }
}
