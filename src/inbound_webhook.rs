//! `InboundWebhook`: the framework-agnostic handler of Twilio's incoming-message webhook.
//!
//! For each request it checks the signature ([`WebhookGuard`]), parses the
//! [`InboundMessage`], applies STOP/START to the opt-out list, records the message in the
//! store once per `MessageSid` (a repeat delivery changes nothing and is not answered twice;
//! a delivery answered 503 is not recorded, so its redelivery is handled in full), and answers with
//! the TwiML your replier returns (`text/xml`; an empty `<Response/>` for "no reply"). Adapters
//! mount it: `adapters::axum::inbound_router`, `adapters::actix_web::inbound_resource`,
//! `adapters::warp::inbound_filter`.
//!
//! ```
//! use std::sync::Arc;
//! use twilio_delivery::inbound_webhook::InboundWebhook;
//! use twilio_delivery::twiml::{Message, MessagingResponse};
//! use twilio_delivery::{AuthToken, MemoryStore, SignatureValidator, WebhookGuard};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = WebhookGuard::builder(SignatureValidator::new(AuthToken::new("token")))
//!     .public_url("https://app.example.com")
//!     .build()?;
//! let store = Arc::new(MemoryStore::new());
//! let inbound = InboundWebhook::builder(guard, store.clone())
//!     .opt_outs(store)
//!     .reply(|message| async move {
//!         MessagingResponse::new().message(Message::new(format!("got {} chars", message.body.len())))
//!     })
//!     .build();
//! # let _ = inbound; Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode};

use crate::guard::{GuardError, WebhookGuard};
use crate::inbound::{InboundMessage, OptOut};
use crate::optout::OptOutList;
use crate::store::StatusStore;
use crate::twiml::{CONTENT_TYPE, MessagingResponse};

type Replier = Arc<
    dyn Fn(InboundMessage) -> Pin<Box<dyn Future<Output = MessagingResponse> + Send>> + Send + Sync,
>;

/// The incoming-message handler. Cheap to clone.
#[derive(Clone)]
pub struct InboundWebhook {
    guard: WebhookGuard,
    store: Arc<dyn StatusStore>,
    opt_outs: Option<Arc<dyn OptOutList>>,
    replier: Option<Replier>,
}

impl fmt::Debug for InboundWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundWebhook")
            .field("guard", &self.guard)
            .field("store", &self.store)
            .field("opt_outs", &self.opt_outs.is_some())
            .field("replier", &self.replier.is_some())
            .finish()
    }
}

/// Builds an [`InboundWebhook`].
#[must_use]
pub struct InboundWebhookBuilder {
    inner: InboundWebhook,
}

impl fmt::Debug for InboundWebhookBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// What the handler answered, for adapters to send. Its `Debug` shows the body's length, not
/// the reply's text and numbers.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The content type of [`body`](Self::body).
    pub content_type: &'static str,
    /// TwiML for a 200, a short reason otherwise.
    pub body: String,
    /// Extra headers (`WWW-Authenticate` with a 401, `Connection: close` after a slow body).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl fmt::Debug for InboundResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundResponse")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("body", &format_args!("[{} bytes]", self.body.len()))
            .field("headers", &self.headers)
            .finish()
    }
}

impl InboundResponse {
    fn twiml(reply: &MessagingResponse) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: CONTENT_TYPE,
            body: reply.to_xml(),
            headers: Vec::new(),
        }
    }

    fn text(status: StatusCode, body: &'static str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_owned(),
            headers: Vec::new(),
        }
    }

    /// `405` with `Allow: POST`, for any other method.
    fn method_not_allowed() -> Self {
        let mut response = Self::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        let post = http::HeaderValue::from_static("POST");
        response.headers.push((http::header::ALLOW, post));
        response
    }

    /// `503` with `Retry-After`: the message (or what it means for consent) is not stored.
    fn unavailable() -> Self {
        let mut response = Self::text(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable\n");
        let later = http::HeaderValue::from_static("5");
        response.headers.push((http::header::RETRY_AFTER, later));
        response
    }

    /// The answer to a request the guard refused.
    pub fn refused(error: &GuardError) -> Self {
        Self {
            headers: error.headers(),
            ..Self::text(error.status_code(), error.body())
        }
    }

    /// As an `http` response.
    pub fn to_http(&self) -> http::Response<String> {
        let mut response = http::Response::new(self.body.clone());
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(self.content_type),
        );
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        response
    }
}

impl InboundWebhook {
    /// A handler that checks requests with `guard` and records messages in `store`.
    pub fn builder(guard: WebhookGuard, store: Arc<dyn StatusStore>) -> InboundWebhookBuilder {
        InboundWebhookBuilder {
            inner: Self {
                guard,
                store,
                opt_outs: None,
                replier: None,
            },
        }
    }

    /// The guard (its body limit and deadline bound what adapters read).
    pub fn guard(&self) -> &WebhookGuard {
        &self.guard
    }

    /// Handles one request as received. Never panics on any input.
    pub async fn handle(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> InboundResponse {
        if method != Method::POST {
            return InboundResponse::method_not_allowed();
        }
        let validated = match self.guard.check(method, target, headers, body).await {
            Ok(validated) => validated,
            Err(error) => {
                tracing::warn!(reason = %error, "incoming message refused");
                return InboundResponse::refused(&error);
            }
        };
        let message = match InboundMessage::from_pairs(validated.params) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(reason = %error, "incoming message refused: malformed");
                return InboundResponse::text(
                    StatusCode::BAD_REQUEST,
                    "malformed incoming message\n",
                );
            }
        };
        // A repeat delivery of a message already recorded changes nothing and is not answered
        // again. Its keyword was applied before it was recorded (below), so applying it again
        // could only undo a later keyword of the same sender (START, then STOP, then a
        // redelivery of the START).
        match self.store.get(&message.sid).await {
            Ok(Some(_)) => return InboundResponse::twiml(&MessagingResponse::new()),
            Ok(None) => {}
            Err(error) => {
                tracing::error!(error = %error, "incoming message not stored: store failed");
                return InboundResponse::unavailable();
            }
        }
        // The keyword before the record: a STOP the list did not take must not be answered
        // 200 (Twilio would not send it again), and its redelivery must find the message not
        // yet recorded, so that it is applied and answered then. A keyword the list took whose
        // record then failed is not applied again on redelivery: the lists of this crate apply
        // a message's keyword once per SID (`OptOutList::apply_inbound`), so it cannot undo a
        // later keyword of the same sender.
        if let Some(list) = &self.opt_outs {
            match list.apply_inbound(&message).await {
                Ok(Some(OptOut::Stop)) => tracing::info!("incoming STOP: sender opted out"),
                Ok(Some(OptOut::Start)) => tracing::info!("incoming START: sender opted in"),
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(error = %error, "incoming message: opt-out list not updated");
                    return InboundResponse::unavailable();
                }
            }
        }
        let applied = match self.store.record_inbound(&message).await {
            Ok(applied) => applied,
            Err(error) => {
                tracing::error!(error = %error, "incoming message not stored: store failed");
                return InboundResponse::unavailable();
            }
        };
        // Another delivery of the same message recorded it first.
        if !applied.changed() {
            return InboundResponse::twiml(&MessagingResponse::new());
        }
        let reply = match &self.replier {
            Some(replier) => replier(message).await,
            None => MessagingResponse::new(),
        };
        InboundResponse::twiml(&reply)
    }
}

impl InboundWebhookBuilder {
    /// Applies STOP/START (and Twilio's `OptOutType`) to `list`: use the same store.
    pub fn opt_outs(mut self, list: Arc<dyn OptOutList>) -> Self {
        self.inner.opt_outs = Some(list);
        self
    }

    /// The reply to each new incoming message (not to repeat deliveries); without one, the
    /// answer is an empty `<Response/>`. Keep it quick: Twilio waits for it.
    pub fn reply<F, Fut>(mut self, replier: F) -> Self
    where
        F: Fn(InboundMessage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = MessagingResponse> + Send + 'static,
    {
        self.inner.replier = Some(Arc::new(move |message| Box::pin(replier(message))));
        self
    }

    /// The handler.
    pub fn build(self) -> InboundWebhook {
        self.inner
    }
}
