//! `PublicUrl`: the URL Twilio called, from configuration or, opt-in, from a trusted proxy's headers.

use std::fmt;

use http::HeaderMap;

use crate::redact::Url;

/// Where the public URL of a webhook (the URL Twilio signed) comes from.
///
/// A reverse proxy hides the URL Twilio called, so by default it is configuration
/// ([`Fixed`](Self::Fixed) or [`Base`](Self::Base)). [`TrustedProxy`](Self::TrustedProxy) rebuilds it
/// from `Forwarded` / `X-Forwarded-*` headers: use it **only** when every request passes through a
/// proxy you control that sets those headers, or a client could choose the URL it is validated against.
///
/// ```
/// use twilio_delivery::endpoint::{PublicUrl, Scheme, TrustedProxy};
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-forwarded-proto", "https".parse()?);
/// headers.insert("x-forwarded-host", "hooks.example.com".parse()?);
/// let public = PublicUrl::TrustedProxy(TrustedProxy::new(Scheme::Http));
/// assert_eq!(
///     public.resolve(&headers, "/twilio/status?tenant=acme")?,
///     "https://hooks.example.com/twilio/status?tenant=acme"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicUrl {
    /// The full URL exactly as configured in Twilio, query included; the request target is ignored.
    Fixed(String),
    /// `scheme://authority` with an optional path prefix; the raw request target (path and query)
    /// is appended. One trailing `/` of the base is dropped so that `/` is not doubled.
    Base(String),
    /// Rebuilt from the headers of a reverse proxy you trust.
    TrustedProxy(TrustedProxy),
}

impl fmt::Debug for PublicUrl {
    /// A password in the URL (`https://user:password@host`) is redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(url) => f.debug_tuple("Fixed").field(&Url(url)).finish(),
            Self::Base(url) => f.debug_tuple("Base").field(&Url(url)).finish(),
            Self::TrustedProxy(proxy) => f.debug_tuple("TrustedProxy").field(proxy).finish(),
        }
    }
}

/// The scheme used when a trusted proxy sends no protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `http`
    Http,
    /// `https`
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// How to read a trusted reverse proxy's headers.
///
/// The protocol and host come from `Forwarded` (RFC 7239, `proto=` and `host=`) when that header is
/// present, otherwise from `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Port`; the host
/// falls back to `Host`, then to [`fallback_host`](Self::fallback_host), the protocol to the
/// fallback scheme. When a header lists several values (one per proxy hop), the **last** one, set by
/// the proxy nearest to the app, is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxy {
    fallback_scheme: Scheme,
    fallback_host: Option<String>,
}

impl TrustedProxy {
    /// Reads the proxy headers, using `fallback_scheme` when they carry no protocol.
    pub fn new(fallback_scheme: Scheme) -> Self {
        Self {
            fallback_scheme,
            fallback_host: None,
        }
    }

    /// The host (`name[:port]`) used when no header carries one (HTTP/2 requests have no `Host`).
    #[must_use]
    pub fn fallback_host(mut self, host: impl Into<String>) -> Self {
        self.fallback_host = Some(host.into());
        self
    }
}

/// Why the public URL could not be rebuilt. The request is then to be rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublicUrlError {
    /// The request target is not a path (`/...`) of visible ASCII characters.
    #[error("request target is not an origin-form path")]
    InvalidTarget,
    /// A header carries a value that is not a plain protocol, host or port.
    #[error("invalid {header} header")]
    InvalidHeader {
        /// The header's name, lower-case (or `fallback host` for the configured fallback).
        header: &'static str,
    },
    /// No header and no fallback gives the host.
    #[error("no host in the forwarded, x-forwarded-host or host headers")]
    MissingHost,
}

impl PublicUrl {
    /// The public URL for a request with these headers and raw request target (`/path?query`,
    /// exactly as received).
    ///
    /// # Errors
    /// [`PublicUrlError`] when the target is not a path, a proxy header is invalid (spaces,
    /// CR/LF, characters a host cannot have, a protocol other than http/https), or no host is known.
    pub fn resolve(&self, headers: &HeaderMap, target: &str) -> Result<String, PublicUrlError> {
        match self {
            Self::Fixed(url) => Ok(url.clone()),
            Self::Base(base) => {
                check_target(target)?;
                let base = base.strip_suffix('/').unwrap_or(base);
                Ok(format!("{base}{target}"))
            }
            Self::TrustedProxy(proxy) => {
                check_target(target)?;
                let (scheme, host) = proxy.scheme_and_host(headers)?;
                Ok(format!("{scheme}://{host}{target}"))
            }
        }
    }
}

impl TrustedProxy {
    fn scheme_and_host(&self, headers: &HeaderMap) -> Result<(String, String), PublicUrlError> {
        let via_forwarded = headers.contains_key(http::header::FORWARDED);
        let (proto, host, port) = if via_forwarded {
            let (proto, host) = forwarded(headers)?;
            (proto, host, None)
        } else {
            let proto = last_value(headers, "x-forwarded-proto")?;
            let host = last_value(headers, "x-forwarded-host")?;
            let port = last_value(headers, "x-forwarded-port")?;
            (proto.map(str::to_owned), host.map(str::to_owned), port)
        };
        let (proto_label, host_label) = if via_forwarded {
            ("forwarded", "forwarded")
        } else {
            ("x-forwarded-proto", "x-forwarded-host")
        };
        let scheme = match proto {
            // Schemes are case-insensitive, and Twilio signs the URL with its scheme in lower
            // case (as the official libraries rebuild it): `HTTPS` from a proxy is `https`.
            Some(p) if p.eq_ignore_ascii_case("http") || p.eq_ignore_ascii_case("https") => {
                p.to_ascii_lowercase()
            }
            Some(_) => {
                return Err(PublicUrlError::InvalidHeader {
                    header: proto_label,
                });
            }
            None => self.fallback_scheme.as_str().to_owned(),
        };
        let (host, label) = match (host, last_value(headers, "host")?, &self.fallback_host) {
            (Some(h), _, _) => (h, host_label),
            (None, Some(h), _) => (h.to_owned(), "host"),
            (None, None, Some(h)) => (h.clone(), "fallback host"),
            (None, None, None) => return Err(PublicUrlError::MissingHost),
        };
        check_host(&host, label)?;
        let host = match port {
            Some(port) if !is_port(port) => {
                return Err(PublicUrlError::InvalidHeader {
                    header: "x-forwarded-port",
                });
            }
            Some(port) if split_port(&host).1.is_none() => format!("{host}:{port}"),
            _ => host,
        };
        Ok((scheme, host))
    }
}

/// `proto` and `host` of the last element of the `Forwarded` headers (RFC 7239).
fn forwarded(headers: &HeaderMap) -> Result<(Option<String>, Option<String>), PublicUrlError> {
    let invalid = PublicUrlError::InvalidHeader {
        header: "forwarded",
    };
    let mut last = None;
    for value in headers.get_all(http::header::FORWARDED) {
        let text = value.to_str().map_err(|_| invalid.clone())?;
        if let Some(element) = split_outside_quotes(text, ',').into_iter().last() {
            last = Some(element);
        }
    }
    let Some(element) = last else {
        return Ok((None, None));
    };
    let mut proto = None;
    let mut host = None;
    for pair in split_outside_quotes(element, ';') {
        let pair = pair.trim_matches([' ', '\t']);
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').ok_or(invalid.clone())?;
        let value = unquote(value).ok_or(invalid.clone())?;
        let slot = if name.eq_ignore_ascii_case("proto") {
            &mut proto
        } else if name.eq_ignore_ascii_case("host") {
            &mut host
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(invalid);
        }
        *slot = Some(value);
    }
    Ok((proto, host))
}

/// Splits at `sep` outside double-quoted strings (which may contain `\"`).
fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(text.get(start..i).unwrap_or_default());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or_default());
    parts
}

/// A token or a quoted string without its quotes and escapes; `None` when unbalanced.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.contains('"')).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// The last comma-separated value of a header over all its lines, trimmed.
fn last_value<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h str>, PublicUrlError> {
    let mut last = None;
    for value in headers.get_all(name) {
        let text = value
            .to_str()
            .map_err(|_| PublicUrlError::InvalidHeader { header: name })?;
        if let Some(v) = text.rsplit(',').next() {
            last = Some(v.trim_matches([' ', '\t']));
        }
    }
    Ok(last)
}

/// Origin-form: starts with `/`, visible ASCII only (no space, CR, LF, `#`).
fn check_target(target: &str) -> Result<(), PublicUrlError> {
    let ok = target.starts_with('/') && target.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
    ok.then_some(()).ok_or(PublicUrlError::InvalidTarget)
}

/// `name[:port]` with a DNS-like name or `[v6][:port]`; nothing that could end the authority.
fn check_host(host: &str, header: &'static str) -> Result<(), PublicUrlError> {
    let (name, port) = split_port(host);
    let name_ok = if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
    };
    let port_ok = port.is_none_or(is_port);
    (name_ok && port_ok)
        .then_some(())
        .ok_or(PublicUrlError::InvalidHeader { header })
}

/// Splits `host:port` (the port without its `:`), minding IPv6 brackets.
fn split_port(host: &str) -> (&str, Option<&str>) {
    let colon = if host.starts_with('[') {
        host.find(']').and_then(|close| {
            let rest = host.get(close + 1..)?;
            rest.starts_with(':').then_some(close + 1)
        })
    } else {
        host.rfind(':')
    };
    match colon {
        Some(i) => (host.get(..i).unwrap_or_default(), host.get(i + 1..)),
        None => (host, None),
    }
}

/// 1 to 5 digits, at most 65535.
fn is_port(port: &str) -> bool {
    (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| p <= 65_535)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_splitting() {
        assert_eq!(
            split_outside_quotes(r#"for="a,b";host=x, proto=https"#, ','),
            [r#"for="a,b";host=x"#, " proto=https"]
        );
        assert_eq!(unquote(r#""a\"b""#).as_deref(), Some("a\"b"));
        assert_eq!(unquote(r#""ab"#), None);
        assert_eq!(unquote(r#"a"b"#), None);
    }

    #[test]
    fn hosts() {
        for ok in [
            "h",
            "Example.COM",
            "h:8443",
            "[::1]",
            "[::1]:443",
            "xn--bcher-kva.example",
            "a_b.local",
        ] {
            assert!(check_host(ok, "host").is_ok(), "{ok}");
        }
        for bad in [
            "", "h h", "h\r\nx", "a@b", "a/b", "a?b", "a#b", "h:", "h:0x1", "h:99999", "[::1",
            "[]", "[::1]x", "[::g]", ":80", "a:b:c", "a,b", "a\\b",
        ] {
            assert!(check_host(bad, "host").is_err(), "{bad:?}");
        }
    }
}
