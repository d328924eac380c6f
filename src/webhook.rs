//! `StatusWebhook`: the framework-agnostic status-callback handler.
//!
//! Adapters hand it the request as received (method, raw target, headers, raw body) and send
//! back the [`WebhookResponse`] it returns. It implements the whole contract:
//!
//! | request | status | store |
//! |---|---|---|
//! | valid signature, new or changing event | 204 | applied atomically |
//! | valid signature, duplicate or stale event | 204 | event kept once |
//! | missing or invalid signature | 403 | untouched |
//! | signed but malformed (no `MessageSid`/`MessageStatus`, bad SID) | 400 | untouched |
//! | body over the limit (default 64 KiB) | 413 | untouched |
//! | wrong content type / method | 415 / 405 | untouched |
//! | store unavailable, write queue full, or deadline passed | 503 + `Retry-After` | untouched; Twilio or the reconciler repairs it |
//! | `AccountSid` not one the app serves (when configured) | 403 | untouched |
//!
//! Writes go through a bounded write queue ([group commit](StatusWebhookBuilder::max_batch)):
//! a 204 is sent only once the batch holding the callback has committed, so 204 still means
//! stored. A store that does not group commits ([`StatusStore::group_commit`], the memory
//! store) is written by each request itself, with no queue. Every callback is answered within
//! the [deadline](StatusWebhookBuilder::deadline) (default 10 s, under Twilio's 15 s timeout):
//! 503 + `Retry-After` when the store is slower.
//!
//! Twilio signs the URL it called, which a reverse proxy hides from the app, so the public URL is
//! configuration ([`PublicUrl`]); rebuilding it from `Forwarded`/`X-Forwarded-*` headers is
//! opt-in, for proxies the operator trusts.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};

use crate::accounts::KeyResolver;
use crate::callback::{CallbackError, StatusCallback};
use crate::endpoint::{PublicEndpoint, PublicUrl, PublicUrlError, TrustedProxy};
use crate::guard::{Keys, Refusal, verify};
use crate::ids::{AccountSid, MessageSid};
use crate::model::{Applied, EventSource};
use crate::notify::{Notifier, StatusChange};
use crate::signature::{SignatureError, SignatureValidator};
use crate::store::{StatusStore, StoreError};

mod queue;

pub use queue::{DEFAULT_MAX_BATCH, DEFAULT_QUEUE_CAPACITY};
use queue::{QueueError, WriteQueue};

/// The default time a callback may wait for the store: 10 s, under Twilio's 15 s timeout.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// The default body limit: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The default deadline for receiving a whole request body: 5 s (a status callback is a few
/// hundred bytes; Twilio sends it at once).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The `Retry-After` (seconds) sent with a 503.
const RETRY_AFTER_SECS: u32 = 5;

/// The header carrying Twilio's per-attempt idempotency token.
const IDEMPOTENCY_HEADER: &str = "i-twilio-idempotency-token";

/// Checks a configured base URL: `http` or `https`, a host, no query or fragment, encoded.
fn check_base(url: &str) -> Result<(), WebhookConfigError> {
    crate::endpoint::check_base(url).map_err(|e| WebhookConfigError::PublicUrl(e.reason))
}

/// Why a [`StatusWebhook`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookConfigError {
    /// The public URL is not a valid base.
    #[error("invalid public url: {0}")]
    PublicUrl(&'static str),
    /// No public URL was configured.
    #[error("no public url configured: call public_url() or trusted_proxy()")]
    NoPublicUrl,
    /// The body limit is zero.
    #[error("body limit must be at least 1 byte")]
    BodyLimit,
    /// The body read timeout is zero.
    #[error("body read timeout must not be zero")]
    BodyReadTimeout,
}

/// Why a request was refused. Each kind maps to one HTTP status ([`status_code`](Self::status_code)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// Not a POST (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Not `application/x-www-form-urlencoded` (415).
    #[error("unsupported content type")]
    UnsupportedMediaType,
    /// The body is larger than the limit (413).
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The public URL could not be determined (403: nothing can be verified).
    #[error("cannot determine the public url")]
    PublicUrl(#[source] PublicUrlError),
    /// The signature is missing or wrong (403).
    #[error("signature rejected")]
    Signature(#[source] SignatureError),
    /// Signed, but not a status callback the crate can read (400).
    #[error("malformed status callback")]
    Malformed(#[source] CallbackError),
    /// The store failed (503 when it is unavailable, else 500).
    #[error("store failed")]
    Store(#[source] StoreError),
    /// The write queue is full: the store is not keeping up (503).
    #[error("write queue full")]
    Overloaded,
    /// The store did not confirm the write within the deadline (503).
    #[error("store did not answer within {0:?}")]
    Deadline(Duration),
    /// Signed, but for an account the webhook does not serve (403).
    #[error("callback for another account")]
    Account,
}

impl WebhookError {
    /// The HTTP status this refusal is answered with.
    pub fn status_code(&self) -> StatusCode {
        match self {
            WebhookError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            WebhookError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WebhookError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::PublicUrl(_) | WebhookError::Signature(_) => StatusCode::FORBIDDEN,
            WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
            WebhookError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            WebhookError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebhookError::Overloaded | WebhookError::Deadline(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebhookError::Account => StatusCode::FORBIDDEN,
        }
    }
}

/// A request as an adapter received it.
#[derive(Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// The raw request target: path and query exactly as received (never decoded or re-encoded).
    pub target: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The raw body.
    pub body: &'a [u8],
}

impl fmt::Debug for WebhookRequest<'_> {
    /// The path without its query, the header names without their values, the body's length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.target.split('?').next().unwrap_or_default();
        let names: Vec<&str> = self.headers.keys().map(|name| name.as_str()).collect();
        f.debug_struct("WebhookRequest")
            .field("method", self.method)
            .field("path", &path)
            .field("header_names", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl<'a> WebhookRequest<'a> {
    /// A request from its parts.
    pub fn new(
        method: &'a Method,
        target: &'a str,
        headers: &'a HeaderMap,
        body: &'a [u8],
    ) -> Self {
        Self {
            method,
            target,
            headers,
            body,
        }
    }
}

/// A callback that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accepted {
    /// The message.
    pub sid: MessageSid,
    /// What the store did with it.
    pub applied: Applied,
}

/// What to answer, and what happened.
#[derive(Debug)]
#[non_exhaustive]
pub struct WebhookResponse {
    /// The HTTP status to send.
    pub status: StatusCode,
    /// Headers to send (`Allow` with 405, `Retry-After` with 503).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The accepted callback, or why the request was refused.
    pub outcome: Result<Accepted, WebhookError>,
}

impl WebhookResponse {
    fn accepted(accepted: Accepted) -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            outcome: Ok(accepted),
        }
    }

    fn refused(error: WebhookError) -> Self {
        let status = error.status_code();
        let mut headers = Vec::new();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            headers.push((header::ALLOW, HeaderValue::from_static("POST")));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.push((header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS)));
        }
        Self {
            status,
            headers,
            outcome: Err(error),
        }
    }

    /// The response body: empty on success, a short reason otherwise (never secrets or input).
    pub fn body(&self) -> &'static str {
        match &self.outcome {
            Ok(_) => "",
            Err(WebhookError::MethodNotAllowed) => "method not allowed\n",
            Err(WebhookError::UnsupportedMediaType) => "unsupported content type\n",
            Err(WebhookError::PayloadTooLarge { .. }) => "payload too large\n",
            Err(
                WebhookError::PublicUrl(_) | WebhookError::Signature(_) | WebhookError::Account,
            ) => "forbidden\n",
            Err(WebhookError::Malformed(_)) => "malformed status callback\n",
            Err(WebhookError::Store(e)) if !e.is_unavailable() => "internal error\n",
            Err(WebhookError::Store(_) | WebhookError::Overloaded | WebhookError::Deadline(_)) => {
                "temporarily unavailable\n"
            }
        }
    }
}

/// The status-callback handler: validate the signature, parse, apply to the store, notify.
///
/// Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct StatusWebhook {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Keys,
    store: Arc<dyn StatusStore>,
    public_url: PublicUrl,
    /// The connection-override fragment of the endpoint's callback URL, tried second.
    fragment: Option<String>,
    body_limit: usize,
    body_read_timeout: Duration,
    notifier: Option<Notifier>,
    write: WritePath,
}

/// The write side of a webhook: its queue, deadline and account check.
#[derive(Debug)]
struct WritePath {
    queue: WriteQueue,
    deadline: Duration,
    accounts: Option<HashSet<AccountSid>>,
}

/// The write-path settings of a [`StatusWebhookBuilder`].
#[derive(Debug)]
struct WriteSettings {
    deadline: Duration,
    queue_capacity: usize,
    max_batch: usize,
    writers: usize,
    accounts: HashSet<AccountSid>,
    check_account: Option<bool>,
}

impl Default for WriteSettings {
    fn default() -> Self {
        Self {
            deadline: DEFAULT_DEADLINE,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_batch: DEFAULT_MAX_BATCH,
            writers: 1,
            accounts: HashSet::new(),
            check_account: None,
        }
    }
}

impl WriteSettings {
    fn build(self, store: Arc<dyn StatusStore>) -> WritePath {
        let check = self.check_account.unwrap_or(!self.accounts.is_empty());
        WritePath {
            queue: WriteQueue::new(store, self.queue_capacity, self.max_batch, self.writers),
            deadline: self.deadline,
            accounts: check.then_some(self.accounts),
        }
    }
}

impl fmt::Debug for StatusWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusWebhook")
            .field("keys", &self.inner.keys)
            .field("store", &self.inner.store)
            .field("public_url", &self.inner.public_url)
            .field("body_limit", &self.inner.body_limit)
            .field("body_read_timeout", &self.inner.body_read_timeout)
            .field("notifier", &self.inner.notifier.is_some())
            .field("write", &self.inner.write)
            .finish()
    }
}

/// Builds a [`StatusWebhook`].
#[derive(Debug)]
#[must_use]
pub struct StatusWebhookBuilder {
    keys: Keys,
    store: Arc<dyn StatusStore>,
    public_url: Option<Result<PublicUrl, WebhookConfigError>>,
    fragment: Option<String>,
    body_limit: usize,
    body_read_timeout: Duration,
    notifier: Option<Notifier>,
    write: WriteSettings,
}

impl StatusWebhook {
    /// Starts building a webhook that checks signatures with `validator` and writes to `store`.
    pub fn builder(
        validator: SignatureValidator,
        store: Arc<dyn StatusStore>,
    ) -> StatusWebhookBuilder {
        StatusWebhookBuilder {
            keys: Keys::One(validator),
            store,
            public_url: None,
            fragment: None,
            body_limit: DEFAULT_BODY_LIMIT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            notifier: None,
            write: WriteSettings::default(),
        }
    }

    /// The largest body accepted, in bytes. Adapters stop reading past it.
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// How long adapters wait for the whole request body before answering `408`.
    pub fn body_read_timeout(&self) -> Duration {
        self.inner.body_read_timeout
    }

    /// The store the webhook writes to.
    pub fn store(&self) -> &Arc<dyn StatusStore> {
        &self.inner.store
    }

    /// The response for a body the adapter stopped reading because it exceeded
    /// [`body_limit`](Self::body_limit).
    pub fn payload_too_large(&self) -> WebhookResponse {
        crate::metrics::callback_answered(413);
        let limit = self.inner.body_limit;
        tracing::warn!(limit, "status callback refused: body too large");
        WebhookResponse::refused(WebhookError::PayloadTooLarge { limit })
    }

    /// Handles one request. Never panics on any input.
    pub async fn handle(&self, req: WebhookRequest<'_>) -> WebhookResponse {
        let response = self.answer(req).await;
        crate::metrics::callback_answered(response.status.as_u16());
        response
    }

    async fn answer(&self, req: WebhookRequest<'_>) -> WebhookResponse {
        match self.process(req).await {
            Ok(accepted) => WebhookResponse::accepted(accepted),
            Err(error) => {
                match &error {
                    WebhookError::Store(e) => {
                        let source = std::error::Error::source(e).map(ToString::to_string);
                        tracing::error!(error = %e, source, "status callback not stored: store failed")
                    }
                    WebhookError::Overloaded => {
                        tracing::warn!("status callback not stored: write queue full")
                    }
                    WebhookError::Deadline(d) => {
                        tracing::warn!(deadline = ?d, "status callback not stored: store too slow")
                    }
                    // Never the target: its query may carry tenant ids or tokens.
                    WebhookError::Signature(e) => {
                        tracing::warn!(reason = %e, "status callback refused: signature")
                    }
                    WebhookError::Malformed(e) => {
                        tracing::warn!(reason = %e, "status callback refused: malformed")
                    }
                    other => tracing::warn!(reason = %other, "status callback refused"),
                }
                WebhookResponse::refused(error)
            }
        }
    }

    async fn process(&self, req: WebhookRequest<'_>) -> Result<Accepted, WebhookError> {
        let inner = &*self.inner;
        let deadline = tokio::time::Instant::now() + inner.write.deadline;
        if req.method != Method::POST {
            return Err(WebhookError::MethodNotAllowed);
        }
        if !crate::guard::is_form(req.headers) {
            return Err(WebhookError::UnsupportedMediaType);
        }
        if req.body.len() > inner.body_limit {
            return Err(WebhookError::PayloadTooLarge {
                limit: inner.body_limit,
            });
        }
        let request = crate::guard::Request {
            method: req.method,
            target: req.target,
            headers: req.headers,
            body: req.body,
        };
        verify(
            &inner.keys,
            &inner.public_url,
            inner.fragment.as_deref(),
            request,
        )
        .await
        .map_err(|e| match e {
            Refusal::PublicUrl(e) => WebhookError::PublicUrl(e),
            Refusal::Signature(e) => WebhookError::Signature(e),
            Refusal::UnknownAccount => WebhookError::Account,
        })?;
        let token = req
            .headers
            .get(IDEMPOTENCY_HEADER)
            .and_then(|v| v.to_str().ok());
        let callback =
            StatusCallback::from_form(req.body, token).map_err(WebhookError::Malformed)?;
        if let Some(accounts) = &inner.write.accounts
            && !callback
                .account_sid
                .as_ref()
                .is_some_and(|a| accounts.contains(a))
        {
            return Err(WebhookError::Account);
        }
        let (sid, status, error_code) = (
            callback.message_sid.clone(),
            callback.status.clone(),
            callback.error_code,
        );
        let applied = inner
            .write
            .queue
            .write(callback.into_event(), deadline)
            .await
            .map_err(|e| match e {
                QueueError::Full => WebhookError::Overloaded,
                QueueError::Deadline => WebhookError::Deadline(inner.write.deadline),
                QueueError::Store(e) => WebhookError::Store(e),
            })?;
        tracing::debug!(
            message_sid = %sid,
            status = %status,
            outcome = ?applied.outcome,
            "status callback applied"
        );
        if applied.changed() {
            crate::metrics::transition(
                applied.previous.as_ref(),
                &applied.current,
                EventSource::Callback,
                applied.created_at,
            );
        }
        if let Some(notifier) = &inner.notifier
            && let Some(change) =
                StatusChange::from_applied(&sid, &applied, error_code, EventSource::Callback)
        {
            notifier.publish(change);
        }
        Ok(Accepted { sid, applied })
    }
}

impl StatusWebhookBuilder {
    /// The public base URL Twilio calls: scheme and host (and any path prefix a proxy strips),
    /// e.g. `https://example.com`; the request's raw target (path and query) is appended to it.
    /// This is the URL Twilio signs, not the address the app listens on.
    pub fn public_url(mut self, base: impl Into<String>) -> Self {
        let base: String = base.into();
        self.public_url = Some(check_base(&base).map(|()| PublicUrl::Base(base)));
        self
    }

    /// The public endpoint whose [`callback_url`](PublicEndpoint::callback_url) the app sends
    /// to Twilio: its base becomes the public URL (the raw request target is appended), and its
    /// connection-override fragment, if any, is tried as part of the signed URL when the URL
    /// without it fails. Mount the webhook at [`PublicEndpoint::path`].
    pub fn endpoint(mut self, endpoint: &PublicEndpoint) -> Self {
        self.public_url = Some(Ok(PublicUrl::Base(endpoint.base().to_owned())));
        self.fragment = endpoint.fragment();
        self
    }

    /// Checks each callback with the keys of the account it names (`AccountSid`), found by
    /// `resolver` ([`AccountKeys`](crate::accounts::AccountKeys) or your own), instead of the
    /// builder's validator: one endpoint serves many accounts and subaccounts, each with its own
    /// token(s). A callback naming an account the resolver does not know is refused (403).
    pub fn accounts(mut self, resolver: Arc<dyn KeyResolver>) -> Self {
        self.keys = Keys::PerAccount(resolver);
        self
    }

    /// Any [`PublicUrl`]: e.g. [`PublicUrl::Fixed`] for one full URL, query included.
    pub fn public_url_with(mut self, public_url: PublicUrl) -> Self {
        self.public_url = Some(match &public_url {
            PublicUrl::Base(base) | PublicUrl::Fixed(base) => {
                check_base(base.split(['?']).next().unwrap_or(base)).map(|()| public_url)
            }
            _ => Ok(public_url),
        });
        self
    }

    /// Rebuild the public URL from `Forwarded`/`X-Forwarded-*` headers, which only a proxy
    /// you trust may set: anyone else could choose the URL the signature is checked against.
    pub fn trusted_proxy(mut self, proxy: TrustedProxy) -> Self {
        self.public_url = Some(Ok(PublicUrl::TrustedProxy(proxy)));
        self
    }

    /// The largest body accepted (default 64 KiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long adapters wait for the whole request body (default 5 s); a client that sends
    /// its body slower, or stops halfway, is answered `408` and its connection freed.
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// Publish every real status change to `notifier`.
    pub fn notifier(mut self, notifier: Notifier) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Builds the webhook.
    ///
    /// # Errors
    /// [`WebhookConfigError`] when no public URL was given, it is invalid, or the body limit is 0.
    pub fn build(self) -> Result<StatusWebhook, WebhookConfigError> {
        let public_url = self.public_url.ok_or(WebhookConfigError::NoPublicUrl)??;
        if self.body_limit == 0 {
            return Err(WebhookConfigError::BodyLimit);
        }
        if self.body_read_timeout.is_zero() {
            return Err(WebhookConfigError::BodyReadTimeout);
        }
        Ok(StatusWebhook {
            inner: Arc::new(Inner {
                keys: self.keys,
                write: self.write.build(self.store.clone()),
                store: self.store,
                public_url,
                fragment: self.fragment,
                body_limit: self.body_limit,
                body_read_timeout: self.body_read_timeout,
                notifier: self.notifier,
            }),
        })
    }

    /// How long a callback may wait for the store, queue included (default 10 s, kept under
    /// Twilio's 15 s timeout so that the 503 + `Retry-After` reaches Twilio). Past it the
    /// callback is answered 503; the write may still complete, and a retry is then a
    /// duplicate, which changes nothing.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.write.deadline = deadline;
        self
    }

    /// How many callbacks may wait for the store at most (default 4096). When the queue is
    /// full a callback is answered 503 + `Retry-After` at once, so memory stays bounded even
    /// when the store stalls. Without [group commit](StatusStore::group_commit) there is no
    /// queue: the server's connections bound the callbacks waiting for the store.
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.write.queue_capacity = events;
        self
    }

    /// How many waiting callbacks are written in one store transaction at most (default 256).
    /// The queue writes whatever arrived while the previous batch committed, so a batch is
    /// only ever as large as the load makes it. Not used by a store that does not
    /// [group commits](StatusStore::group_commit).
    pub fn max_batch(mut self, events: usize) -> Self {
        self.write.max_batch = events;
        self
    }

    /// How many batches may be in the store at once (default 1). One is right for SQLite (one
    /// writer anyway); with PostgreSQL a second lets the next batch travel to the database while
    /// one commits. Batches of one webhook never deadlock with each other (rows are locked in
    /// SID order). Not used by a store that does not [group commits](StatusStore::group_commit).
    pub fn writers(mut self, n: usize) -> Self {
        self.write.writers = n;
        self
    }

    /// An account whose callbacks the webhook accepts (call again for several). Giving one
    /// turns the account check on: a signed callback whose `AccountSid` is missing or another
    /// is refused with 403.
    pub fn account_sid(mut self, account: AccountSid) -> Self {
        self.write.accounts.insert(account);
        self
    }

    /// Turns the account check on or off (default: on when an
    /// [`account_sid`](Self::account_sid) was given). On without any account, every
    /// callback is refused.
    pub fn check_account_sid(mut self, check: bool) -> Self {
        self.write.check_account = Some(check);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::is_form;

    #[test]
    fn public_url_base_is_validated() {
        assert!(check_base("https://Example.com:8443/api").is_ok());
        assert!(check_base("example.com").is_err());
        assert!(check_base("https://").is_err());
        assert!(check_base("https://x.com/?a=1").is_err());
        assert!(check_base("https://x.com/a b").is_err());
    }

    #[test]
    fn store_errors_map_to_their_status_and_text() {
        let down = WebhookResponse::refused(WebhookError::Store(StoreError::Unavailable(
            "connection refused".into(),
        )));
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.body(), "temporarily unavailable\n");
        assert!(down.headers.iter().any(|(n, _)| n == header::RETRY_AFTER));
        let corrupt =
            WebhookResponse::refused(WebhookError::Store(StoreError::Corrupt("bad sid".into())));
        assert_eq!(corrupt.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(corrupt.body(), "internal error\n");
        assert!(corrupt.headers.is_empty());
    }

    #[test]
    fn form_content_type_detection() {
        let mut h = HeaderMap::new();
        assert!(!is_form(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        assert!(is_form(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(!is_form(&h));
    }
}
