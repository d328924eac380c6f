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

use super::shared::{body_error_response, read_limited, to_http};
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
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |original| &original.0);
    let target = uri.path_and_query().map_or("", |pq| pq.as_str());
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
