//! Adapter for actix-web 4 (feature `actix-web`): the status webhook as a resource of your app.
//!
//! Mount it with [`configure`] (or add the [`resource`] to a scope):
//!
//! ```no_run
//! use std::sync::Arc;
//! use actix_web::{App, HttpServer};
//! use twilio_delivery::adapters::actix_web::configure;
//! use twilio_delivery::webhook::StatusWebhook;
//! use twilio_delivery::{AuthToken, MemoryStore, SignatureValidator};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let validator = SignatureValidator::new(AuthToken::new("your auth token"));
//! let webhook = StatusWebhook::builder(validator, Arc::new(MemoryStore::new()))
//!     // What Twilio calls: scheme, host, and any prefix a proxy strips.
//!     .public_url("https://app.example.com")
//!     .build()?;
//! HttpServer::new(move || App::new().configure(configure(webhook.clone(), "/twilio/status")))
//!     .bind(("127.0.0.1", 3000))?
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Every method reaches the webhook (a `GET` gets its `405`). The request target is the URI
//! as received, so inside `web::scope("/hooks")` the webhook still sees, and validates,
//! `/hooks/twilio/status` (do not put a path-rewriting middleware such as `NormalizePath` in
//! front of it: Twilio signed the path it called). The body is read up to the webhook's
//! [`body_limit`](StatusWebhook::body_limit), whatever `PayloadConfig` the app sets.
//!
//! Behind a reverse proxy, configure the URL Twilio calls, not the one the app sees: if Twilio
//! calls `https://example.com/api/twilio/status` and the proxy forwards `/twilio/status`, use
//! `.public_url("https://example.com/api")`. Use
//! [`trusted_proxy`](crate::webhook::StatusWebhookBuilder::trusted_proxy) only behind a proxy
//! you control that overwrites `Forwarded`/`X-Forwarded-*`.
//!
//! actix-web speaks `http` 0.2; the adapter converts the method and headers to `http` 1 on the
//! way in and the response on the way out.

use actix_web::http::StatusCode as ActixStatus;
use actix_web::http::header::{HeaderName as ActixName, HeaderValue as ActixValue};
use actix_web::{HttpRequest, HttpResponse, Resource, web};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::shared::{
    body_error_response, guard_error, guard_response, read_limited, read_within, to_http,
};
use crate::guard::{ValidatedWebhook, WebhookGuard};
use crate::inbound_webhook::{InboundResponse, InboundWebhook};
use crate::webhook::{StatusWebhook, WebhookRequest};

/// Registers the webhook on `path` for every method: `App::new().configure(configure(webhook,
/// "/twilio/status"))`.
pub fn configure(
    webhook: StatusWebhook,
    path: &str,
) -> impl FnOnce(&mut web::ServiceConfig) + use<> {
    let resource = resource(webhook, path);
    move |config| {
        config.service(resource);
    }
}

/// The webhook as a resource on `path` answering every method, carrying the webhook as its
/// own `web::Data` (so several webhooks can live in one app).
pub fn resource(webhook: StatusWebhook, path: &str) -> Resource {
    web::resource(path)
        .app_data(web::Data::new(webhook))
        .route(web::route().to(handler))
}

/// The webhook as an actix-web handler, for routes of your own, with the webhook registered as
/// `web::Data<StatusWebhook>`. Register it with `web::route()` (no method guard) so that other
/// methods get the webhook's `405`.
pub async fn handler(
    webhook: web::Data<StatusWebhook>,
    request: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    handle(&webhook, &request, body).await
}

/// Answers one request with `webhook`: reads the body up to the limit and returns the
/// webhook's response.
pub async fn handle(
    webhook: &StatusWebhook,
    request: &HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    // Both `http` versions accept the same method grammar, so conversion cannot fail; were it
    // to, any method other than POST gets the webhook's 405 all the same.
    let method =
        Method::from_bytes(request.method().as_str().as_bytes()).unwrap_or(Method::OPTIONS);
    let headers = headers_to_http(request.headers());
    let target = request.uri().path_and_query().map_or("", |pq| pq.as_str());
    let response = match read_limited(webhook, &headers, body).await {
        Ok(body) => {
            let response = webhook
                .handle(WebhookRequest::new(&method, target, &headers, &body))
                .await;
            to_http(&response)
        }
        Err(error) => body_error_response(webhook, error),
    };
    response_to_actix(response)
}

/// actix's (`http` 0.2) headers as `http` 1 headers, every value kept in order.
fn headers_to_http(headers: &actix_web::http::header::HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append(name, value);
        }
    }
    out
}

/// An `http` 1 response as an actix-web one.
fn response_to_actix(response: http::Response<&'static str>) -> HttpResponse {
    let status = ActixStatus::from_u16(response.status().as_u16())
        .unwrap_or(ActixStatus::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    for (name, value) in response.headers() {
        if let (Ok(name), Ok(value)) = (
            ActixName::from_bytes(name.as_str().as_bytes()),
            ActixValue::from_bytes(value.as_bytes()),
        ) {
            out.append_header((name, value));
        }
    }
    out.body(*response.body())
}

/// An extractor for any Twilio webhook route: reads the body (with the guard's limit and
/// deadline), checks the request with the [`WebhookGuard`] registered as
/// `web::Data<WebhookGuard>`, and yields the validated form pairs; a refused request is
/// answered 401/403/408/413/400 and the handler never runs. Without the guard registered it
/// answers `500` (a wiring mistake).
///
/// ```no_run
/// use actix_web::{App, web};
/// use twilio_delivery::{AuthToken, SignatureValidator, ValidatedWebhook, WebhookGuard};
///
/// async fn incoming(hook: ValidatedWebhook) -> &'static str {
///     let _from = hook.params.iter().find(|(k, _)| k == "From");
///     "<Response/>"
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let guard = WebhookGuard::builder(SignatureValidator::new(AuthToken::new("token")))
///     .public_url("https://app.example.com")
///     .build()?;
/// let app = App::new()
///     .app_data(web::Data::new(guard))
///     .route("/twilio/incoming", web::post().to(incoming));
/// # let _ = app; Ok(()) }
/// ```
impl actix_web::FromRequest for ValidatedWebhook {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let guard = request.app_data::<web::Data<WebhookGuard>>().cloned();
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            let refuse = |response: http::Response<&'static str>| {
                actix_web::error::InternalError::from_response("", response_to_actix(response))
                    .into()
            };
            let Some(guard) = guard else {
                let mut missing = http::Response::new("no WebhookGuard registered\n");
                *missing.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                return Err(refuse(missing));
            };
            let method =
                Method::from_bytes(request.method().as_str().as_bytes()).unwrap_or(Method::OPTIONS);
            let headers = headers_to_http(request.headers());
            let target = request.uri().path_and_query().map_or("", |pq| pq.as_str());
            let limit = guard.body_limit();
            let body = read_within(limit, guard.body_read_timeout(), &headers, payload)
                .await
                .map_err(|e| refuse(guard_response(&guard_error(e, limit))))?;
            guard
                .check(&method, target, &headers, &body)
                .await
                .map_err(|e| {
                    tracing::warn!(reason = %e, "twilio webhook refused");
                    refuse(guard_response(&e))
                })
        })
    }
}

/// The incoming-message handler as a resource on `path` answering every method.
pub fn inbound_resource(inbound: InboundWebhook, path: &str) -> Resource {
    web::resource(path)
        .app_data(web::Data::new(inbound))
        .route(web::route().to(inbound_handler))
}

/// The incoming-message handler as an actix-web handler, with the [`InboundWebhook`]
/// registered as `web::Data<InboundWebhook>`.
pub async fn inbound_handler(
    inbound: web::Data<InboundWebhook>,
    request: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let method =
        Method::from_bytes(request.method().as_str().as_bytes()).unwrap_or(Method::OPTIONS);
    let headers = headers_to_http(request.headers());
    let target = request.uri().path_and_query().map_or("", |pq| pq.as_str());
    let guard = inbound.guard();
    let limit = guard.body_limit();
    let answer = match read_within(limit, guard.body_read_timeout(), &headers, body).await {
        Ok(body) => inbound.handle(&method, target, &headers, &body).await,
        Err(e) => InboundResponse::refused(&guard_error(e, limit)),
    };
    let status =
        ActixStatus::from_u16(answer.status.as_u16()).unwrap_or(ActixStatus::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    out.insert_header(("content-type", answer.content_type));
    for (name, value) in &answer.headers {
        if let (Ok(name), Ok(value)) = (
            ActixName::from_bytes(name.as_str().as_bytes()),
            ActixValue::from_bytes(value.as_bytes()),
        ) {
            out.append_header((name, value));
        }
    }
    out.body(answer.body)
}
