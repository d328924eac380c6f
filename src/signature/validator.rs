//! `SignatureValidator`: chooses the mode, tries every URL candidate with every key, checks `bodySHA256`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use http::{HeaderMap, HeaderName, Method};

use super::candidates::{Candidates, Stripped, UrlCandidate};
use super::form;
use super::keys::{Key, KeySecret, KeyedMac};
use super::settings::Settings;
use super::{Algorithm, ConfigError, SETTINGS_HEADER, SIGNATURE_HEADER, SignatureError};
use crate::secret::AuthToken;

const SIGNATURE: HeaderName = HeaderName::from_static(SIGNATURE_HEADER);
const SETTINGS: HeaderName = HeaderName::from_static(SETTINGS_HEADER);

/// Which part of the request the signature covers, chosen from the method and the content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningMode {
    /// A form POST (`application/x-www-form-urlencoded`): the URL, then every body pair.
    Form,
    /// A `GET` or `HEAD` without a body: the URL alone (its query holds the parameters).
    UrlOnly,
    /// Any other request (a JSON body, a form without its content type, a `GET` carrying a body):
    /// the URL alone, whose `bodySHA256` query value must be the lowercase hex SHA-256 of the body.
    BodyHash,
}

impl SigningMode {
    /// The mode for a request; never decided by whether the URL contains `bodySHA256`.
    pub fn of(method: &Method, content_type: Option<&[u8]>, body: &[u8]) -> Self {
        let bodiless = *method == Method::GET || *method == Method::HEAD;
        if bodiless {
            if body.is_empty() {
                Self::UrlOnly
            } else {
                Self::BodyHash
            }
        } else if content_type.is_some_and(is_form) {
            Self::Form
        } else {
            Self::BodyHash
        }
    }
}

/// `application/x-www-form-urlencoded`, any case, parameters (`; charset=utf-8`) ignored.
fn is_form(content_type: &[u8]) -> bool {
    const FORM: &[u8] = b"application/x-www-form-urlencoded";
    if content_type == FORM {
        return true;
    }
    let essence = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    essence.eq_ignore_ascii_case(FORM)
}

/// A request to validate, described by its parts (use
/// [`SignatureValidator::validate_http`] when you have an [`http::HeaderMap`]).
#[derive(Clone, Copy)]
pub struct SignedRequest<'a> {
    method: &'a Method,
    url: &'a str,
    body: &'a [u8],
    content_type: Option<&'a [u8]>,
    signature: Option<&'a [u8]>,
    settings: Option<&'a [u8]>,
}

impl<'a> SignedRequest<'a> {
    /// A request with its method, public URL (exactly as Twilio called it) and raw body; no
    /// content type, signature or settings header yet.
    pub fn new(method: &'a Method, url: &'a str, body: &'a [u8]) -> Self {
        Self {
            method,
            url,
            body,
            content_type: None,
            signature: None,
            settings: None,
        }
    }

    /// Sets the `Content-Type` header value.
    #[must_use]
    pub fn content_type<T: AsRef<[u8]> + ?Sized>(mut self, value: &'a T) -> Self {
        self.content_type = Some(value.as_ref());
        self
    }

    /// Sets the `X-Twilio-Signature` header value.
    #[must_use]
    pub fn signature<T: AsRef<[u8]> + ?Sized>(mut self, value: &'a T) -> Self {
        self.signature = Some(value.as_ref());
        self
    }

    /// Sets the `X-Twilio-Webhooks-Signature-Settings` header value.
    #[must_use]
    pub fn settings<T: AsRef<[u8]> + ?Sized>(mut self, value: &'a T) -> Self {
        self.settings = Some(value.as_ref());
        self
    }
}

impl fmt::Debug for SignedRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn text(v: Option<&[u8]>) -> Option<Cow<'_, str>> {
            v.map(String::from_utf8_lossy)
        }
        f.debug_struct("SignedRequest")
            .field("method", self.method)
            .field("url", &self.url)
            .field("body_len", &self.body.len())
            .field("content_type", &text(self.content_type))
            .field("signature", &text(self.signature))
            .field("settings", &text(self.settings))
            .finish()
    }
}

/// A successful validation: which key and which URL candidate produced the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    key_id: Arc<str>,
    candidate: UrlCandidate,
    algorithm: Algorithm,
    mode: SigningMode,
}

impl Verified {
    /// The id of the key that matched (`"primary"` for [`SignatureValidator::new`]).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The form of the URL that matched.
    pub fn candidate(&self) -> UrlCandidate {
        self.candidate
    }

    /// The MAC algorithm of the signature.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// What the signature covered.
    pub fn mode(&self) -> SigningMode {
        self.mode
    }
}

/// Validates Twilio webhook signatures against one or more keys.
///
/// Cheap to clone (the keys are shared); `Debug` shows key ids and algorithms, never key bytes.
/// See the [module documentation](super) for what is checked.
#[derive(Clone)]
pub struct SignatureValidator {
    keys: Arc<[Key]>,
    variants: Stripped,
}

impl fmt::Debug for SignatureValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureValidator")
            .field("keys", &self.keys)
            .field("variants", &self.variants)
            .finish()
    }
}

/// The id given to the key of [`SignatureValidator::new`].
pub const PRIMARY_KEY_ID: &str = "primary";

impl SignatureValidator {
    /// A validator for one auth token (HMAC-SHA1, key id `"primary"`), variants off.
    ///
    /// An empty token is ignored with a warning: that validator rejects every request with
    /// [`SignatureError::NoKeyForAlgorithm`] (use [`builder`](Self::builder) to get an error instead).
    pub fn new(auth_token: AuthToken) -> Self {
        let keys: Vec<Key> = if auth_token.expose().is_empty() {
            tracing::warn!("empty auth token: every webhook signature will be rejected");
            Vec::new()
        } else {
            KeyedMac::new(Algorithm::HmacSha1, auth_token.expose().as_bytes())
                .map(|mac| Key {
                    id: Arc::from(PRIMARY_KEY_ID),
                    mac,
                })
                .into_iter()
                .collect()
        };
        Self {
            keys: keys.into(),
            variants: Stripped::NONE,
        }
    }

    /// A builder for several keys (rotation, sub-accounts, HMAC-SHA256) and the opt-in variants.
    pub fn builder() -> SignatureValidatorBuilder {
        SignatureValidatorBuilder::default()
    }

    /// The ids of the configured keys, in the order they are tried.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| &*k.id)
    }

    /// Validates a request given its method, public URL (exactly as configured in Twilio), headers
    /// and raw body. Reads `X-Twilio-Signature`, `X-Twilio-Webhooks-Signature-Settings` and
    /// `Content-Type` from `headers`.
    ///
    /// # Errors
    /// [`SignatureError`] saying why the request is not authentic; a header repeated with different
    /// values is [`SignatureError::AmbiguousHeaders`].
    pub fn validate_http(
        &self,
        method: &Method,
        url: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Verified, SignatureError> {
        let mut request = SignedRequest::new(method, url, body);
        // One pass over the headers (cheaper than three hashed lookups for a webhook's dozen).
        for (name, value) in headers {
            let (slot, label) = if *name == http::header::CONTENT_TYPE {
                (&mut request.content_type, "content-type")
            } else if *name == SIGNATURE {
                (&mut request.signature, SIGNATURE_HEADER)
            } else if *name == SETTINGS {
                (&mut request.settings, SETTINGS_HEADER)
            } else {
                continue;
            };
            match slot {
                Some(seen) if *seen != value.as_bytes() => {
                    return Err(SignatureError::AmbiguousHeaders { header: label });
                }
                _ => *slot = Some(value.as_bytes()),
            }
        }
        self.validate(&request)
    }

    /// Validates a request described by its parts.
    ///
    /// Checks, in order: the signature header is present and decodes to an HMAC-SHA1 or
    /// HMAC-SHA256 tag (the settings header, when present, names the algorithm and may name the
    /// key); a key of that algorithm is configured; for [`SigningMode::BodyHash`], the URL has a
    /// `bodySHA256`; the tag matches some URL candidate with some key (the URL as given with every
    /// key first, then the port toggled, then the opt-in variants); finally the body's SHA-256.
    ///
    /// # Errors
    /// [`SignatureError`] saying why the request is not authentic.
    pub fn validate(&self, request: &SignedRequest<'_>) -> Result<Verified, SignatureError> {
        let header = request.signature.ok_or(SignatureError::Missing)?;
        let settings = match request.settings {
            Some(raw) => Settings::parse(raw)?,
            None => Settings::default(),
        };
        let mut buf = [0u8; 48];
        let tag = decode_signature(header, &mut buf)?;
        let algorithm = match settings.algorithm {
            Some(a) if a.output_len() == tag.len() => a,
            Some(_) => {
                return Err(SignatureError::Malformed {
                    reason: "wrong length for the announced algorithm",
                });
            }
            None => Algorithm::from_output_len(tag.len()).ok_or(SignatureError::Malformed {
                reason: "wrong length",
            })?,
        };
        let keys = self.select(algorithm, settings.key_id)?;
        let mode = SigningMode::of(request.method, request.content_type, request.body);
        let url = request.url;
        match mode {
            SigningMode::UrlOnly => self.check(keys, url, url.as_bytes(), tag, algorithm, mode),
            SigningMode::BodyHash => {
                if body_sha256_values(url).next().is_none() {
                    return Err(SignatureError::BodyHashMissing);
                }
                let verified = self.check(keys, url, url.as_bytes(), tag, algorithm, mode)?;
                let hex = super::body_sha256_hex(request.body);
                if body_sha256_values(url).all(|v| v.as_bytes() == hex.as_slice()) {
                    Ok(verified)
                } else {
                    Err(SignatureError::BodyHashMismatch)
                }
            }
            SigningMode::Form => form::with_string_to_sign(url.as_bytes(), request.body, |whole| {
                match whole {
                    Some(whole) => self.check(keys, url, whole, tag, algorithm, mode),
                    None => {
                        // Invalid UTF-8 after decoding: form_urlencoded's lossy decoding, as the
                        // callback parser sees it.
                        let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> =
                            form_urlencoded::parse(request.body).collect();
                        pairs.sort_unstable();
                        pairs.dedup();
                        let whole: Vec<u8> = std::iter::once(url.as_bytes())
                            .chain(pairs.iter().flat_map(|(k, v)| [k.as_bytes(), v.as_bytes()]))
                            .flatten()
                            .copied()
                            .collect();
                        self.check(keys, url, &whole, tag, algorithm, mode)
                    }
                }
            }),
        }
    }

    /// The keys to try: those of `algorithm`, narrowed to `key_id` when one of them has that id.
    fn select(&self, algorithm: Algorithm, key_id: Option<&str>) -> Result<&[Key], SignatureError> {
        let named = key_id.and_then(|id| {
            self.keys
                .iter()
                .position(|k| k.mac.algorithm() == algorithm && *k.id == *id)
        });
        match named {
            Some(i) => Ok(self.keys.get(i..=i).unwrap_or_default()),
            None if self.keys.iter().any(|k| k.mac.algorithm() == algorithm) => Ok(&self.keys),
            None => Err(SignatureError::NoKeyForAlgorithm(algorithm)),
        }
    }

    /// Tries every URL candidate (computed only when the previous ones failed) with every key;
    /// `whole` is the string-to-sign with the URL as given: `url`, then the pairs' keys and
    /// values (none for a URL-only signature).
    fn check(
        &self,
        keys: &[Key],
        url: &str,
        whole: &[u8],
        tag: &[u8],
        algorithm: Algorithm,
        mode: SigningMode,
    ) -> Result<Verified, SignatureError> {
        let usable = || keys.iter().filter(|k| k.mac.algorithm() == algorithm);
        let verified = |key: &Key, candidate| Verified {
            key_id: Arc::clone(&key.id),
            candidate,
            algorithm,
            mode,
        };
        // The URL as given, hashed with the rest in one piece.
        if let Some(key) = usable().find(|key| key.mac.verify(whole, tag)) {
            return Ok(verified(key, UrlCandidate::AsGiven));
        }
        let signed = whole.get(url.len()..).unwrap_or_default();
        for (pieces, candidate) in Candidates::new(url, self.variants).skip(1) {
            if let Some(key) =
                usable().find(|key| key.mac.verify_pieces(pieces.iter(), signed, tag))
            {
                return Ok(verified(key, candidate));
            }
        }
        Err(SignatureError::Mismatch)
    }
}

/// Decodes canonical padded standard base64 of at most 44 characters (an HMAC-SHA256 tag).
fn decode_signature<'b>(header: &[u8], buf: &'b mut [u8; 48]) -> Result<&'b [u8], SignatureError> {
    let malformed = |reason| SignatureError::Malformed { reason };
    if header.is_empty() {
        return Err(malformed("empty"));
    }
    if header.len() > 44 {
        return Err(malformed("wrong length"));
    }
    let len = match decode_one_pad(header, buf) {
        Some(len) => len,
        None => base64::engine::general_purpose::STANDARD
            .decode_slice(header, buf)
            .map_err(|_| malformed("not base64"))?,
    };
    buf.get(..len).ok_or(malformed("wrong length"))
}

/// The shape of every HMAC tag header (28 characters for SHA-1, 44 for SHA-256): canonical
/// standard base64 ending in exactly one `=`, decoded without a call. `None` for anything else
/// (left to the `base64` crate, which then decodes it or says why not); where this decodes, the
/// crate gives the same bytes.
fn decode_one_pad(header: &[u8], buf: &mut [u8; 48]) -> Option<usize> {
    let (data, [b'=']) = header.split_last_chunk::<1>()? else {
        return None;
    };
    let (groups, &[a, b, c]) = data.as_chunks::<4>() else {
        return None;
    };
    let value = |ch: u8| u32::from(BASE64[usize::from(ch)]);
    // At most 10 groups of 3 bytes (a 44-character header), then 2 bytes: within the 48.
    if groups.len() > 10 {
        return None;
    }
    let mut invalid = 0;
    for (out, &[w, x, y, z]) in buf.as_chunks_mut::<3>().0.iter_mut().zip(groups) {
        let (w, x, y, z) = (value(w), value(x), value(y), value(z));
        invalid |= w | x | y | z;
        let [_, b0, b1, b2] = (w << 18 | x << 12 | y << 6 | z).to_be_bytes();
        *out = [b0, b1, b2];
    }
    let (a, b, c) = (value(a), value(b), value(c));
    // The two bits past the last byte must be zero (canonical).
    invalid |= a | b | c | (c & 3) << 6;
    let [_, _, b0, b1] = (a << 10 | b << 4 | c >> 2).to_be_bytes();
    let n = 3 * groups.len();
    *buf.get_mut(n..)?.first_chunk_mut::<2>()? = [b0, b1];
    (invalid < 64).then_some(n + 2)
}

/// The value of every standard base64 character, `0xFF` for the other bytes (`=` included).
const BASE64: [u8; 256] = {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Every raw value of the `bodySHA256` query parameter (the query ends at `#`).
fn body_sha256_values(url: &str) -> impl Iterator<Item = &str> {
    let before_fragment = url.split('#').next().unwrap_or_default();
    let query = before_fragment
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    query.split('&').filter_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (name == "bodySHA256").then_some(value)
    })
}

/// Builds a [`SignatureValidator`] with several keys and opt-in URL variants.
#[derive(Debug, Clone, Default)]
pub struct SignatureValidatorBuilder {
    keys: Vec<(String, Algorithm, KeySecret)>,
    variants: Stripped,
}

impl SignatureValidatorBuilder {
    /// Adds an auth token (HMAC-SHA1): the primary or secondary token of an account during
    /// rotation, or a sub-account's token. Keys are tried in the order they are added.
    #[must_use]
    pub fn key(self, id: impl Into<String>, auth_token: AuthToken) -> Self {
        self.key_with(id, Algorithm::HmacSha1, auth_token)
    }

    /// Adds an HMAC-SHA256 key (Twilio's "SharedKey" signatures).
    #[must_use]
    pub fn sha256_key(self, id: impl Into<String>, secret: impl Into<KeySecret>) -> Self {
        self.key_with(id, Algorithm::HmacSha256, secret)
    }

    /// Adds a key for any algorithm.
    #[must_use]
    pub fn key_with(
        mut self,
        id: impl Into<String>,
        algorithm: Algorithm,
        secret: impl Into<KeySecret>,
    ) -> Self {
        self.keys.push((id.into(), algorithm, secret.into()));
        self
    }

    /// Also tries the URL without `user:pass@` (whether Twilio signs credentials is unconfirmed).
    #[must_use]
    pub fn try_without_credentials(mut self, on: bool) -> Self {
        self.variants = self.variants.with_credentials(on);
        self
    }

    /// Also tries a bare host without its lone trailing `/` (`https://host/` → `https://host`).
    #[must_use]
    pub fn try_without_trailing_slash(mut self, on: bool) -> Self {
        self.variants = self.variants.with_trailing_slash(on);
        self
    }

    /// Also tries the URL without its `#fragment` (Twilio's connection overrides, `#rc=3`).
    #[must_use]
    pub fn try_without_fragment(mut self, on: bool) -> Self {
        self.variants = self.variants.with_fragment(on);
        self
    }

    /// Builds the validator, keying every HMAC state once.
    ///
    /// # Errors
    /// [`ConfigError`] when no key was added, an id is empty or repeated, or a secret is empty.
    pub fn build(self) -> Result<SignatureValidator, ConfigError> {
        if self.keys.is_empty() {
            return Err(ConfigError::NoKeys);
        }
        let mut keys: Vec<Key> = Vec::with_capacity(self.keys.len());
        for (id, algorithm, secret) in self.keys {
            if id.is_empty() {
                return Err(ConfigError::EmptyKeyId);
            }
            if keys.iter().any(|k| *k.id == *id) {
                return Err(ConfigError::DuplicateKeyId(id));
            }
            if secret.bytes().is_empty() {
                return Err(ConfigError::EmptySecret(id));
            }
            let mac = KeyedMac::new(algorithm, secret.bytes())
                .ok_or(ConfigError::EmptySecret(id.clone()))?;
            keys.push(Key { id: id.into(), mac });
        }
        Ok(SignatureValidator {
            keys: keys.into(),
            variants: self.variants,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let form: &[u8] = b"Application/X-WWW-Form-URLEncoded ; charset=UTF-8";
        assert_eq!(
            SigningMode::of(&Method::POST, Some(form), b"a=1"),
            SigningMode::Form
        );
        assert_eq!(
            SigningMode::of(&Method::POST, Some(form), b""),
            SigningMode::Form
        );
        assert_eq!(
            SigningMode::of(&Method::GET, None, b""),
            SigningMode::UrlOnly
        );
        assert_eq!(
            SigningMode::of(&Method::HEAD, Some(form), b""),
            SigningMode::UrlOnly
        );
        assert_eq!(
            SigningMode::of(&Method::GET, Some(form), b"a=1"),
            SigningMode::BodyHash
        );
        assert_eq!(
            SigningMode::of(&Method::POST, Some(b"application/json"), b"{}"),
            SigningMode::BodyHash
        );
        assert_eq!(
            SigningMode::of(&Method::POST, None, b"a=1"),
            SigningMode::BodyHash
        );
        assert_eq!(
            SigningMode::of(
                &Method::POST,
                Some(b"application/x-www-form-urlencodedx"),
                b""
            ),
            SigningMode::BodyHash
        );
    }

    #[test]
    fn body_sha256_is_read_from_the_query_only() {
        let got: Vec<&str> =
            body_sha256_values("https://h/p?a=1&bodySHA256=ab&x#bodySHA256=cd").collect();
        assert_eq!(got, ["ab"]);
        assert_eq!(body_sha256_values("https://h/bodySHA256=ab").count(), 0);
        assert_eq!(body_sha256_values("https://h/?bodysha256=ab").count(), 0);
        let got: Vec<&str> = body_sha256_values("https://h/?bodySHA256&bodySHA256=x").collect();
        assert_eq!(got, ["", "x"]);
    }

    #[test]
    fn signature_decoding() {
        let mut buf = [0u8; 48];
        assert_eq!(
            decode_signature(b"RSOYDt4T1cUTdK1PDd93/VVr8B8=", &mut buf).map(<[u8]>::len),
            Ok(20)
        );
        for bad in [
            &b""[..],
            b"RSOYDt4T1cUTdK1PDd93/VVr8B8",
            b"RSOYDt4T1cUTdK1PDd93/VVr8B9=",
            b"RSOYDt4T1cUTdK1PDd93/VVr8B8=AAAAAAAAAAAAAAAAAAAAAA==",
        ] {
            assert!(
                matches!(
                    decode_signature(bad, &mut buf),
                    Err(SignatureError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
    }

    /// `decode_signature` with the `base64` crate alone.
    fn crate_decode(header: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let mut buf = [0u8; 48];
        if header.is_empty() || header.len() > 44 {
            return decode_signature(header, &mut buf).map(<[u8]>::to_vec);
        }
        base64::engine::general_purpose::STANDARD
            .decode_slice(header, &mut buf)
            .map(|len| buf[..len].to_vec())
            .map_err(|_| SignatureError::Malformed {
                reason: "not base64",
            })
    }

    #[test]
    fn one_pad_decoding_is_the_crate_s() {
        let mut buf = [0u8; 48];
        for header in [
            &b"RSOYDt4T1cUTdK1PDd93/VVr8B8="[..],
            b"RSOYDt4T1cUTdK1PDd93/VVr8B9=",
            b"RSOYDt4T1cUTdK1PDd93/VVr8B+=",
            b"RSOYDt4T1cUTdK1PDd93/VVr8B==",
            b"RSOYDt4T1cUTdK1PDd93/VVr8=8=",
            b"RSOYDt4T1cUTdK1PDd93-VVr8B8=",
            b"RSOYDt4T1cUTdK1PDd93 VVr8B8=",
            b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA8=",
            b"////////////////////////////////////////////",
            b"///////////////////////////////////////////=",
            b"AAA=",
            b"AAE=",
            b"=",
            b"A=",
            b"AA=",
            b"AAAA",
        ] {
            let ours = decode_signature(header, &mut buf).map(<[u8]>::to_vec);
            assert_eq!(
                ours,
                crate_decode(header),
                "{:?}",
                String::from_utf8_lossy(header)
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 2048,
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        #[test]
        fn signature_decoding_matches_the_crate(header in proptest::collection::vec(
            proptest::prop_oneof![
                40 => proptest::sample::select(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".to_vec()
                ),
                1 => proptest::sample::select(b"=-_ \0\x80".to_vec()),
            ],
            0..48,
        ), pad in proptest::bool::ANY) {
            let mut header = header;
            if pad {
                header.truncate(header.len() / 4 * 4);
                if let Some(last) = header.last_mut() {
                    *last = b'=';
                }
            }
            let mut buf = [0u8; 48];
            let ours = decode_signature(&header, &mut buf).map(<[u8]>::to_vec);
            proptest::prop_assert_eq!(ours, crate_decode(&header));
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let v = SignatureValidator::builder()
            .key("main", AuthToken::new("s3cr3t-token"))
            .sha256_key("shared", b"k3y-bytes".as_slice())
            .build()
            .unwrap();
        let d = format!("{v:?}");
        assert!(d.contains("main") && d.contains("shared"), "{d}");
        assert!(!d.contains("s3cr3t") && !d.contains("k3y"), "{d}");
        let b = SignatureValidator::builder().key("main", AuthToken::new("s3cr3t-token"));
        assert!(!format!("{b:?}").contains("s3cr3t"));
    }

    #[test]
    fn builder_errors() {
        let t = || AuthToken::new("x");
        assert_eq!(
            SignatureValidator::builder().build().err(),
            Some(ConfigError::NoKeys)
        );
        assert_eq!(
            SignatureValidator::builder().key("", t()).build().err(),
            Some(ConfigError::EmptyKeyId)
        );
        assert_eq!(
            SignatureValidator::builder()
                .key("a", t())
                .key("a", t())
                .build()
                .err(),
            Some(ConfigError::DuplicateKeyId("a".into()))
        );
        assert_eq!(
            SignatureValidator::builder()
                .key("a", AuthToken::new(""))
                .build()
                .err(),
            Some(ConfigError::EmptySecret("a".into()))
        );
    }

    #[test]
    fn validator_is_send_sync_clone() {
        fn assert<T: Send + Sync + Clone + fmt::Debug + 'static>() {}
        assert::<SignatureValidator>();
        assert::<Verified>();
        assert::<SignatureError>();
    }
}
