//! `ClientBuilder`: base URL or region/edge, timeouts, user agent, HTTP client and retry policy.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use url::Url;

use super::Client;
use super::credentials::Credentials;
use super::retry::RetryPolicy;
use super::transport::Inner;
use crate::error::{Error, Result};
use crate::ids::AccountSid;
use crate::optout::OptOutList;

/// Twilio's default API host.
const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a [`Client`]; start with [`Client::builder`] or [`Client::builder_with_api_key`].
///
/// Defaults: `https://api.twilio.com`, 30 s per request, 10 s to connect, user agent
/// `twilio-delivery/<version>`, [`RetryPolicy::default`]. `Debug` never shows the secret.
#[must_use]
pub struct ClientBuilder {
    account_sid: AccountSid,
    credentials: Credentials,
    base_url: Option<Url>,
    region: Option<String>,
    edge: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    user_agent: Option<String>,
    http: Option<reqwest::Client>,
    retry: RetryPolicy,
    opt_outs: Option<Arc<dyn OptOutList>>,
}

impl ClientBuilder {
    pub(crate) fn new(account_sid: AccountSid, credentials: Credentials) -> Self {
        Self {
            account_sid,
            credentials,
            base_url: None,
            region: None,
            edge: None,
            timeout: Some(DEFAULT_TIMEOUT),
            connect_timeout: None,
            user_agent: None,
            http: None,
            retry: RetryPolicy::default(),
            opt_outs: None,
        }
    }

    /// Consults `list` before every send: a recipient on it is refused with
    /// [`Error::OptedOut`] without a request to Twilio, and a recipient Twilio refuses with
    /// error 21610 (unsubscribed) is added to it. Any store works
    /// ([`MemoryStore`](crate::store::MemoryStore), `SqliteStore`, `PostgresStore`).
    pub fn opt_outs(mut self, list: Arc<dyn OptOutList>) -> Self {
        self.opt_outs = Some(list);
        self
    }

    /// Sends requests to `url` instead of Twilio (the local emulator, a test server, a proxy).
    /// A path prefix is kept: `http://127.0.0.1:4010/twilio` → `/twilio/2010-04-01/...`.
    /// Cannot be combined with [`region`](Self::region)/[`edge`](Self::edge).
    pub fn base_url(mut self, url: Url) -> Self {
        self.base_url = Some(url);
        self
    }

    /// A Twilio region (`ie1`, `au1`, ...): the host becomes `api.{edge}.{region}.twilio.com`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// A Twilio edge location (`dublin`, `sydney`, ...); without a region, `us1` is implied.
    pub fn edge(mut self, edge: impl Into<String>) -> Self {
        self.edge = Some(edge.into());
        self
    }

    /// The time allowed for each try of a request, response body included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// No overall request timeout (not recommended).
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// The time allowed to connect (default 10 s). Not applicable with
    /// [`reqwest_client`](Self::reqwest_client): configure that client instead.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The `User-Agent` header (default `twilio-delivery/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Uses a `reqwest::Client` you configured (proxy, TLS roots, pool settings).
    ///
    /// Build it with `.redirect(reqwest::redirect::Policy::none())`, as the crate's own client
    /// is: reqwest follows redirects by default, and a redirected create would send the
    /// message's form to wherever the redirect points. With redirects off, a `3xx` answer is an
    /// [`Error::Api`] with its status.
    ///
    /// **This makes reqwest 0.13 a public dependency of your code**: the crate promises to
    /// keep this method on reqwest 0.13 until a breaking release. Everything else in the
    /// crate's API is free of reqwest types.
    pub fn reqwest_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The retry policy (default [`RetryPolicy::default`]; [`RetryPolicy::none`] turns
    /// retries off).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::Config`] when the base URL is not HTTP(S) or has a query or fragment, a base
    /// URL is combined with a region or edge, a region or edge is not a DNS label, the user
    /// agent is not a valid header value, a connect timeout is set together with a caller's
    /// reqwest client, an `https` URL is used without a TLS feature (`rustls`/`native-tls`),
    /// or the HTTP client cannot be created.
    pub fn build(self) -> Result<Client> {
        let base = self.resolve_base()?;
        let user_agent = match &self.user_agent {
            Some(ua) => HeaderValue::from_str(ua)
                .map_err(|_| Error::Config("user agent is not a valid header value".into()))?,
            None => {
                HeaderValue::from_static(concat!("twilio-delivery/", env!("CARGO_PKG_VERSION")))
            }
        };
        let http = match self.http {
            Some(http) => {
                if self.connect_timeout.is_some() {
                    return Err(Error::Config(
                        "connect_timeout cannot be applied to a caller-supplied reqwest client"
                            .into(),
                    ));
                }
                http
            }
            None => {
                if base.scheme() == "https"
                    && !cfg!(any(feature = "rustls", feature = "native-tls"))
                {
                    return Err(Error::Config(
                        "https needs the rustls or native-tls feature".into(),
                    ));
                }
                // Twilio's API does not redirect. Following one would send a create's form to
                // wherever it points and take that host's answer (reqwest only drops the
                // credentials), and would take a read's page from another host.
                reqwest::Client::builder()
                    .connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|_| Error::Config("the http client could not be created".into()))?
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                account_sid: self.account_sid,
                credentials: self.credentials,
                user_agent,
                timeout: self.timeout,
                retry: self.retry,
                opt_outs: self.opt_outs,
            }),
        })
    }

    fn resolve_base(&self) -> Result<Url> {
        let url = match (&self.base_url, &self.region, &self.edge) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(Error::Config(
                    "base_url cannot be combined with region or edge".into(),
                ));
            }
            (Some(url), None, None) => url.clone(),
            (None, None, None) => Url::parse(DEFAULT_BASE_URL)
                .map_err(|_| Error::Config("the default base url is invalid".into()))?,
            (None, region, edge) => {
                let region = region.as_deref().or(edge.as_ref().map(|_| "us1"));
                let mut host = String::from("api");
                for label in [edge.as_deref(), region].into_iter().flatten() {
                    if !is_dns_label(label) {
                        return Err(Error::Config(
                            "region and edge must be lowercase dns labels".into(),
                        ));
                    }
                    host.push('.');
                    host.push_str(label);
                }
                Url::parse(&format!("https://{host}.twilio.com"))
                    .map_err(|_| Error::Config("region or edge gives an invalid host".into()))?
            }
        };
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(Error::Config(
                "base url must be an http or https url".into(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::Config(
                "base url must not have a query or fragment".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Config("base url must not carry credentials".into()));
        }
        Ok(url)
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("account_sid", &self.account_sid)
            .field("credentials", &self.credentials)
            .field("base_url", &self.base_url.as_ref().map(Url::as_str))
            .field("region", &self.region)
            .field("edge", &self.edge)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("user_agent", &self.user_agent)
            .field("custom_http_client", &self.http.is_some())
            .field("retry", &self.retry)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::AuthToken;

    fn builder() -> ClientBuilder {
        Client::builder(
            AccountSid::new("AC0123456789abcdef0123456789abcdef").unwrap(),
            AuthToken::new("super-secret-token"),
        )
    }

    fn host(b: ClientBuilder) -> String {
        b.resolve_base().unwrap().to_string()
    }

    #[test]
    fn regions_and_edges_pick_the_host() {
        assert_eq!(host(builder()), "https://api.twilio.com/");
        assert_eq!(host(builder().region("ie1")), "https://api.ie1.twilio.com/");
        assert_eq!(
            host(builder().edge("sydney")),
            "https://api.sydney.us1.twilio.com/"
        );
        assert_eq!(
            host(builder().edge("sydney").region("au1")),
            "https://api.sydney.au1.twilio.com/"
        );
        assert!(builder().region("IE1").resolve_base().is_err());
        assert!(builder().region("evil.com/").resolve_base().is_err());
        let local = Url::parse("http://127.0.0.1:9/x").unwrap();
        assert!(
            builder()
                .base_url(local.clone())
                .region("ie1")
                .resolve_base()
                .is_err()
        );
        assert_eq!(host(builder().base_url(local)), "http://127.0.0.1:9/x");
        let bad = Url::parse("ftp://127.0.0.1/").unwrap();
        assert!(builder().base_url(bad).resolve_base().is_err());
        let creds = Url::parse("http://u:p@127.0.0.1/").unwrap();
        assert!(builder().base_url(creds).resolve_base().is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let b = builder().user_agent("bad\nagent");
        assert!(!format!("{b:?}").contains("super-secret-token"));
        assert!(matches!(b.build(), Err(Error::Config(_))));
        let c = builder()
            .base_url(Url::parse("http://127.0.0.1:9").unwrap())
            .build()
            .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("super-secret-token"), "{d}");
        assert!(d.contains("AC0123456789abcdef0123456789abcdef"));
        let e = builder()
            .reqwest_client(reqwest::Client::new())
            .connect_timeout(Duration::from_secs(1))
            .build();
        assert!(matches!(e, Err(Error::Config(_))));
    }
}
