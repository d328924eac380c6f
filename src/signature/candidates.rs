//! URL candidates: the port toggled and the opt-in variants, cut from the URL as given into
//! borrowed pieces (never parsed into a model), so the host's case, the path and the query's
//! encoding and order stay exactly as given.

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
pub struct Stripped(u8);

pub(crate) const CREDENTIALS: u8 = 1;
pub(crate) const TRAILING_SLASH: u8 = 2;
pub(crate) const FRAGMENT: u8 = 4;

impl Stripped {
    pub(crate) const NONE: Self = Self(0);

    /// With `bit` set or cleared.
    pub(crate) fn with(self, bit: u8, on: bool) -> Self {
        Self(if on { self.0 | bit } else { self.0 & !bit })
    }

    /// `user:pass@` was removed from the authority.
    pub fn credentials(self) -> bool {
        self.0 & CREDENTIALS != 0
    }

    /// The lone `/` path of a bare host was removed (`https://host/` → `https://host`).
    pub fn trailing_slash(self) -> bool {
        self.0 & TRAILING_SLASH != 0
    }

    /// The `#fragment` was removed.
    pub fn fragment(self) -> bool {
        self.0 & FRAGMENT != 0
    }
}

/// Which form of the URL produced the matching signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UrlCandidate {
    /// The URL exactly as given.
    AsGiven,
    /// The URL with the scheme's default port added (`:443` for https and wss, `:80` for http
    /// and ws, `:21` for ftp).
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

/// A candidate URL as consecutive pieces: scheme with `://`, `user:pass@`, host, `:port`, path,
/// `?query`, `#fragment` (any of them empty).
pub(crate) type Pieces<'a> = [&'a str; 7];

/// The candidates after the URL as given, in the order they are tried: the port toggled, then
/// each enabled variant that changes this URL (fewest changes first), with its port as given
/// and toggled. None when the URL has no recognisable `scheme://authority`.
pub(crate) fn after_as_given(
    url: &str,
    variants: Stripped,
) -> impl Iterator<Item = (Pieces<'_>, UrlCandidate)> {
    const STRIPS: [(usize, u8); 3] = [(1, CREDENTIALS), (4, TRAILING_SLASH), (6, FRAGMENT)];
    let parts = parse(url);
    // The variants that change this URL (stripping something absent would repeat a candidate).
    let usable = parts.map_or(0, |p| {
        let applies = [!p[1].is_empty(), p[4] == "/", !p[6].is_empty()];
        let bits = STRIPS.iter().zip(applies).filter(|(_, applies)| *applies);
        bits.fold(0, |all, ((_, bit), _)| all | bit) & variants.0
    });
    let masks = [1, 2, 4, 1 | 2, 1 | 4, 2 | 4, 1 | 2 | 4].into_iter();
    let masks = masks.filter(move |mask| usable & mask == *mask);
    let steps = std::iter::once((0, true)).chain(masks.flat_map(|m| [(m, false), (m, true)]));
    steps.filter_map(move |(mask, toggle)| {
        let mut pieces = parts?;
        let (port, piece) = match (toggle, pieces[3]) {
            (false, given) => (PortChange::Unchanged, given),
            (true, "") => (PortChange::Added, default_port(pieces[0])?),
            (true, _) => (PortChange::Removed, ""),
        };
        pieces[3] = piece;
        for (at, _) in STRIPS.iter().filter(|(_, bit)| mask & bit != 0) {
            pieces[*at] = "";
        }
        let candidate = match (mask, port) {
            (0, PortChange::Added) => UrlCandidate::PortAdded,
            (0, _) => UrlCandidate::PortRemoved,
            (bits, port) => UrlCandidate::Variant {
                stripped: Stripped(bits),
                port,
            },
        };
        Some((pieces, candidate))
    })
}

/// The documented default port of a scheme Twilio can call, compared without regard to case:
/// the ports RFC 9110 (http, https), RFC 6455 (ws, wss) and RFC 1738 (ftp) give, which the URL
/// types of twilio-ruby and twilio-csharp use when they add the port.
fn default_port(scheme: &str) -> Option<&'static str> {
    let ports = [
        ("https", ":443"),
        ("http", ":80"),
        ("wss", ":443"),
        ("ws", ":80"),
        ("ftp", ":21"),
    ];
    let scheme = scheme.strip_suffix("://")?;
    let known = ports
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(scheme));
    known.map(|(_, port)| port)
}

/// Cuts `url` into its pieces; `None` when it has no recognisable `scheme://authority` (then
/// the URL as given is the only candidate).
fn parse(url: &str) -> Option<Pieces<'_>> {
    let find = |s: &str, set: &[u8]| s.bytes().position(|b| set.contains(&b)).unwrap_or(s.len());
    let (name, _) = url.split_once("://")?;
    let mut chars = name.bytes();
    let scheme_ok = chars.next().is_some_and(|b| b.is_ascii_alphabetic())
        && chars.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let (scheme, rest) = url.split_at_checked(name.len() + 3).filter(|_| scheme_ok)?;
    let (authority, rest) = rest.split_at_checked(find(rest, b"/?#"))?;
    let (path, rest) = rest.split_at_checked(find(rest, b"?#"))?;
    let (query, fragment) = rest.split_at_checked(find(rest, b"#"))?;
    let (userinfo, host_port) = authority.split_at(authority.rfind('@').map_or(0, |at| at + 1));
    let split = match host_port.strip_prefix('[') {
        Some(v6) => v6.find(']')? + 2,
        None => host_port.rfind(':').unwrap_or(host_port.len()),
    };
    let (host, port) = host_port.split_at_checked(split)?;
    let digits = |port: &str| port.bytes().all(|b| b.is_ascii_digit());
    let port_ok = port.is_empty() || port.strip_prefix(':').is_some_and(digits);
    let host_ok = !host.is_empty() && (host.starts_with('[') || !host.contains(':'));
    (port_ok && host_ok).then_some([scheme, userinfo, host, port, path, query, fragment])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(url: &str, variants: Stripped) -> Vec<(String, UrlCandidate)> {
        std::iter::once((url.to_owned(), UrlCandidate::AsGiven))
            .chain(after_as_given(url, variants).map(|(p, k)| (p.concat(), k)))
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
    fn documented_default_ports_of_other_schemes() {
        assert_eq!(
            urls("wss://h/media"),
            ["wss://h/media", "wss://h:443/media"]
        );
        assert_eq!(urls("WS://h/media"), ["WS://h/media", "WS://h:80/media"]);
        assert_eq!(urls("ftp://h/x"), ["ftp://h/x", "ftp://h:21/x"]);
        assert_eq!(urls("ftp://h:21/x"), ["ftp://h:21/x", "ftp://h/x"]);
        // No documented default: nothing added, an explicit port still removed.
        assert_eq!(urls("gopher://h/x"), ["gopher://h/x"]);
        assert_eq!(urls("gopher://h:70/x"), ["gopher://h:70/x", "gopher://h/x"]);
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
            "a b://h/x",
        ] {
            assert_eq!(urls(url), [url], "{url}");
        }
    }

    #[test]
    fn empty_port_is_removed() {
        assert_eq!(urls("https://h:/x"), ["https://h:/x", "https://h/x"]);
    }

    #[test]
    fn variants_are_off_by_default_and_only_where_they_apply() {
        let every = Stripped::NONE
            .with(CREDENTIALS, true)
            .with(TRAILING_SLASH, true)
            .with(FRAGMENT, true);
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
                stripped: Stripped::NONE.with(TRAILING_SLASH, true),
                port: PortChange::Added
            }
        );
        // Only the enabled variant.
        let only_fragment = Stripped::NONE.with(FRAGMENT, true);
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
        // An unknown scheme without a port: the variants, never a port added.
        assert_eq!(
            urls_with("gopher://h/#f", only_fragment),
            ["gopher://h/#f", "gopher://h/"]
        );
        assert_eq!(
            Stripped::NONE.with(FRAGMENT, true).with(FRAGMENT, false),
            Stripped::NONE
        );
    }

    fn urls_with(url: &str, variants: Stripped) -> Vec<String> {
        all(url, variants).into_iter().map(|(u, _)| u).collect()
    }

    #[test]
    fn trailing_slash_only_for_a_bare_host() {
        let slash = Stripped::NONE.with(TRAILING_SLASH, true);
        assert_eq!(all("https://h/a/", slash).len(), 2);
        let got = all("https://h/?q=1", slash);
        assert_eq!(got[2].0, "https://h?q=1");
    }
}
