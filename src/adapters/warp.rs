//! Adapter for warp 0.4 (feature `warp`): the status webhook as a [`Filter`].
//!
//! Mount it with [`filter`], combined with the app's other filters:
//!
//! ```no_run
//! use std::sync::Arc;
//! use warp::Filter;
//! use twilio_delivery::adapters::warp::filter;
//! use twilio_delivery::webhook::StatusWebhook;
//! use twilio_delivery::{AuthToken, MemoryStore, SignatureValidator};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let validator = SignatureValidator::new(AuthToken::new("your auth token"));
//! let webhook = StatusWebhook::builder(validator, Arc::new(MemoryStore::new()))
//!     // What Twilio calls: scheme, host, and any prefix a proxy strips.
//!     .public_url("https://app.example.com")
//!     .build()?;
//! let hello = warp::path!("hello").map(|| "hello");
//! let routes = hello.or(filter(webhook, "/twilio/status"));
//! warp::serve(routes).run(([127, 0, 0, 1], 3000)).await;
//! # Ok(()) }
//! ```
//!
//! [`filter`] matches the rest of the path after whatever prefix filters come before it, so
//! `warp::path("hooks").and(filter(webhook, "/twilio/status"))` serves
//! `/hooks/twilio/status`; the webhook always sees, and validates, the full path and raw query.
//! [`handler`] does the same at any path, for routing of your own
//! (`warp::path!("twilio" / "status").and(handler(webhook))`). Every method reaches the
//! webhook (a `GET` gets its `405`). The body is read up to the webhook's
//! [`body_limit`](StatusWebhook::body_limit); no `content_length_limit` is needed.
//!
//! Behind a reverse proxy, configure the URL Twilio calls, not the one the app sees: if Twilio
//! calls `https://example.com/api/twilio/status` and the proxy forwards `/twilio/status`, use
//! `.public_url("https://example.com/api")`. Use
//! [`trusted_proxy`](crate::webhook::StatusWebhookBuilder::trusted_proxy) only behind a proxy
//! you control that overwrites `Forwarded`/`X-Forwarded-*`.

use std::sync::Arc;

use bytes::Buf;
use futures_util::Stream;
use http::{HeaderMap, Method};
use warp::filters::path::{FullPath, Tail};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::shared::{
    body_error_response, guard_error, guard_response, read_limited, read_within, to_http,
};
use crate::guard::{GuardError, ValidatedWebhook, WebhookGuard};
use crate::inbound_webhook::{InboundResponse, InboundWebhook};
use crate::webhook::{StatusWebhook, WebhookRequest};

/// The webhook on `path` (the rest of the path after any prefix filters), for every method.
/// Other paths are rejected with warp's "not found", so it combines with `or`.
pub fn filter(
    webhook: StatusWebhook,
    path: &str,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + use<> {
    at(path).and(handler(webhook))
}

/// The webhook at any path: extracts the method, the full path and raw query, the headers
/// and the body, and replies with the webhook's response. It rejects only when a filter before
/// it already took the body.
pub fn handler(
    webhook: StatusWebhook,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    request().and(warp::body::stream()).then(
        move |method: Method, target: String, headers: HeaderMap, body| {
            let webhook = webhook.clone();
            async move { handle(&webhook, &method, &target, &headers, body).await }
        },
    )
}

/// Passes requests whose rest of the path is `path`; rejects others with "not found".
fn at(path: &str) -> impl Filter<Extract = (), Error = Rejection> + Clone + use<> {
    let path: Arc<str> = path.trim_start_matches('/').into();
    warp::path::tail()
        .and_then(move |tail: Tail| {
            let matches = tail.as_str() == &*path;
            async move {
                if matches {
                    Ok(())
                } else {
                    Err(warp::reject::not_found())
                }
            }
        })
        .untuple_one()
}

/// The method, the raw request target (full path and raw query, exactly as received) and the
/// headers of a request.
fn request()
-> impl Filter<Extract = (Method, String, HeaderMap), Error = std::convert::Infallible> + Clone {
    let raw_query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    warp::method()
        .and(warp::path::full())
        .and(raw_query)
        .map(|method: Method, path: FullPath, query: Option<String>| {
            let target = match query {
                Some(query) => format!("{}?{query}", path.as_str()),
                None => path.as_str().to_owned(),
            };
            (method, target)
        })
        .untuple_one()
        .and(warp::header::headers_cloned())
}

async fn handle<S, B>(
    webhook: &StatusWebhook,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body: S,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    match read_limited(webhook, headers, body).await {
        Ok(body) => {
            let response = webhook
                .handle(WebhookRequest::new(method, target, headers, &body))
                .await;
            to_http(&response)
        }
        Err(error) => body_error_response(webhook, error),
    }
}

/// A request the guard refused, as a warp rejection; [`recover`] turns it into its answer.
#[derive(Debug)]
pub struct Refused(pub GuardError);

impl warp::reject::Reject for Refused {}

/// A filter for any Twilio webhook route: reads the body (with the guard's limit and
/// deadline), checks the request with `guard`, and extracts the validated form pairs, or
/// rejects with [`Refused`]. Add [`recover`] to answer those rejections (401/403/408/413/400).
///
/// ```
/// use warp::Filter;
/// use twilio_delivery::adapters::warp::{recover, validated};
/// use twilio_delivery::{AuthToken, SignatureValidator, ValidatedWebhook, WebhookGuard};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let guard = WebhookGuard::builder(SignatureValidator::new(AuthToken::new("token")))
///     .public_url("https://app.example.com")
///     .build()?;
/// let incoming = warp::path!("twilio" / "incoming")
///     .and(warp::post())
///     .and(validated(guard))
///     .map(|hook: ValidatedWebhook| format!("{} params", hook.params.len()))
///     .recover(recover);
/// # let _ = incoming; Ok(()) }
/// ```
pub fn validated(
    guard: WebhookGuard,
) -> impl Filter<Extract = (ValidatedWebhook,), Error = Rejection> + Clone {
    request().and(warp::body::stream()).and_then(
        move |method: Method, target: String, headers: HeaderMap, body| {
            let guard = guard.clone();
            async move {
                let limit = guard.body_limit();
                let refused = |e| warp::reject::custom(Refused(e));
                let body = read_within(limit, guard.body_read_timeout(), &headers, body)
                    .await
                    .map_err(|e| refused(guard_error(e, limit)))?;
                guard
                    .check(&method, &target, &headers, &body)
                    .await
                    .map_err(|e| {
                        tracing::warn!(reason = %e, "twilio webhook refused");
                        refused(e)
                    })
            }
        },
    )
}

/// Answers a [`Refused`] rejection with its status, headers and short text; passes any other
/// rejection on.
///
/// # Errors
/// The rejection, when it is not a [`Refused`].
pub async fn recover(rejection: Rejection) -> Result<Response, Rejection> {
    match rejection.find::<Refused>() {
        Some(Refused(error)) => Ok(guard_response(error)),
        None => Err(rejection),
    }
}

/// The incoming-message handler on `path` (the rest of the path after any prefix filters), for
/// every method; other paths are rejected with warp's "not found".
pub fn inbound_filter(
    inbound: InboundWebhook,
    path: &str,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + use<> {
    at(path).and(request()).and(warp::body::stream()).then(
        move |method: Method, target: String, headers: HeaderMap, body| {
            let inbound = inbound.clone();
            async move {
                let guard = inbound.guard();
                let limit = guard.body_limit();
                let answer =
                    match read_within(limit, guard.body_read_timeout(), &headers, body).await {
                        Ok(body) => inbound.handle(&method, &target, &headers, &body).await,
                        Err(e) => InboundResponse::refused(&guard_error(e, limit)),
                    };
                answer.to_http().map(Into::into)
            }
        },
    )
}
