//! `WebhookGuard`: the signature check for any Twilio webhook (incoming messages, voice,
//! conversations, status callbacks), without a framework.
//!
//! It holds what checking a request needs besides the request: the validator (keys), where the
//! public URL comes from, the body limit and deadline, and optionally the HTTP Basic credentials
//! a Twilio Webhook Setting makes Twilio send. The tower layer ([`adapters::tower`]) and the
//! adapters' extractors wrap it; [`check`](WebhookGuard::check) is all of its logic.
//!
//! [`adapters::tower`]: crate::adapters

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderMap, Method, StatusCode, header};
use subtle::ConstantTimeEq as _;

use crate::accounts::KeyResolver;
use crate::endpoint::{PublicEndpoint, PublicUrl, PublicUrlError, TrustedProxy};
use crate::ids::AccountSid;
use crate::signature::{SignatureError, SignatureValidator, Verified};
use crate::webhook::{DEFAULT_BODY_LIMIT, DEFAULT_BODY_READ_TIMEOUT, WebhookConfigError};

/// Checks that a request comes from Twilio. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct WebhookGuard {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Keys,
    public_url: PublicUrl,
    fragment: Option<String>,
    body_limit: usize,
    body_read_timeout: Duration,
    basic: Option<BasicCredentials>,
}

impl fmt::Debug for WebhookGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookGuard")
            .field("keys", &self.inner.keys)
            .field("public_url", &self.inner.public_url)
            .field("body_limit", &self.inner.body_limit)
            .field("body_read_timeout", &self.inner.body_read_timeout)
            .field("basic", &self.inner.basic)
            .finish()
    }
}

/// The HTTP Basic credentials Twilio sends when a Webhook Setting tells it to authenticate
/// to the endpoint. `Debug` prints the user only.
#[derive(Clone)]
pub struct BasicCredentials {
    user: String,
    password: String,
}

impl BasicCredentials {
    /// The user and password Twilio is configured to send.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Whether `authorization` is `Basic base64(user:password)` with these credentials,
    /// compared in constant time.
    fn matches(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(encoded) = value
            .get(..6)
            .filter(|scheme| scheme.eq_ignore_ascii_case(b"basic "))
            .and_then(|_| value.get(6..))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii())
        else {
            return false;
        };
        let expected = format!("{}:{}", self.user, self.password);
        // Length is not secret (the same credentials every time); content is.
        decoded.len() == expected.len() && bool::from(decoded.ct_eq(expected.as_bytes()))
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Why a request was refused; each maps to one HTTP status ([`status_code`](Self::status_code)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// Basic credentials are required and missing or wrong (401).
    #[error("missing or wrong basic credentials")]
    Unauthorized,
    /// The public URL could not be determined (403).
    #[error("cannot determine the public url")]
    PublicUrl(#[source] PublicUrlError),
    /// The signature is missing or wrong (403).
    #[error("signature rejected")]
    Signature(#[source] SignatureError),
    /// Keys are per account and the request names no account the app serves (403).
    #[error("unknown account")]
    UnknownAccount,
    /// The body is larger than the limit (413).
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The body did not arrive within the deadline (408).
    #[error("body not received in time")]
    BodyTimeout,
    /// The client broke off sending the body (400).
    #[error("body could not be read")]
    BodyRead,
}

impl GuardError {
    /// The HTTP status this refusal is answered with.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::PublicUrl(_) | Self::Signature(_) | Self::UnknownAccount => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BodyRead => StatusCode::BAD_REQUEST,
        }
    }

    /// The short text answered with it (no detail a prober could use).
    pub fn body(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized\n",
            Self::PublicUrl(_) | Self::Signature(_) | Self::UnknownAccount => "forbidden\n",
            Self::PayloadTooLarge { .. } => "payload too large\n",
            Self::BodyTimeout => "request body not received in time\n",
            Self::BodyRead => "could not read request body\n",
        }
    }

    /// The headers answered with it: `WWW-Authenticate` with a 401, `Connection: close` when
    /// the rest of the body may still be on its way.
    pub fn headers(&self) -> Vec<(header::HeaderName, http::HeaderValue)> {
        match self {
            Self::Unauthorized => vec![(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"twilio\""),
            )],
            Self::BodyTimeout | Self::PayloadTooLarge { .. } => {
                vec![(header::CONNECTION, http::HeaderValue::from_static("close"))]
            }
            _ => Vec::new(),
        }
    }
}

/// A request that passed the guard: which key and URL candidate matched, and its form
/// parameters (empty unless the body is a form). Adapters put it in the request's extensions.
/// Its `Debug` shows how many parameters there are, not what they say (numbers, text).
#[derive(Clone)]
#[non_exhaustive]
pub struct ValidatedWebhook {
    /// What matched.
    pub verified: Verified,
    /// The decoded form pairs of the body, in wire order (empty for JSON bodies and GETs).
    pub params: Vec<(String, String)>,
}

impl fmt::Debug for ValidatedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatedWebhook")
            .field("verified", &self.verified)
            .field("params", &crate::redact::Pairs(self.params.len()))
            .finish()
    }
}

impl WebhookGuard {
    /// Starts building a guard that checks signatures with `validator`.
    pub fn builder(validator: SignatureValidator) -> WebhookGuardBuilder {
        WebhookGuardBuilder {
            keys: Keys::One(validator),
            public_url: None,
            fragment: None,
            body_limit: DEFAULT_BODY_LIMIT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            basic: None,
        }
    }

    /// The largest body accepted, in bytes.
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// How long to wait for the whole body.
    pub fn body_read_timeout(&self) -> Duration {
        self.inner.body_read_timeout
    }

    /// Checks one request: Basic credentials (if configured), then the signature over the
    /// public URL (the endpoint's override fragment tried second), the form pairs or, for other
    /// bodies, the `bodySHA256` hash.
    ///
    /// # Errors
    /// [`GuardError`] saying why the request is refused.
    pub async fn check(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ValidatedWebhook, GuardError> {
        let inner = &*self.inner;
        if body.len() > inner.body_limit {
            return Err(GuardError::PayloadTooLarge {
                limit: inner.body_limit,
            });
        }
        if let Some(basic) = &inner.basic {
            let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
            if !basic.matches(authorization) {
                return Err(GuardError::Unauthorized);
            }
        }
        let request = Request {
            method,
            target,
            headers,
            body,
        };
        let verified = verify(
            &inner.keys,
            &inner.public_url,
            inner.fragment.as_deref(),
            request,
        )
        .await
        .map_err(|e| match e {
            Refusal::PublicUrl(e) => GuardError::PublicUrl(e),
            Refusal::Signature(e) => GuardError::Signature(e),
            Refusal::UnknownAccount => GuardError::UnknownAccount,
        })?;
        let params = if is_form(headers) {
            form_urlencoded::parse(body).into_owned().collect()
        } else {
            Vec::new()
        };
        Ok(ValidatedWebhook { verified, params })
    }
}

/// The parts of a request a signature covers.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a Method,
    pub(crate) target: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

/// Why [`verify`] refused a request.
pub(crate) enum Refusal {
    PublicUrl(PublicUrlError),
    Signature(SignatureError),
    /// Keys are per account and the request names none the app serves.
    UnknownAccount,
}

/// Which keys check a request: one validator for all, or the keys of the account it names.
#[derive(Debug, Clone)]
pub(crate) enum Keys {
    One(SignatureValidator),
    PerAccount(Arc<dyn KeyResolver>),
}

impl Keys {
    /// The validator for `request`.
    async fn validator(&self, request: &Request<'_>) -> Result<SignatureValidator, Refusal> {
        match self {
            Keys::One(validator) => Ok(validator.clone()),
            Keys::PerAccount(resolver) => {
                let account = claimed_account(request).ok_or(Refusal::UnknownAccount)?;
                resolver
                    .validator(&account)
                    .await
                    .ok_or(Refusal::UnknownAccount)
            }
        }
    }
}

/// The `AccountSid` a request names: in its form body, else in its query string.
fn claimed_account(request: &Request<'_>) -> Option<AccountSid> {
    let first = |pairs: form_urlencoded::Parse<'_>| {
        pairs
            .into_iter()
            .find(|(k, _)| k == "AccountSid")
            .and_then(|(_, v)| AccountSid::new(v.as_ref()).ok())
    };
    if is_form(request.headers) {
        return first(form_urlencoded::parse(request.body));
    }
    let query = request.target.split_once('?').map(|(_, q)| q)?;
    first(form_urlencoded::parse(query.as_bytes()))
}

/// Resolves the public URL of `request` and validates its signature there, then, when that
/// fails and the endpoint has a connection-override fragment, with the fragment appended
/// (Twilio does not document whether it signs it). Shared by [`WebhookGuard`] and the status
/// webhook.
pub(crate) async fn verify(
    keys: &Keys,
    public_url: &PublicUrl,
    fragment: Option<&str>,
    request: Request<'_>,
) -> Result<Verified, Refusal> {
    let validator = keys.validator(&request).await?;
    let Request {
        method,
        target,
        headers,
        body,
    } = request;
    let url = public_url
        .resolve(headers, target)
        .map_err(Refusal::PublicUrl)?;
    match validator.validate_http(method, &url, headers, body) {
        Ok(verified) => Ok(verified),
        Err(error) => {
            let Some(fragment) = fragment else {
                return Err(Refusal::Signature(error));
            };
            let with_fragment = format!("{url}#{fragment}");
            validator
                .validate_http(method, &with_fragment, headers, body)
                .map_err(|_| Refusal::Signature(error))
        }
    }
}

/// Whether the request has exactly one content type, and it is a form.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(ct), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(ct) = ct.to_str() else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// Builds a [`WebhookGuard`].
#[derive(Debug)]
#[must_use]
pub struct WebhookGuardBuilder {
    keys: Keys,
    public_url: Option<Result<PublicUrl, WebhookConfigError>>,
    fragment: Option<String>,
    body_limit: usize,
    body_read_timeout: Duration,
    basic: Option<BasicCredentials>,
}

impl WebhookGuardBuilder {
    /// The public base URL Twilio calls (scheme, host, any prefix a proxy strips); the raw
    /// request target is appended to it.
    pub fn public_url(mut self, base: impl Into<String>) -> Self {
        let base: String = base.into();
        self.public_url = Some(
            crate::endpoint::check_base(&base)
                .map(|()| PublicUrl::Base(base))
                .map_err(|e| WebhookConfigError::PublicUrl(e.reason)),
        );
        self
    }

    /// The endpoint whose URL was configured in Twilio: its base, and its override fragment
    /// tried second.
    pub fn endpoint(mut self, endpoint: &PublicEndpoint) -> Self {
        self.public_url = Some(Ok(PublicUrl::Base(endpoint.base().to_owned())));
        self.fragment = endpoint.fragment();
        self
    }

    /// Rebuild the public URL from the headers of a reverse proxy you trust (only then).
    pub fn trusted_proxy(mut self, proxy: TrustedProxy) -> Self {
        self.public_url = Some(Ok(PublicUrl::TrustedProxy(proxy)));
        self
    }

    /// The largest body accepted (default 64 KiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long to wait for the whole body (default 5 s).
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// Checks each request with the keys of the account it names (`AccountSid`), found by
    /// `resolver` ([`AccountKeys`](crate::accounts::AccountKeys) or your own), instead of the
    /// builder's validator: one endpoint for many accounts. Unknown accounts get 403.
    pub fn accounts(mut self, resolver: Arc<dyn KeyResolver>) -> Self {
        self.keys = Keys::PerAccount(resolver);
        self
    }

    /// Also require these HTTP Basic credentials (sent by Twilio when a Webhook Setting tells
    /// it to authenticate to the endpoint); missing or wrong ones are answered 401.
    pub fn basic_auth(mut self, credentials: BasicCredentials) -> Self {
        self.basic = Some(credentials);
        self
    }

    /// Builds the guard.
    ///
    /// # Errors
    /// [`WebhookConfigError`] when no public URL was given, it is invalid, the body limit is 0
    /// or the body deadline is zero.
    pub fn build(self) -> Result<WebhookGuard, WebhookConfigError> {
        let public_url = self.public_url.ok_or(WebhookConfigError::NoPublicUrl)??;
        if self.body_limit == 0 {
            return Err(WebhookConfigError::BodyLimit);
        }
        if self.body_read_timeout.is_zero() {
            return Err(WebhookConfigError::BodyReadTimeout);
        }
        Ok(WebhookGuard {
            inner: Arc::new(Inner {
                keys: self.keys,
                public_url,
                fragment: self.fragment,
                body_limit: self.body_limit,
                body_read_timeout: self.body_read_timeout,
                basic: self.basic,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_match_exactly() {
        let creds = BasicCredentials::new("twilio", "s3cret");
        // base64("twilio:s3cret"), computed independently: `printf twilio:s3cret | base64`.
        assert!(creds.matches(Some(b"Basic dHdpbGlvOnMzY3JldA==")));
        assert!(creds.matches(Some(b"basic dHdpbGlvOnMzY3JldA==")));
        assert!(!creds.matches(Some(b"Basic dHdpbGlvOnMzY3JldQ==")));
        assert!(!creds.matches(Some(b"Bearer dHdpbGlvOnMzY3JldA==")));
        assert!(!creds.matches(Some(b"Basic !!!")));
        assert!(!creds.matches(Some(b"Basic")));
        assert!(!creds.matches(None));
        assert!(!format!("{creds:?}").contains("s3cret"));
    }
}
