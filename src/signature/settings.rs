//! The `X-Twilio-Webhooks-Signature-Settings` header (`key=<id>,algorithm=HMAC_SHA256`), parsed leniently.

use super::{Algorithm, SignatureError};

/// Longest header value accepted; Twilio's is a few dozen bytes.
const MAX_LEN: usize = 1024;

/// What the settings header announces; every field is optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Settings<'a> {
    pub(crate) algorithm: Option<Algorithm>,
    pub(crate) key_id: Option<&'a str>,
}

impl<'a> Settings<'a> {
    /// Parses `name=value` items separated by `,` or `;`, with optional spaces and double quotes.
    /// Names are case-insensitive and unknown names are ignored; an item repeated with another
    /// value, a value that is not visible ASCII, or an unknown algorithm is an error.
    pub(crate) fn parse(raw: &'a [u8]) -> Result<Self, SignatureError> {
        let invalid = |reason| SignatureError::InvalidSettings { reason };
        if raw.len() > MAX_LEN {
            return Err(invalid("too long"));
        }
        if !raw
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return Err(invalid("not visible ascii"));
        }
        let text = std::str::from_utf8(raw).map_err(|_| invalid("not visible ascii"))?;
        let mut algorithm: Option<&str> = None;
        let mut key_id: Option<&str> = None;
        for item in text.split([',', ';']) {
            let item = item.trim_matches([' ', '\t']);
            if item.is_empty() {
                continue;
            }
            let Some((name, value)) = item.split_once('=') else {
                continue;
            };
            let name = name.trim_matches([' ', '\t']);
            let value = unquote(value.trim_matches([' ', '\t']));
            let slot = if name.eq_ignore_ascii_case("algorithm") {
                &mut algorithm
            } else if name.eq_ignore_ascii_case("key") {
                &mut key_id
            } else {
                continue;
            };
            match slot {
                Some(previous) if *previous != value => return Err(invalid("repeated item")),
                _ => *slot = Some(value),
            }
        }
        let algorithm = match algorithm {
            None | Some("") => None,
            Some(name) => Some(parse_algorithm(name).ok_or(SignatureError::UnsupportedAlgorithm)?),
        };
        Ok(Self {
            algorithm,
            key_id: key_id.filter(|id| !id.is_empty()),
        })
    }
}

/// Removes one pair of surrounding double quotes.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// `HMAC_SHA256`, `hmac-sha256`, `HmacSHA256`, `SHA256` (and the same for SHA-1).
fn parse_algorithm(name: &str) -> Option<Algorithm> {
    let mut folded = [0u8; 16];
    let mut len = 0;
    for b in name.bytes().filter(|b| *b != b'_' && *b != b'-') {
        *folded.get_mut(len)? = b.to_ascii_uppercase();
        len += 1;
    }
    match folded.get(..len)? {
        b"HMACSHA256" | b"SHA256" => Some(Algorithm::HmacSha256),
        b"HMACSHA1" | b"SHA1" => Some(Algorithm::HmacSha1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Settings<'_>, SignatureError> {
        Settings::parse(s.as_bytes())
    }

    #[test]
    fn twilio_form() {
        assert_eq!(
            parse("key=sk-2026,algorithm=HMAC_SHA256"),
            Ok(Settings {
                algorithm: Some(Algorithm::HmacSha256),
                key_id: Some("sk-2026"),
            })
        );
    }

    #[test]
    fn lenient_spelling() {
        let want = Ok(Settings {
            algorithm: Some(Algorithm::HmacSha256),
            key_id: Some("k1"),
        });
        assert_eq!(parse(" Algorithm = \"hmac-sha256\" ; KEY=\"k1\" "), want);
        assert_eq!(parse("algorithm=HmacSHA256,,key=k1,version=2"), want);
        assert_eq!(parse("key=k1, algorithm=sha256, key=k1"), want);
        assert_eq!(
            parse("algorithm=HMAC_SHA1"),
            Ok(Settings {
                algorithm: Some(Algorithm::HmacSha1),
                key_id: None
            })
        );
        assert_eq!(parse(""), Ok(Settings::default()));
        assert_eq!(parse("garbage"), Ok(Settings::default()));
        assert_eq!(parse("key=,algorithm="), Ok(Settings::default()));
    }

    #[test]
    fn rejects_what_it_cannot_trust() {
        assert_eq!(
            parse("algorithm=HMAC_MD5"),
            Err(SignatureError::UnsupportedAlgorithm)
        );
        assert_eq!(
            parse("algorithm=HMAC_SHA256_WITH_A_VERY_LONG_NAME"),
            Err(SignatureError::UnsupportedAlgorithm)
        );
        assert!(matches!(
            parse("algorithm=HMAC_SHA256,algorithm=HMAC_SHA1"),
            Err(SignatureError::InvalidSettings { .. })
        ));
        assert!(matches!(
            Settings::parse(b"key=a\r\nx: y"),
            Err(SignatureError::InvalidSettings { .. })
        ));
        assert!(matches!(
            Settings::parse(&[b'k', 0xff]),
            Err(SignatureError::InvalidSettings { .. })
        ));
        let long = format!("key={}", "a".repeat(MAX_LEN));
        assert!(matches!(
            parse(&long),
            Err(SignatureError::InvalidSettings { .. })
        ));
    }
}
