//! A `StatusCallback` URL checked against RFC 3986 and split, without re-encoding, into what the
//! callback request needs: the string to sign, the authority to connect to, the request target.
//!
//! Twilio requests the URL as configured and signs that same string, so nothing here decodes,
//! re-encodes, lower-cases or normalises: every part is a slice of the configured string.
//! Twilio refuses a `StatusCallback` that is not a valid URL, is longer than 4000 characters, or
//! is not properly encoded, with error 21609 (<https://www.twilio.com/docs/api/errors/21609>),
//! and a host with an underscore (the spec's `CreateMessageRequest.StatusCallback`: "URL must
//! contain a valid hostname and underscores are not allowed").

/// The longest `StatusCallback` Twilio accepts (error 21609's documented 4000-character limit).
pub(crate) const MAX_LEN: usize = 4000;

/// A `StatusCallback` that passed validation, as slices of the configured string. `Debug`
/// hides credentials (`user:pass@`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct CallbackUrl {
    /// The URL without its `#fragment`: requested and signed exactly as written.
    pub(crate) signed: String,
    /// `true` for `https`.
    pub(crate) https: bool,
    /// `user:pass` before the `@`, still percent-encoded.
    pub(crate) userinfo: Option<String>,
    /// The host as written (an IPv6 literal keeps its brackets).
    pub(crate) host: String,
    /// The port as written, if any (`None` for an absent or empty port).
    pub(crate) port: Option<u16>,
    /// The request target: the path (`/` when empty) and `?query`, byte for byte.
    pub(crate) target: String,
    /// The fragment after `#` (Twilio's connection overrides), without the `#`.
    pub(crate) fragment: Option<String>,
}

impl std::fmt::Debug for CallbackUrl {
    /// The URL with any `user:pass@` replaced by `[redacted]@`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match &self.userinfo {
            Some(userinfo) => self
                .signed
                .replacen(&format!("{userinfo}@"), "[redacted]@", 1),
            None => self.signed.clone(),
        };
        f.debug_struct("CallbackUrl")
            .field("url", &shown)
            .field("fragment", &self.fragment)
            .finish_non_exhaustive()
    }
}

/// RFC 3986 `unreserved`.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `sub-delims`.
fn sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// Whether `s` is made only of bytes `allowed` accepts and well-formed `%XX` escapes.
fn encoded(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else if allowed(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// RFC 3986 `pchar` without `%` (escapes are checked by [`encoded`]).
fn pchar(b: u8) -> bool {
    unreserved(b) || sub_delim(b) || matches!(b, b':' | b'@')
}

/// The characters of a query or fragment.
fn query_char(b: u8) -> bool {
    pchar(b) || matches!(b, b'/' | b'?')
}

/// An IPv6 (or IPvFuture) literal between brackets: hex digits, `:`, `.` and the characters a
/// zone or IPvFuture may use.
fn ip_literal(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return false;
    };
    !inner.is_empty()
        && inner.contains(':')
        && inner
            .bytes()
            .all(|b| unreserved(b) || sub_delim(b) || b == b':')
}

/// Splits `authority` into userinfo, host and port; `None` if any part is malformed.
fn authority(authority: &str) -> Option<(Option<&str>, &str, Option<u16>)> {
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if let Some(u) = userinfo
        && !encoded(u, |b| unreserved(b) || sub_delim(b) || b == b':')
    {
        return None;
    }
    let (host, port) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        let (host, rest) = hostport.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse::<u16>().ok()?),
        Some(_) => return None,
    };
    let host_ok = if host.starts_with('[') {
        ip_literal(host)
    } else {
        // A reg-name (or IPv4 address); Twilio refuses underscores in it.
        !host.is_empty() && !host.contains('_') && encoded(host, |b| unreserved(b) || sub_delim(b))
    };
    host_ok.then_some((userinfo, host, port))
}

impl CallbackUrl {
    /// Parses and validates a `StatusCallback` as Twilio does at create time: an absolute
    /// `http`/`https` URL (scheme in any case), a host, an optional port, and a path, query and
    /// fragment made only of RFC 3986 characters and well-formed `%XX` escapes, at most 4000
    /// characters in all. `None` when Twilio would answer 21609.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        if s.len() > MAX_LEN || !s.is_ascii() {
            return None;
        }
        let (signed, fragment) = match s.split_once('#') {
            Some((url, fragment)) => (url, Some(fragment)),
            None => (s, None),
        };
        if let Some(f) = fragment
            && !encoded(f, query_char)
        {
            return None;
        }
        let (scheme, rest) = signed.split_once("://")?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return None;
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (auth, path_and_query) = rest.split_at(end);
        let (userinfo, host, port) = authority(auth)?;
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        if !encoded(path, |b| pchar(b) || b == b'/') {
            return None;
        }
        if let Some(q) = query
            && !encoded(q, query_char)
        {
            return None;
        }
        let mut target = if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        };
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        Some(Self {
            signed: signed.to_owned(),
            https,
            userinfo: userinfo.map(str::to_owned),
            host: host.to_owned(),
            port,
            target,
            fragment: fragment.map(str::to_owned),
        })
    }

    /// The `Host` header: the host and port exactly as configured (case kept, no userinfo).
    pub(crate) fn host_header(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The host and port to connect to (brackets of an IPv6 literal removed, the scheme's
    /// default port when none is given).
    pub(crate) fn connect_to(&self) -> (String, u16) {
        let host = self
            .host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host);
        let default = if self.https { 443 } else { 80 };
        (host.to_owned(), self.port.unwrap_or(default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_byte_of_the_configured_url() {
        let raw = "HTTP://Example.COM:8080/a/b%2F'!*()?x='y'&z=%41+b#ct=1000&rc=3";
        let u = CallbackUrl::parse(raw).unwrap();
        assert_eq!(
            u.signed,
            "HTTP://Example.COM:8080/a/b%2F'!*()?x='y'&z=%41+b"
        );
        assert_eq!(u.host_header(), "Example.COM:8080");
        assert_eq!(u.target, "/a/b%2F'!*()?x='y'&z=%41+b");
        assert_eq!(u.fragment.as_deref(), Some("ct=1000&rc=3"));
        assert_eq!(u.connect_to(), ("Example.COM".to_owned(), 8080));
        assert!(!u.https);
    }

    #[test]
    fn bare_hosts_ipv6_and_userinfo() {
        // The spec's own example StatusCallback has no path.
        let u = CallbackUrl::parse("https://example.com").unwrap();
        assert_eq!(
            (u.signed.as_str(), u.target.as_str()),
            ("https://example.com", "/")
        );
        assert_eq!(u.connect_to(), ("example.com".to_owned(), 443));
        let u = CallbackUrl::parse("http://[::1]:9000?q").unwrap();
        assert_eq!(u.connect_to(), ("::1".to_owned(), 9000));
        assert_eq!(u.target, "/?q");
        let u = CallbackUrl::parse("http://us%40r:p%3Ass@h:1/").unwrap();
        assert_eq!(u.userinfo.as_deref(), Some("us%40r:p%3Ass"));
        assert_eq!(u.host_header(), "h:1");
        let debug = format!("{u:?}");
        assert!(
            !debug.contains("p%3Ass") && debug.contains("[redacted]@h:1"),
            "{debug}"
        );
        assert!(CallbackUrl::parse("http://h:/x").is_some_and(|u| u.port.is_none()));
    }

    #[test]
    fn refuses_what_twilio_answers_21609() {
        for bad in [
            "",
            "not a url",
            "/relative",
            "ftp://example.com/cb",
            "https://bad_host.example.com/cb",
            "http:///nohost",
            "http://h/a b",
            "http://h/%zz",
            "http://h/%4",
            "http://h/caf\u{e9}",
            "http://h/x?a=\"q\"",
            "http://h/x?a=<b>",
            "http://h/x#frag ment",
            "http://h:99999/",
            "http://h:8x/",
            "http://[::1/",
            "http://[]/",
            "http://h/{x}",
            "http://h/x\\y",
        ] {
            assert!(CallbackUrl::parse(bad).is_none(), "{bad:?}");
        }
        let long = format!("http://h/{}", "a".repeat(MAX_LEN));
        assert!(CallbackUrl::parse(&long).is_none());
        let edge = format!("http://h/{}", "a".repeat(MAX_LEN - 9));
        assert_eq!(edge.len(), MAX_LEN);
        assert!(CallbackUrl::parse(&edge).is_some());
    }
}
