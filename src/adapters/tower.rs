//! A tower [`Layer`] that checks `X-Twilio-Signature` before any service: put it in front of
//! an axum route, a hyper service or anything else that speaks `http::Request`, for every
//! Twilio webhook (incoming messages, voice, conversations).
//!
//! The layer reads the body (with the guard's limit and deadline), checks the request with a
//! [`WebhookGuard`], and either answers the refusal itself (401, 403, 408, 413, 400: the inner
//! service is never called) or calls the inner service with the same body, buffered, and the
//! [`ValidatedWebhook`] (key, URL candidate, form pairs) in the request's extensions.
//!
//! Under axum the URL checked is the one the request came in with (`OriginalUri`), so the
//! layer works inside a router nested under a prefix, as on the outer router.
//!
//! ```
//! use axum::{Router, routing::post};
//! use twilio_delivery::adapters::tower::TwilioSignatureLayer;
//! use twilio_delivery::guard::{ValidatedWebhook, WebhookGuard};
//! use twilio_delivery::{AuthToken, SignatureValidator};
//!
//! async fn incoming(axum::Extension(hook): axum::Extension<ValidatedWebhook>) -> &'static str {
//!     let _from = hook.params.iter().find(|(k, _)| k == "From");
//!     "<Response/>"
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = WebhookGuard::builder(SignatureValidator::new(AuthToken::new("token")))
//!     .public_url("https://app.example.com")
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/twilio/incoming", post(incoming))
//!     .layer(TwilioSignatureLayer::new(guard));
//! # let _ = app; Ok(()) }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use tower_layer::Layer;
use tower_service::Service;

use super::shared::{guard_error, guard_response, read_within};
pub use crate::guard::ValidatedWebhook;
use crate::guard::WebhookGuard;

/// The boxed error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body: the inner service's, or the layer's short refusal text.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// Wraps services in [`TwilioSignature`].
#[derive(Debug, Clone)]
pub struct TwilioSignatureLayer {
    guard: WebhookGuard,
}

impl TwilioSignatureLayer {
    /// A layer checking requests with `guard`.
    pub fn new(guard: WebhookGuard) -> Self {
        Self { guard }
    }
}

impl<S> Layer<S> for TwilioSignatureLayer {
    type Service = TwilioSignature<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TwilioSignature {
            inner,
            guard: self.guard.clone(),
        }
    }
}

/// A service that calls `S` only for requests Twilio signed (see the module docs).
#[derive(Debug, Clone)]
pub struct TwilioSignature<S> {
    inner: S,
    guard: WebhookGuard,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TwilioSignature<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready handles this request; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let limit = guard.body_limit();
            let frames = body.into_data_stream();
            let read = read_within(limit, guard.body_read_timeout(), &parts.headers, frames).await;
            let target = request_target(&parts);
            let checked = match read {
                Ok(body) => guard
                    .check(&parts.method, target, &parts.headers, &body)
                    .await
                    .map(|validated| (validated, body)),
                Err(e) => Err(guard_error(e, limit)),
            };
            let (validated, body) = match checked {
                Ok(ok) => ok,
                Err(error) => {
                    tracing::warn!(reason = %error, "twilio webhook refused");
                    let response: Response<Full<Bytes>> = guard_response(&error);
                    return Ok(response.map(|b| b.map_err(never).boxed_unsync()));
                }
            };
            parts.extensions.insert(validated);
            let response = inner
                .call(Request::from_parts(parts, Full::new(body)))
                .await?;
            Ok(response.map(|b| b.map_err(Into::into).boxed_unsync()))
        })
    }
}

/// The request target (path and query) Twilio called. Inside an axum router nested under a
/// prefix the request's URI has lost that prefix; axum keeps the whole one as `OriginalUri`.
fn request_target(parts: &http::request::Parts) -> &str {
    #[cfg(feature = "axum")]
    let uri = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(&parts.uri, |original| &original.0);
    #[cfg(not(feature = "axum"))]
    let uri = &parts.uri;
    uri.path_and_query().map_or("", |pq| pq.as_str())
}

/// `Full`'s error never happens.
fn never(e: Infallible) -> BoxError {
    match e {}
}
