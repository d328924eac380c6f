//! The `X-Twilio-Webhooks-Signature-Settings` header, read strictly in Twilio's one format.

use super::{Algorithm, SignatureError};

/// Longest header value accepted; Twilio's is a few dozen bytes.
const MAX_LEN: usize = 1024;

/// Reads `key=<id>,algorithm=HMAC_SHA256`, exactly as Twilio sends it (surrounding whitespace
/// aside): the key id and the algorithm. Another layout, spelling or casing, another item, or an
/// id that is not an HTTP token is [`SignatureError::InvalidSettings`]; another algorithm is
/// [`SignatureError::UnsupportedAlgorithm`].
pub(crate) fn parse(raw: &[u8]) -> Result<(&str, Algorithm), SignatureError> {
    let invalid = |reason| SignatureError::InvalidSettings { reason };
    if raw.len() > MAX_LEN {
        return Err(invalid("too long"));
    }
    let text = std::str::from_utf8(raw.trim_ascii()).map_err(|_| invalid("not ascii"))?;
    let (key, algorithm) = text
        .strip_prefix("key=")
        .and_then(|rest| rest.split_once(",algorithm="))
        .ok_or(invalid("not key=<id>,algorithm=<name>"))?;
    // An HTTP token (RFC 9110): no quotes, separators or spaces.
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if key.is_empty() || !key.bytes().all(tchar) {
        return Err(invalid("key id is not a token"));
    }
    match algorithm {
        "HMAC_SHA256" => Ok((key, Algorithm::HmacSha256)),
        _ if algorithm.contains(',') => Err(invalid("more than two items")),
        _ => Err(SignatureError::UnsupportedAlgorithm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<(&str, Algorithm), SignatureError> {
        super::parse(s.as_bytes())
    }

    fn invalid(s: &str) -> bool {
        matches!(parse(s), Err(SignatureError::InvalidSettings { .. }))
    }

    #[test]
    fn twilio_form() {
        let want = Ok(("sk-2026", Algorithm::HmacSha256));
        assert_eq!(parse("key=sk-2026,algorithm=HMAC_SHA256"), want);
        assert_eq!(parse(" key=sk-2026,algorithm=HMAC_SHA256\t"), want);
    }

    #[test]
    fn other_spellings_and_layouts_are_rejected() {
        for other in [
            "",
            "garbage",
            "algorithm=HMAC_SHA256,key=k1",
            "key=k1",
            "algorithm=HMAC_SHA256",
            "Key=k1,algorithm=HMAC_SHA256",
            "key=k1, algorithm=HMAC_SHA256",
            "key=k1;algorithm=HMAC_SHA256",
            "key=\"k1\",algorithm=HMAC_SHA256",
            "key=,algorithm=HMAC_SHA256",
            "key=k 1,algorithm=HMAC_SHA256",
            "key=k1,version=2,algorithm=HMAC_SHA256",
            "key=k1,algorithm=HMAC_SHA256,key=k2",
        ] {
            assert!(invalid(other), "{other:?}");
        }
        assert!(invalid(&format!(
            "key={},algorithm=HMAC_SHA256",
            "a".repeat(MAX_LEN)
        )));
        assert!(matches!(
            super::parse(b"key=\xff,algorithm=HMAC_SHA256"),
            Err(SignatureError::InvalidSettings { .. })
        ));
        for algorithm in [
            "hmac-sha256",
            "HmacSHA256",
            "SHA256",
            "HMAC_SHA1",
            "HMAC_SHA512",
            "",
        ] {
            assert_eq!(
                parse(&format!("key=k1,algorithm={algorithm}")),
                Err(SignatureError::UnsupportedAlgorithm),
                "{algorithm:?}"
            );
        }
    }
}
