//! URL candidates: the URL as given, its port toggled, and the opt-in variants, by string surgery.
//!
//! Nothing here parses the URL into a model: the URL is cut into borrowed pieces around its
//! authority and candidates are sequences of those pieces, so the host's case, the path and the
//! query's encoding and order stay exactly as given.

/// How a candidate's port differs from the URL given to the validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PortChange {
    /// The port is as given (present or absent).
    Unchanged,
    /// The scheme's default port (`:443` for https, `:80` for http) was added.
    Added,
    /// The port that the URL carried was removed.
    Removed,
}

/// Which opt-in variants a candidate URL applies (see the builder's `try_without_*` methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stripped {
    bits: u8,
}

const CREDENTIALS: u8 = 1;
const TRAILING_SLASH: u8 = 2;
const FRAGMENT: u8 = 4;

/// Variant combinations, fewest changes first.
const VARIANT_ORDER: [u8; 7] = [
    CREDENTIALS,
    TRAILING_SLASH,
    FRAGMENT,
    CREDENTIALS | TRAILING_SLASH,
    CREDENTIALS | FRAGMENT,
    TRAILING_SLASH | FRAGMENT,
    CREDENTIALS | TRAILING_SLASH | FRAGMENT,
];

impl Stripped {
    pub(crate) const NONE: Self = Self { bits: 0 };

    pub(crate) fn with(self, bit: u8, on: bool) -> Self {
        if on {
            Self {
                bits: self.bits | bit,
            }
        } else {
            Self {
                bits: self.bits & !bit,
            }
        }
    }

    pub(crate) fn with_credentials(self, on: bool) -> Self {
        self.with(CREDENTIALS, on)
    }

    pub(crate) fn with_trailing_slash(self, on: bool) -> Self {
        self.with(TRAILING_SLASH, on)
    }

    pub(crate) fn with_fragment(self, on: bool) -> Self {
        self.with(FRAGMENT, on)
    }

    /// `user:pass@` was removed from the authority.
    pub fn credentials(self) -> bool {
        self.bits & CREDENTIALS != 0
    }

    /// The lone `/` path of a bare host was removed (`https://host/` → `https://host`).
    pub fn trailing_slash(self) -> bool {
        self.bits & TRAILING_SLASH != 0
    }

    /// The `#fragment` was removed.
    pub fn fragment(self) -> bool {
        self.bits & FRAGMENT != 0
    }

    fn contains(self, other: u8) -> bool {
        self.bits & other == other
    }
}

/// Which form of the URL produced the matching signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UrlCandidate {
    /// The URL exactly as given.
    AsGiven,
    /// The URL with the scheme's default port added (`:443` for https, `:80` for http).
    PortAdded,
    /// The URL with its port removed (a non-standard port too).
    PortRemoved,
    /// An opt-in variant, possibly with its port toggled as well.
    Variant {
        /// What was stripped from the URL.
        stripped: Stripped,
        /// How the port was changed on top of that.
        port: PortChange,
    },
}

/// A URL cut around its authority; every piece is a slice of the original string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UrlParts<'a> {
    /// `https://`, the separator included.
    scheme: &'a str,
    /// `user:pass@`, the `@` included, or empty.
    userinfo: &'a str,
    /// `example.com` or `[::1]`.
    host: &'a str,
    /// `:8443`, the `:` included, or empty.
    port: &'a str,
    /// `/path`, or empty.
    path: &'a str,
    /// `?a=1`, the `?` included, or empty.
    query: &'a str,
    /// `#f`, the `#` included, or empty.
    fragment: &'a str,
}

impl<'a> UrlParts<'a> {
    /// Splits `url`; `None` when it has no recognisable `scheme://authority` (then only the URL
    /// as given is a candidate).
    pub(crate) fn parse(url: &'a str) -> Option<Self> {
        // Byte scans: every delimiter is ASCII, so each index found is a char boundary.
        let bytes = url.as_bytes();
        let scheme_len = bytes
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.'))?;
        let starts_alpha = bytes.first().is_some_and(u8::is_ascii_alphabetic);
        if !starts_alpha || bytes.get(scheme_len..scheme_len + 3) != Some(b"://") {
            return None;
        }
        let (scheme, rest) = url.split_at_checked(scheme_len + 3)?;
        let auth_end = position(rest, |b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
        let (authority, after) = rest.split_at_checked(auth_end)?;
        let (before_fragment, fragment) =
            after.split_at_checked(position(after, |b| b == b'#').unwrap_or(after.len()))?;
        let (path, query) = before_fragment.split_at_checked(
            position(before_fragment, |b| b == b'?').unwrap_or(before_fragment.len()),
        )?;
        let (userinfo, host_port) = match authority.bytes().rposition(|b| b == b'@') {
            Some(at) => authority.split_at_checked(at + 1)?,
            None => ("", authority),
        };
        let (host, port) = split_host_port(host_port)?;
        Some(Self {
            scheme,
            userinfo,
            host,
            port,
            path,
            query,
            fragment,
        })
    }

    /// `:443` or `:80` for the scheme, compared without regard to case.
    fn default_port(&self) -> Option<&'static str> {
        let name = self.scheme.strip_suffix("://").unwrap_or(self.scheme);
        if name.eq_ignore_ascii_case("https") {
            Some(":443")
        } else if name.eq_ignore_ascii_case("http") {
            Some(":80")
        } else {
            None
        }
    }

    /// Whether a variant can change this URL (stripping something absent would repeat a candidate).
    fn applicable(&self) -> Stripped {
        Stripped::NONE
            .with_credentials(!self.userinfo.is_empty())
            .with_trailing_slash(self.path == "/")
            .with_fragment(!self.fragment.is_empty())
    }

    /// The pieces of this URL with `stripped` removed and its port toggled or not.
    fn pieces(&self, stripped: Stripped, toggle: bool) -> Option<(Pieces<'a>, PortChange)> {
        let (port, change) = match (toggle, self.port.is_empty()) {
            (false, _) => (self.port, PortChange::Unchanged),
            (true, false) => ("", PortChange::Removed),
            (true, true) => (self.default_port()?, PortChange::Added),
        };
        let keep = |piece: &'a str, bit: u8| if stripped.contains(bit) { "" } else { piece };
        let pieces = [
            self.scheme,
            keep(self.userinfo, CREDENTIALS),
            self.host,
            port,
            keep(self.path, TRAILING_SLASH),
            self.query,
            keep(self.fragment, FRAGMENT),
        ];
        Some((Pieces(pieces), change))
    }
}

/// Splits `host[:port]` or `[v6][:port]`; the port keeps its `:` and must be digits.
fn split_host_port(host_port: &str) -> Option<(&str, &str)> {
    let split = if host_port.starts_with('[') {
        position(host_port, |b| b == b']')? + 1
    } else {
        host_port
            .bytes()
            .rposition(|b| b == b':')
            .unwrap_or(host_port.len())
    };
    let (host, port) = host_port.split_at_checked(split)?;
    let port_ok = match port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => port.is_empty(),
    };
    let host_ok = !host.is_empty() && (host.starts_with('[') || !host.contains(':'));
    (port_ok && host_ok).then_some((host, port))
}

/// The index of the first byte of `s` matching `pred`.
fn position(s: &str, pred: impl Fn(u8) -> bool) -> Option<usize> {
    s.bytes().position(pred)
}

/// A candidate URL as up to seven consecutive pieces (empty pieces are skipped when hashing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pieces<'a>([&'a str; 7]);

impl<'a> Pieces<'a> {
    fn whole(url: &'a str) -> Self {
        Self([url, "", "", "", "", "", ""])
    }

    /// The non-empty pieces, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a str> + Clone + '_ {
        self.0.iter().copied().filter(|p| !p.is_empty())
    }

    /// The candidate as one string (tests and diagnostics only; validation never builds it).
    #[cfg(test)]
    pub(crate) fn to_url(self) -> String {
        self.0.concat()
    }
}

/// The candidates for one URL in the order they are tried; each is computed only when asked for.
#[derive(Debug, Clone)]
pub(crate) struct Candidates<'a> {
    url: &'a str,
    variants: Stripped,
    /// `None` until the URL as given has been tried; then the parsed URL, if it parses.
    parts: Option<Option<UrlParts<'a>>>,
    step: usize,
}

impl<'a> Candidates<'a> {
    /// Candidates for `url` with the opt-in `variants` enabled.
    pub(crate) fn new(url: &'a str, variants: Stripped) -> Self {
        Self {
            url,
            variants,
            parts: None,
            step: 0,
        }
    }
}

impl<'a> Iterator for Candidates<'a> {
    type Item = (Pieces<'a>, UrlCandidate);

    fn next(&mut self) -> Option<Self::Item> {
        if self.step == 0 {
            self.step = 1;
            return Some((Pieces::whole(self.url), UrlCandidate::AsGiven));
        }
        if self.step > 1 && self.variants == Stripped::NONE {
            return None;
        }
        let url = self.url;
        let parts = self
            .parts
            .get_or_insert_with(|| UrlParts::parse(url))
            .as_ref()?;
        // Step 1 is the port toggle; then two steps (port as is, toggled) per variant mask.
        while self.step < 2 + 2 * VARIANT_ORDER.len() {
            let step = self.step;
            self.step += 1;
            if step == 1 {
                if let Some((pieces, change)) = parts.pieces(Stripped::NONE, true) {
                    let kind = match change {
                        PortChange::Added => UrlCandidate::PortAdded,
                        _ => UrlCandidate::PortRemoved,
                    };
                    return Some((pieces, kind));
                }
                continue;
            }
            let Some(&mask) = VARIANT_ORDER.get((step - 2) / 2) else {
                break;
            };
            let usable = Stripped {
                bits: self.variants.bits & parts.applicable().bits,
            };
            if !usable.contains(mask) {
                continue;
            }
            let stripped = Stripped { bits: mask };
            if let Some((pieces, port)) = parts.pieces(stripped, step % 2 == 1) {
                return Some((pieces, UrlCandidate::Variant { stripped, port }));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(url: &str, variants: Stripped) -> Vec<(String, UrlCandidate)> {
        Candidates::new(url, variants)
            .map(|(p, k)| (p.to_url(), k))
            .collect()
    }

    fn urls(url: &str) -> Vec<String> {
        all(url, Stripped::NONE)
            .into_iter()
            .map(|(u, _)| u)
            .collect()
    }

    #[test]
    fn https_without_port_gets_443() {
        assert_eq!(
            all("https://Example.COM/a/b?z=1&a=%2b#f", Stripped::NONE),
            vec![
                (
                    "https://Example.COM/a/b?z=1&a=%2b#f".to_owned(),
                    UrlCandidate::AsGiven
                ),
                (
                    "https://Example.COM:443/a/b?z=1&a=%2b#f".to_owned(),
                    UrlCandidate::PortAdded
                ),
            ]
        );
    }

    #[test]
    fn http_without_port_gets_80_and_scheme_case_is_ignored() {
        assert_eq!(urls("http://h/x"), ["http://h/x", "http://h:80/x"]);
        assert_eq!(urls("HTTPS://h"), ["HTTPS://h", "HTTPS://h:443"]);
    }

    #[test]
    fn any_port_is_removed() {
        assert_eq!(urls("https://h:443/x"), ["https://h:443/x", "https://h/x"]);
        assert_eq!(
            urls("https://h:8443/x"),
            ["https://h:8443/x", "https://h/x"]
        );
        assert_eq!(urls("http://h:80?q=1"), ["http://h:80?q=1", "http://h?q=1"]);
        let removed = all("http://h:8080/", Stripped::NONE);
        assert_eq!(removed[1].1, UrlCandidate::PortRemoved);
    }

    #[test]
    fn ipv6_literals() {
        assert_eq!(
            urls("https://[::1]:8443/cb"),
            ["https://[::1]:8443/cb", "https://[::1]/cb"]
        );
        assert_eq!(
            urls("https://[2001:db8::1]/cb"),
            ["https://[2001:db8::1]/cb", "https://[2001:db8::1]:443/cb"]
        );
    }

    #[test]
    fn credentials_colon_is_not_a_port() {
        assert_eq!(
            urls("https://user:pa:ss@h/cb"),
            ["https://user:pa:ss@h/cb", "https://user:pa:ss@h:443/cb"]
        );
        assert_eq!(
            urls("https://user:pass@h:8443/cb"),
            ["https://user:pass@h:8443/cb", "https://user:pass@h/cb"]
        );
        assert_eq!(
            urls("https://u:p@[::1]:1/"),
            ["https://u:p@[::1]:1/", "https://u:p@[::1]/"]
        );
    }

    #[test]
    fn colons_and_at_signs_after_the_authority_are_left_alone() {
        assert_eq!(
            urls("https://h/p:80?x=a@b:9#c:1"),
            [
                "https://h/p:80?x=a@b:9#c:1",
                "https://h:443/p:80?x=a@b:9#c:1"
            ]
        );
        assert_eq!(
            urls("https://h?u=1"),
            ["https://h?u=1", "https://h:443?u=1"]
        );
        assert_eq!(urls("https://h#f"), ["https://h#f", "https://h:443#f"]);
    }

    #[test]
    fn unparseable_urls_have_only_the_url_as_given() {
        for url in [
            "",
            "not a url",
            "/relative/path",
            "://h/x",
            "1http://h/x",
            "https://h:8x/",
            "https://a:b:80/",
            "https://:80/",
            "https:///x",
            "https://[::1/x",
            "https://[::1]x/",
        ] {
            assert_eq!(urls(url), [url], "{url}");
        }
    }

    #[test]
    fn unknown_scheme_gets_no_default_port_but_loses_an_explicit_one() {
        assert_eq!(urls("ftp://h/x"), ["ftp://h/x"]);
        assert_eq!(urls("ftp://h:21/x"), ["ftp://h:21/x", "ftp://h/x"]);
    }

    #[test]
    fn empty_port_is_removed() {
        assert_eq!(urls("https://h:/x"), ["https://h:/x", "https://h/x"]);
    }

    #[test]
    fn variants_are_off_by_default_and_only_where_they_apply() {
        let every = Stripped::NONE
            .with_credentials(true)
            .with_trailing_slash(true)
            .with_fragment(true);
        // Nothing to strip: only the two default candidates.
        assert_eq!(all("https://h/x", every).len(), 2);
        let got = all("https://u:p@h/#ct=1", every);
        let strings: Vec<&str> = got.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(
            strings,
            [
                "https://u:p@h/#ct=1",
                "https://u:p@h:443/#ct=1",
                "https://h/#ct=1",
                "https://h:443/#ct=1",
                "https://u:p@h#ct=1",
                "https://u:p@h:443#ct=1",
                "https://u:p@h/",
                "https://u:p@h:443/",
                "https://h#ct=1",
                "https://h:443#ct=1",
                "https://h/",
                "https://h:443/",
                "https://u:p@h",
                "https://u:p@h:443",
                "https://h",
                "https://h:443",
            ]
        );
        assert_eq!(
            got[5].1,
            UrlCandidate::Variant {
                stripped: Stripped::NONE.with_trailing_slash(true),
                port: PortChange::Added
            }
        );
        // Only the enabled variant.
        let only_fragment = Stripped::NONE.with_fragment(true);
        let strings: Vec<String> = all("https://u:p@h:8443/#x", only_fragment)
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        assert_eq!(
            strings,
            [
                "https://u:p@h:8443/#x",
                "https://u:p@h/#x",
                "https://u:p@h:8443/",
                "https://u:p@h/"
            ]
        );
    }

    #[test]
    fn trailing_slash_only_for_a_bare_host() {
        let slash = Stripped::NONE.with_trailing_slash(true);
        assert_eq!(all("https://h/a/", slash).len(), 2);
        let got = all("https://h/?q=1", slash);
        assert_eq!(got[2].0, "https://h?q=1");
    }

    #[test]
    fn first_candidate_does_not_parse() {
        let mut c = Candidates::new("https://h/x", Stripped::NONE);
        let _ = c.next();
        assert!(c.parts.is_none());
        let _ = c.next();
        assert!(c.parts.is_some());
    }
}
