//! `PublicEndpoint`: the one description of where Twilio reaches the app's status webhook; and
//! [`PublicUrl`]: where a webhook learns the URL Twilio called, to validate its signature.
//!
//! The same value produces the `StatusCallback` URL the client sends to Twilio
//! ([`PublicEndpoint::callback_url`]) and the URL the webhook validates signatures against
//! (`StatusWebhookBuilder::endpoint`), byte for byte. Nothing is parsed and printed again on the
//! way: a URL parser lower-cases hosts and re-encodes paths, and Twilio signs the URL exactly as it
//! was configured, so any rewrite turns every callback into a 403.

use std::fmt;
use std::time::Duration;

mod public_url;

pub use public_url::{PublicUrl, PublicUrlError, Scheme, TrustedProxy};

/// The longest `StatusCallback` Twilio accepts (longer: error 21609).
pub const MAX_CALLBACK_URL_LEN: usize = 4000;

/// The room a [`PublicEndpoint`] keeps below [`MAX_CALLBACK_URL_LEN`] for the `#` and the
/// longest fragment [`ConnectionOverrides`] can make, so that adding overrides (which cannot
/// fail) never makes the callback URL too long.
const OVERRIDES_ROOM: usize = 64;

/// Why an endpoint, a callback URL or connection overrides were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
#[non_exhaustive]
pub struct EndpointError {
    /// What was refused: `base`, `route`, `StatusCallback`, `rc`, `ct`, `rt` or `tt`.
    pub field: &'static str,
    /// Why, in a few words.
    pub reason: &'static str,
}

impl EndpointError {
    fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}

/// Where Twilio reaches the app's status webhook: the public base (scheme, host, optional port
/// and path prefix, exactly as the internet reaches the app) and the route (the webhook's path,
/// optionally with a query), plus Twilio's connection overrides for the URL's fragment
/// (`#rc=3&rp=5xx,rt,ct&ct=3000&rt=5000&tt=15000`).
///
/// Both strings are kept exactly as given (host case, port, escapes, query order), never
/// normalised, because Twilio signs the URL it was given. The webhook validates against
/// `base + the raw request target`; mount it at [`path`](Self::path). When a proxy strips a
/// prefix, put the prefix in the base.
///
/// By default Twilio retries a callback only when it cannot connect, so a 503 or a slow answer
/// from the webhook loses the event; [`ConnectionOverrides::recommended`] asks Twilio to retry
/// 5xx answers and timeouts as well. The fragment is not sent to the webhook, and Twilio does not
/// document whether it signs it: the webhook tries the URL without it, then with it.
///
/// ```
/// use twilio_delivery::endpoint::{ConnectionOverrides, PublicEndpoint};
///
/// let endpoint = PublicEndpoint::new("https://App.Example.com", "/twilio/status?tenant=7")?
///     .with_overrides(ConnectionOverrides::recommended());
/// assert_eq!(endpoint.signed_url(), "https://App.Example.com/twilio/status?tenant=7");
/// assert_eq!(
///     endpoint.callback_url(),
///     "https://App.Example.com/twilio/status?tenant=7#rc=3&rp=5xx,rt,ct&ct=3000&rt=5000&tt=15000"
/// );
/// assert_eq!(endpoint.path(), "/twilio/status");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PublicEndpoint {
    base: String,
    route: String,
    overrides: Option<ConnectionOverrides>,
}

impl fmt::Debug for PublicEndpoint {
    /// A password in the base (`https://user:password@host`) is redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicEndpoint")
            .field("base", &crate::redact::Url(&self.base))
            .field("route", &self.route)
            .field("overrides", &self.overrides)
            .finish()
    }
}

impl PublicEndpoint {
    /// The endpoint at `base` (`https://host[:port][/prefix]`; one trailing `/` is dropped) and
    /// `route` (`/path[?query]`; a missing leading `/` is added).
    ///
    /// # Errors
    /// [`EndpointError`] (field `base` or `route`) when the base is not `http(s)://` with a host,
    /// its host has an underscore (Twilio rejects those), it has a query or fragment, the route
    /// has a fragment, either holds a character that is not visible ASCII or a `%` not followed
    /// by two hex digits (Twilio wants the URL encoded already), or the URL is longer than
    /// [`MAX_CALLBACK_URL_LEN`] less 64 characters, the room kept for connection overrides.
    pub fn new(base: &str, route: &str) -> Result<Self, EndpointError> {
        let base = base.strip_suffix('/').unwrap_or(base);
        check_base(base)?;
        let route = if route.starts_with('/') {
            route.to_owned()
        } else {
            format!("/{route}")
        };
        if route.contains('#') {
            return Err(EndpointError::new("route", "must not have a fragment"));
        }
        check_encoded(&route).map_err(|reason| EndpointError::new("route", reason))?;
        let endpoint = Self {
            base: base.to_owned(),
            route,
            overrides: None,
        };
        if endpoint.signed_url().len() > MAX_CALLBACK_URL_LEN - OVERRIDES_ROOM {
            return Err(EndpointError::new(
                "route",
                "the url is over 3936 characters (4000 with room for connection overrides)",
            ));
        }
        Ok(endpoint)
    }

    /// Adds connection overrides (replacing any set before).
    #[must_use]
    pub fn with_overrides(mut self, overrides: ConnectionOverrides) -> Self {
        self.overrides = Some(overrides);
        self
    }

    /// Adds [`ConnectionOverrides::recommended`].
    #[must_use]
    pub fn with_recommended_overrides(self) -> Self {
        self.with_overrides(ConnectionOverrides::recommended())
    }

    /// The public base, as given (without a trailing `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The route: path and query, as given.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The route's path, without the query: where to mount the webhook.
    pub fn path(&self) -> &str {
        self.route.split('?').next().unwrap_or(&self.route)
    }

    /// The overrides, if any.
    pub fn overrides(&self) -> Option<&ConnectionOverrides> {
        self.overrides.as_ref()
    }

    /// The fragment the overrides make (`rc=3&rp=...`), if any.
    pub fn fragment(&self) -> Option<String> {
        let fragment = self.overrides.as_ref()?.to_fragment();
        (!fragment.is_empty()).then_some(fragment)
    }

    /// The URL without the fragment: what Twilio requests and signs.
    pub fn signed_url(&self) -> String {
        format!("{}{}", self.base, self.route)
    }

    /// The URL to send as `StatusCallback`: the signed URL plus the overrides' fragment.
    pub fn callback_url(&self) -> String {
        match self.fragment() {
            Some(fragment) => format!("{}{}#{fragment}", self.base, self.route),
            None => self.signed_url(),
        }
    }
}

impl fmt::Display for PublicEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.callback_url())
    }
}

impl From<&PublicEndpoint> for String {
    fn from(endpoint: &PublicEndpoint) -> String {
        endpoint.callback_url()
    }
}

impl From<PublicEndpoint> for String {
    fn from(endpoint: PublicEndpoint) -> String {
        endpoint.callback_url()
    }
}

/// Checks a public base: `http(s)://authority[/prefix]`, a host without `_`, no query or
/// fragment, encoded.
pub(crate) fn check_base(base: &str) -> Result<(), EndpointError> {
    let error = |reason| EndpointError::new("base", reason);
    let rest = strip_scheme(base).ok_or(error("must start with http:// or https://"))?;
    if rest.contains(['?', '#']) {
        return Err(error("must not have a query or fragment"));
    }
    check_encoded(base).map_err(error)?;
    check_authority(rest).map_err(error)
}

/// Checks a `StatusCallback` URL given whole (fragment allowed): what the client sends.
///
/// # Errors
/// The reason, when it is not `http(s)://` with a host, its host has `_`, it is not encoded
/// visible ASCII, or it is longer than [`MAX_CALLBACK_URL_LEN`].
pub(crate) fn check_callback_url(url: &str) -> Result<(), &'static str> {
    if url.len() > MAX_CALLBACK_URL_LEN {
        return Err("must be at most 4000 characters");
    }
    let rest = strip_scheme(url).ok_or("must be an http or https url")?;
    check_encoded(url)?;
    check_authority(rest)
}

fn strip_scheme(url: &str) -> Option<&str> {
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
}

/// Checks the authority at the start of `rest` (up to `/`, `?` or `#`): a host, no `_` in it.
fn check_authority(rest: &str) -> Result<(), &'static str> {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if host_port.starts_with('[') {
        host_port.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Err("has no host");
    }
    if host.contains('_') {
        return Err("host must not contain underscores");
    }
    if let Some(port) = host_port
        .strip_prefix(host)
        .and_then(|p| p.strip_prefix(']').or(Some(p)))
        && let Some(port) = port.strip_prefix(':')
        && (port.is_empty() || port.parse::<u16>().is_err())
    {
        return Err("has an invalid port");
    }
    Ok(())
}

/// Checks that `text` is visible ASCII with every `%` starting a two-hex-digit escape.
fn check_encoded(text: &str) -> Result<(), &'static str> {
    let bytes = text.as_bytes();
    if !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err("must be encoded: visible ascii characters only");
    }
    for (i, _) in text.match_indices('%') {
        let escape = bytes.get(i + 1..i + 3);
        if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
            return Err("has a % that starts no escape");
        }
    }
    Ok(())
}

/// Which failures Twilio retries (`rp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryOn {
    /// `4xx` answers.
    ClientError,
    /// `5xx` answers (a webhook answering 503 while its store is down).
    ServerError,
    /// `ct`: connect timeouts and failures (Twilio's default).
    ConnectTimeout,
    /// `rt`: read timeouts.
    ReadTimeout,
    /// `all`: every failure.
    All,
}

impl RetryOn {
    /// The value in the fragment.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryOn::ClientError => "4xx",
            RetryOn::ServerError => "5xx",
            RetryOn::ConnectTimeout => "ct",
            RetryOn::ReadTimeout => "rt",
            RetryOn::All => "all",
        }
    }
}

/// Twilio's per-URL connection overrides for the status callback.
///
/// Ranges (Twilio's): `rc` retry count 0..=5 (default 1); `ct` connect timeout 100..=10000 ms
/// (default 5000); `rt` read timeout 100..=15000 ms (default 15000); `tt` total time including
/// retries 100..=15000 ms (default 15000); `rp` from `4xx`, `5xx`, `ct`, `rt`, `all`
/// (default `ct`). Unset values are left to Twilio's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConnectionOverrides {
    retry_count: Option<u8>,
    retry_on: Vec<RetryOn>,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    total_timeout: Option<Duration>,
}

const CT_RANGE: (u64, u64) = (100, 10_000);
const RT_RANGE: (u64, u64) = (100, 15_000);
const TT_RANGE: (u64, u64) = (100, 15_000);

impl ConnectionOverrides {
    /// A builder with nothing set.
    pub fn builder() -> ConnectionOverridesBuilder {
        ConnectionOverridesBuilder {
            overrides: Self::default(),
        }
    }

    /// The crate's recommendation: retry up to 3 times on 5xx answers, read timeouts and
    /// connection failures, connect within 3 s, read within 5 s, everything within 15 s:
    /// `rc=3&rp=5xx,rt,ct&ct=3000&rt=5000&tt=15000`. The webhook answers after a store write,
    /// so 5 s is ample, and a 503 (store down) gets retried instead of dropped.
    pub fn recommended() -> Self {
        Self {
            retry_count: Some(3),
            retry_on: vec![
                RetryOn::ServerError,
                RetryOn::ReadTimeout,
                RetryOn::ConnectTimeout,
            ],
            connect_timeout: Some(Duration::from_millis(3000)),
            read_timeout: Some(Duration::from_millis(5000)),
            total_timeout: Some(Duration::from_millis(15_000)),
        }
    }

    /// `rc`, if set.
    pub fn retry_count(&self) -> Option<u8> {
        self.retry_count
    }

    /// `rp`, in the order given.
    pub fn retry_on(&self) -> &[RetryOn] {
        &self.retry_on
    }

    /// `ct`, if set.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// `rt`, if set.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// `tt`, if set.
    pub fn total_timeout(&self) -> Option<Duration> {
        self.total_timeout
    }

    /// The fragment text, `rc=..&rp=..&ct=..&rt=..&tt=..` with only the values set.
    pub fn to_fragment(&self) -> String {
        let mut parts = Vec::new();
        if let Some(rc) = self.retry_count {
            parts.push(format!("rc={rc}"));
        }
        if !self.retry_on.is_empty() {
            let rp: Vec<&str> = self.retry_on.iter().map(|r| r.as_str()).collect();
            parts.push(format!("rp={}", rp.join(",")));
        }
        for (key, value) in [
            ("ct", self.connect_timeout),
            ("rt", self.read_timeout),
            ("tt", self.total_timeout),
        ] {
            if let Some(d) = value {
                parts.push(format!("{key}={}", d.as_millis()));
            }
        }
        parts.join("&")
    }
}

/// Builds [`ConnectionOverrides`]; ranges are checked by [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct ConnectionOverridesBuilder {
    overrides: ConnectionOverrides,
}

impl ConnectionOverridesBuilder {
    /// `rc`: how many times Twilio retries (0..=5).
    pub fn retry_count(mut self, count: u8) -> Self {
        self.overrides.retry_count = Some(count);
        self
    }

    /// `rp`: adds a failure kind Twilio retries (duplicates are dropped).
    pub fn retry_on(mut self, on: RetryOn) -> Self {
        if !self.overrides.retry_on.contains(&on) {
            self.overrides.retry_on.push(on);
        }
        self
    }

    /// `ct`: connect timeout, whole milliseconds in 100..=10000.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.overrides.connect_timeout = Some(timeout);
        self
    }

    /// `rt`: read timeout, whole milliseconds in 100..=15000.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.overrides.read_timeout = Some(timeout);
        self
    }

    /// `tt`: total time including retries, whole milliseconds in 100..=15000.
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.overrides.total_timeout = Some(timeout);
        self
    }

    /// The overrides.
    ///
    /// # Errors
    /// [`EndpointError`] naming `rc`, `ct`, `rt` or `tt` when a value is out of range
    /// or not whole milliseconds.
    pub fn build(self) -> Result<ConnectionOverrides, EndpointError> {
        let o = self.overrides;
        if o.retry_count.is_some_and(|rc| rc > 5) {
            return Err(EndpointError::new("rc", "retry count must be 0 to 5"));
        }
        for (field, value, (lo, hi)) in [
            ("ct", o.connect_timeout, CT_RANGE),
            ("rt", o.read_timeout, RT_RANGE),
            ("tt", o.total_timeout, TT_RANGE),
        ] {
            if let Some(d) = value {
                let whole = d.subsec_nanos() % 1_000_000 == 0;
                let ms = d.as_millis();
                if !whole || ms < u128::from(lo) || ms > u128::from(hi) {
                    return Err(EndpointError::new(
                        field,
                        "out of range or not whole milliseconds",
                    ));
                }
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_base_and_route_byte_for_byte() {
        let e = PublicEndpoint::new(
            "https://App.Example.com:8443/Prefix/",
            "Twilio/Status?b=2&a=%2F",
        )
        .unwrap();
        assert_eq!(e.base(), "https://App.Example.com:8443/Prefix");
        assert_eq!(e.route(), "/Twilio/Status?b=2&a=%2F");
        assert_eq!(e.path(), "/Twilio/Status");
        assert_eq!(
            e.signed_url(),
            "https://App.Example.com:8443/Prefix/Twilio/Status?b=2&a=%2F"
        );
        assert_eq!(e.callback_url(), e.signed_url());
        assert_eq!(e.fragment(), None);
        let e = e.with_overrides(
            ConnectionOverrides::builder()
                .retry_count(0)
                .build()
                .unwrap(),
        );
        assert_eq!(e.callback_url(), format!("{}#rc=0", e.signed_url()));
        assert_eq!(e.to_string(), e.callback_url());
        assert_eq!(String::from(&e), e.callback_url());
    }

    /// The longest fragment fits the room `new` keeps, so an endpoint with any overrides
    /// stays within Twilio's limit.
    #[test]
    fn any_overrides_fit_below_the_limit() {
        let longest = ConnectionOverrides::builder()
            .retry_count(5)
            .retry_on(RetryOn::ClientError)
            .retry_on(RetryOn::ServerError)
            .retry_on(RetryOn::ConnectTimeout)
            .retry_on(RetryOn::ReadTimeout)
            .retry_on(RetryOn::All)
            .connect_timeout(Duration::from_millis(CT_RANGE.1))
            .read_timeout(Duration::from_millis(RT_RANGE.1))
            .total_timeout(Duration::from_millis(TT_RANGE.1))
            .build()
            .unwrap();
        assert!(longest.to_fragment().len() < OVERRIDES_ROOM, "with its `#`");
        let base = "https://app.example.com";
        let longest_route = format!(
            "/{}",
            "a".repeat(MAX_CALLBACK_URL_LEN - OVERRIDES_ROOM - base.len() - 1)
        );
        let e = PublicEndpoint::new(base, &longest_route).unwrap();
        let with = e.with_overrides(longest);
        assert!(with.callback_url().len() <= MAX_CALLBACK_URL_LEN);
        assert!(check_callback_url(&with.callback_url()).is_ok());
        let too_long = format!("{longest_route}a");
        assert_eq!(
            PublicEndpoint::new(base, &too_long).unwrap_err().field,
            "route"
        );
    }

    #[test]
    fn refuses_what_twilio_refuses() {
        let field = |b: &str, r: &str| PublicEndpoint::new(b, r).unwrap_err().field;
        assert_eq!(field("ftp://a.example.com", "/x"), "base");
        assert_eq!(field("https://", "/x"), "base");
        assert_eq!(field("https://a_b.example.com", "/x"), "base");
        assert_eq!(field("https://a.example.com?x=1", "/x"), "base");
        assert_eq!(field("https://a.example.com:99999", "/x"), "base");
        assert_eq!(field("https://a.example.com", "/x#rc=1"), "route");
        assert_eq!(field("https://a.example.com", "/a b"), "route");
        assert_eq!(field("https://a.example.com", "/caf\u{e9}"), "route");
        assert_eq!(field("https://a.example.com", "/x?a=%zz"), "route");
        assert_eq!(field("https://a.example.com", &"/x".repeat(2001)), "route");
        assert!(PublicEndpoint::new("http://[::1]:8080", "/cb").is_ok());
        assert!(check_callback_url("https://a.example.com/cb#rc=1").is_ok());
        assert!(check_callback_url("https://my_host.example.com/cb").is_err());
        assert!(check_callback_url("ftp://example.com/cb").is_err());
        assert!(check_callback_url("https://example.com/a b").is_err());
    }

    fn field(r: Result<ConnectionOverrides, EndpointError>) -> &'static str {
        match r {
            Err(e) => e.field,
            Ok(o) => panic!("expected an error, got {o:?}"),
        }
    }

    #[test]
    fn fragment_is_built_and_ranges_checked() {
        let o = ConnectionOverrides::builder()
            .retry_count(5)
            .retry_on(RetryOn::ServerError)
            .retry_on(RetryOn::ServerError)
            .retry_on(RetryOn::ClientError)
            .retry_on(RetryOn::All)
            .connect_timeout(Duration::from_millis(100))
            .read_timeout(Duration::from_millis(15_000))
            .total_timeout(Duration::from_millis(15_000))
            .build()
            .unwrap();
        assert_eq!(
            o.to_fragment(),
            "rc=5&rp=5xx,4xx,all&ct=100&rt=15000&tt=15000"
        );
        let rc0 = ConnectionOverrides::builder()
            .retry_count(0)
            .build()
            .unwrap();
        assert_eq!(rc0.to_fragment(), "rc=0");
        assert_eq!(ConnectionOverrides::default().to_fragment(), "");
        let b = ConnectionOverrides::builder;
        assert_eq!(field(b().retry_count(6).build()), "rc");
        assert_eq!(
            field(b().connect_timeout(Duration::from_millis(99)).build()),
            "ct"
        );
        assert_eq!(
            field(b().connect_timeout(Duration::from_millis(10_001)).build()),
            "ct"
        );
        assert_eq!(
            field(b().read_timeout(Duration::from_millis(15_001)).build()),
            "rt"
        );
        assert_eq!(
            field(b().total_timeout(Duration::from_millis(15_001)).build()),
            "tt"
        );
        assert_eq!(
            field(b().total_timeout(Duration::from_micros(1_500_500)).build()),
            "tt"
        );
        let rec = ConnectionOverrides::recommended();
        assert!(rec.retry_on().contains(&RetryOn::ServerError));
        // The preset itself is within the ranges.
        let rebuilt = ConnectionOverridesBuilder {
            overrides: rec.clone(),
        }
        .build()
        .unwrap();
        assert_eq!(rebuilt, rec);
    }
}
