//! `StatusCallbackUrl`: the app's status webhook URL, optionally with Twilio connection overrides.

use std::fmt;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

/// A status callback URL built from the app's public base URL and the webhook's path,
/// optionally carrying Twilio's connection overrides in its fragment
/// (`#rc=3&rp=5xx,rt,ct&ct=2000&rt=5000&tt=15000`).
///
/// By default Twilio retries a callback only when it cannot connect, so a 503 or a slow answer
/// from the webhook loses the event. [`ConnectionOverrides::recommended`] asks Twilio to retry
/// 5xx answers and timeouts as well. The fragment is not sent to the webhook and is believed
/// not to be part of the signed URL; validate signatures against [`signed_url`](Self::signed_url).
///
/// ```
/// use twilio_delivery::client::{ConnectionOverrides, StatusCallbackUrl};
/// use url::Url;
///
/// let base = Url::parse("https://app.example.com/")?;
/// let cb = StatusCallbackUrl::new(&base, "/twilio/status")?
///     .with_overrides(ConnectionOverrides::recommended());
/// assert_eq!(cb.signed_url().as_str(), "https://app.example.com/twilio/status");
/// assert_eq!(
///     cb.to_url().as_str(),
///     "https://app.example.com/twilio/status#rc=3&rp=5xx,rt,ct&ct=3000&rt=5000&tt=15000"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallbackUrl {
    url: Url,
    overrides: Option<ConnectionOverrides>,
}

impl StatusCallbackUrl {
    /// Joins `public_base` (scheme, host, optional path prefix, as the internet reaches the app)
    /// and `path` (the webhook route, optionally with a query): `https://app.example.com/base` +
    /// `/twilio/status` → `https://app.example.com/base/twilio/status`.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] (field `StatusCallback`) when the base is not HTTP(S), has a
    /// query or fragment, its host contains an underscore (Twilio rejects those), or `path` has
    /// a fragment.
    pub fn new(public_base: &Url, path: &str) -> Result<Self> {
        if public_base.query().is_some() || public_base.fragment().is_some() {
            return Err(Error::invalid(
                "StatusCallback",
                "the public base url must not have a query or fragment",
            ));
        }
        if path.contains('#') {
            return Err(Error::invalid(
                "StatusCallback",
                "the path must not have a fragment",
            ));
        }
        let joined = format!(
            "{}/{}",
            public_base.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let url = Url::parse(&joined)
            .map_err(|_| Error::invalid("StatusCallback", "base and path do not form a url"))?;
        Self::from_url(url)
    }

    /// Uses a complete URL as is.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] (field `StatusCallback`) when it is not HTTP(S), has a fragment
    /// already, or its host contains an underscore.
    pub fn from_url(url: Url) -> Result<Self> {
        check_status_callback(&url)?;
        if url.fragment().is_some() {
            return Err(Error::invalid(
                "StatusCallback",
                "must not have a fragment; set overrides with with_overrides",
            ));
        }
        Ok(Self {
            url,
            overrides: None,
        })
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

    /// The URL without the fragment: what Twilio requests and signs, and what the webhook's
    /// signature validator must be configured with.
    pub fn signed_url(&self) -> &Url {
        &self.url
    }

    /// The overrides, if any.
    pub fn overrides(&self) -> Option<&ConnectionOverrides> {
        self.overrides.as_ref()
    }

    /// The URL to send as `StatusCallback`, with the overrides as its fragment.
    pub fn to_url(&self) -> Url {
        let mut url = self.url.clone();
        if let Some(o) = &self.overrides {
            let fragment = o.to_fragment();
            if !fragment.is_empty() {
                url.set_fragment(Some(&fragment));
            }
        }
        url
    }
}

/// The checks Twilio applies to any `StatusCallback`: HTTP(S), no underscore in the host.
pub(crate) fn check_status_callback(url: &Url) -> Result<()> {
    if !is_http(url) {
        return Err(Error::invalid(
            "StatusCallback",
            "must be an http or https url",
        ));
    }
    if url.host_str().is_some_and(|h| h.contains('_')) {
        return Err(Error::invalid(
            "StatusCallback",
            "host must not contain underscores",
        ));
    }
    Ok(())
}

/// Whether the URL is absolute HTTP(S) with a host.
pub(crate) fn is_http(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.has_host()
}

impl From<StatusCallbackUrl> for Url {
    fn from(cb: StatusCallbackUrl) -> Url {
        cb.to_url()
    }
}

impl From<&StatusCallbackUrl> for Url {
    fn from(cb: &StatusCallbackUrl) -> Url {
        cb.to_url()
    }
}

impl fmt::Display for StatusCallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_url().as_str())
    }
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
    /// [`Error::InvalidRequest`] naming `rc`, `ct`, `rt` or `tt` when a value is out of range
    /// or not whole milliseconds.
    pub fn build(self) -> Result<ConnectionOverrides> {
        let o = self.overrides;
        if o.retry_count.is_some_and(|rc| rc > 5) {
            return Err(Error::invalid("rc", "retry count must be 0 to 5"));
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
                    return Err(Error::invalid(
                        field,
                        format!("must be whole milliseconds from {lo} to {hi}"),
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

    fn field(r: Result<ConnectionOverrides>) -> &'static str {
        match r {
            Err(Error::InvalidRequest { field, .. }) => field,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn joins_base_and_path() {
        let base = Url::parse("https://app.example.com/prefix/").unwrap();
        let cb = StatusCallbackUrl::new(&base, "/twilio/status?tenant=7").unwrap();
        assert_eq!(
            cb.to_url().as_str(),
            "https://app.example.com/prefix/twilio/status?tenant=7"
        );
        let base = Url::parse("http://127.0.0.1:8080").unwrap();
        let cb = StatusCallbackUrl::new(&base, "cb").unwrap();
        assert_eq!(cb.signed_url().as_str(), "http://127.0.0.1:8080/cb");
        assert!(
            StatusCallbackUrl::new(&Url::parse("https://a_b.example.com").unwrap(), "/x").is_err()
        );
        assert!(
            StatusCallbackUrl::new(&Url::parse("https://a.example.com?x=1").unwrap(), "/x")
                .is_err()
        );
        assert!(StatusCallbackUrl::new(&base, "/x#rc=1").is_err());
        assert!(StatusCallbackUrl::from_url(Url::parse("ftp://a.example.com/x").unwrap()).is_err());
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
        let base = Url::parse("https://app.example.com").unwrap();
        let cb = StatusCallbackUrl::new(&base, "/cb")
            .unwrap()
            .with_overrides(rc0);
        assert_eq!(Url::from(&cb).as_str(), "https://app.example.com/cb#rc=0");
        assert_eq!(cb.to_string(), "https://app.example.com/cb#rc=0");
    }
}
