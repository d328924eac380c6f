//! Adapter for axum 0.8 (feature `axum`): the status webhook as a route of your [`Router`].
//!
//! Mount it with [`router`], merged into (or nested in) the app's router:
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use twilio_delivery::adapters::axum::router;
//! use twilio_delivery::webhook::StatusWebhook;
//! use twilio_delivery::{AuthToken, MemoryStore, SignatureValidator};
//!
//! # fn app() -> Result<Router, Box<dyn std::error::Error>> {
//! let validator = SignatureValidator::new(AuthToken::new("your auth token"));
//! let webhook = StatusWebhook::builder(validator, Arc::new(MemoryStore::new()))
//!     // What Twilio calls: scheme, host, and any prefix a proxy strips.
//!     .public_url("https://app.example.com")
//!     .build()?;
//! let app = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .merge(router(webhook, "/twilio/status"));
//! # Ok(app) }
//! ```
//!
//! Every method reaches the webhook (a `GET` gets its `405`, not axum's). The adapter reads
//! the request target from [`OriginalUri`], so under `Router::nest("/hooks", ...)` the webhook
//! still sees, and validates, `/hooks/twilio/status`. The body is read up to the webhook's
//! [`body_limit`](StatusWebhook::body_limit) whatever `DefaultBodyLimit` the app sets.
//!
//! Behind a reverse proxy, configure the URL Twilio calls, not the one the app sees: if Twilio
//! calls `https://example.com/api/twilio/status` and the proxy forwards `/twilio/status`, use
//! `.public_url("https://example.com/api")`. Use
//! [`trusted_proxy`](crate::webhook::StatusWebhookBuilder::trusted_proxy) only behind a proxy
//! you control that overwrites `Forwarded`/`X-Forwarded-*`.
//!
//! To route it yourself, use [`handler`] with a state that gives a [`StatusWebhook`]
//! (`FromRef`), or call [`handle`] from your own handler.

use axum::Router;
use axum::extract::{OriginalUri, Request, State};
use axum::response::Response;
use axum::routing::any;

use axum::extract::{FromRef, FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::shared::{
    body_error_response, guard_error, guard_response, read_limited, read_within, to_http,
};
use crate::guard::{ValidatedWebhook, WebhookGuard};
use crate::inbound_webhook::{InboundResponse, InboundWebhook};
use crate::webhook::{StatusWebhook, WebhookRequest};

/// A router answering every method on `path` with `webhook`; merge or nest it into the app's
/// router, whatever its state type.
///
/// # Panics
/// As [`Router::route`] does, when `path` is not a valid axum path (it must start with `/`).
pub fn router<S>(webhook: StatusWebhook, path: &str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route(path, any(handler)).with_state(webhook)
}

/// The webhook as an axum handler, for routes of a router whose state gives a
/// [`StatusWebhook`] (the webhook itself, or any state with `FromRef`).
///
/// Route it with [`any`] so that other methods get the webhook's `405`:
/// `Router::new().route("/twilio/status", any(handler)).with_state(webhook)`.
pub async fn handler(State(webhook): State<StatusWebhook>, request: Request) -> Response {
    handle(&webhook, request).await
}

/// Answers one request with `webhook`: reads the body up to the limit and returns the
/// webhook's response.
pub async fn handle(webhook: &StatusWebhook, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let target = raw_target(&parts);
    let body = match read_limited(webhook, &parts.headers, body.into_data_stream()).await {
        Ok(body) => body,
        Err(error) => return body_error_response(webhook, error),
    };
    let response = webhook
        .handle(WebhookRequest::new(
            &parts.method,
            target,
            &parts.headers,
            &body,
        ))
        .await;
    to_http(&response)
}

/// The request that [`TwilioSignatureLayer`](super::tower::TwilioSignatureLayer) let through,
/// from the request's extensions: which key matched and the form pairs. Without the layer in
/// front of the route, it answers `500` (a wiring mistake, never a client's).
impl<S: Send + Sync> FromRequestParts<S> for ValidatedWebhook {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<ValidatedWebhook>().cloned().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "the twilio signature layer is not in front of this route\n",
        ))
    }
}

/// An extractor for any Twilio webhook route without the layer: reads the body (with the
/// guard's limit and deadline), checks the request with the state's [`WebhookGuard`], and
/// yields the validated form pairs, or answers the refusal (401/403/408/413/400) itself.
///
/// ```
/// use axum::{Router, routing::post};
/// use twilio_delivery::adapters::axum::TwilioForm;
/// use twilio_delivery::{AuthToken, SignatureValidator, WebhookGuard};
///
/// async fn incoming(TwilioForm(hook): TwilioForm) -> String {
///     let body = hook.params.iter().find(|(k, _)| k == "Body").map(|(_, v)| v.as_str());
///     format!("got {}", body.unwrap_or(""))
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let guard = WebhookGuard::builder(SignatureValidator::new(AuthToken::new("token")))
///     .public_url("https://app.example.com")
///     .build()?;
/// let app: Router = Router::new().route("/twilio/incoming", post(incoming)).with_state(guard);
/// # let _ = app; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TwilioForm(pub ValidatedWebhook);

impl<S> FromRequest<S> for TwilioForm
where
    WebhookGuard: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let guard = WebhookGuard::from_ref(state);
        let (parts, body) = request.into_parts();
        let target = raw_target(&parts);
        let limit = guard.body_limit();
        let stream = body.into_data_stream();
        let body = read_within(limit, guard.body_read_timeout(), &parts.headers, stream)
            .await
            .map_err(|e| guard_response(&guard_error(e, limit)))?;
        guard
            .check(&parts.method, target, &parts.headers, &body)
            .await
            .map(TwilioForm)
            .map_err(|e| {
                tracing::warn!(reason = %e, "twilio webhook refused");
                guard_response(&e)
            })
    }
}

/// A router answering `path` with the incoming-message handler (every method reaches it, so
/// other methods get its `405`).
///
/// # Panics
/// As [`Router::route`] does, when `path` is not a valid axum path.
pub fn inbound_router<S>(inbound: InboundWebhook, path: &str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(path, any(inbound_handler))
        .with_state(inbound)
}

/// The incoming-message handler as an axum handler, for a state that gives an
/// [`InboundWebhook`].
pub async fn inbound_handler(State(inbound): State<InboundWebhook>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let target = raw_target(&parts);
    let guard = inbound.guard();
    let limit = guard.body_limit();
    let stream = body.into_data_stream();
    let answer = match read_within(limit, guard.body_read_timeout(), &parts.headers, stream).await {
        Ok(body) => {
            inbound
                .handle(&parts.method, target, &parts.headers, &body)
                .await
        }
        Err(e) => InboundResponse::refused(&guard_error(e, limit)),
    };
    answer.to_http().map(axum::body::Body::from)
}

/// The raw request target (path and query as received), from [`OriginalUri`] so that a router
/// nested under a prefix still sees the whole path Twilio called.
fn raw_target(parts: &Parts) -> &str {
    parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |original| &original.0)
        .path_and_query()
        .map_or("", |pq| pq.as_str())
}
