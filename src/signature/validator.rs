//! `SignatureValidator`: picks the key and the mode, tries the URL candidates, checks `bodySHA256`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use http::{HeaderMap, Method};

use super::candidates::{self, CREDENTIALS, FRAGMENT, Stripped, TRAILING_SLASH};
use super::form::Form;
use super::keys::{Key, KeyedMac};
use super::{Algorithm, ConfigError, SETTINGS_HEADER, SIGNATURE_HEADER, SignatureError};
use super::{UrlCandidate, settings};
use crate::secret::{AuthToken, KeySecret};

/// Which part of the request the signature covers, chosen from the method and the content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningMode {
    /// A form POST (`application/x-www-form-urlencoded`, or no content type and no body): the
    /// URL, then every body pair.
    Form,
    /// A `GET` or `HEAD` without a body: the URL alone (its query holds the parameters).
    UrlOnly,
    /// Any other request (JSON, a form body without its content type, a `GET` with a body): the
    /// URL alone, whose `bodySHA256` query value must be the lowercase hex SHA-256 of the body.
    BodyHash,
}

impl SigningMode {
    /// The mode for a request; never decided by whether the URL contains `bodySHA256`. The form
    /// content type matches in any case, its parameters (`; charset=utf-8`) ignored.
    pub fn of(method: &Method, content_type: Option<&[u8]>, body: &[u8]) -> Self {
        const FORM: &[u8] = b"application/x-www-form-urlencoded";
        let form = |value: &[u8]| {
            let essence = || value.split(|b| *b == b';').next().unwrap_or_default();
            value == FORM || essence().trim_ascii().eq_ignore_ascii_case(FORM)
        };
        let bodiless = *method == Method::GET || *method == Method::HEAD;
        match (bodiless, content_type) {
            (true, _) if body.is_empty() => Self::UrlOnly,
            (false, Some(value)) if form(value) => Self::Form,
            // Nothing to cover: the official libraries check it as a form without parameters.
            (false, None) if body.is_empty() => Self::Form,
            _ => Self::BodyHash,
        }
    }
}

/// A request to validate, described by its parts (use [`SignatureValidator::validate_http`]
/// when you have an [`http::HeaderMap`]).
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
        let (content_type, signature, settings) = (None, None, None);
        Self {
            method,
            url,
            body,
            content_type,
            signature,
            settings,
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
        let text = |v: Option<&[u8]>| v.map(|v| String::from_utf8_lossy(v).into_owned());
        f.debug_struct("SignedRequest")
            .field("method", self.method)
            .field("url", &crate::redact::Url(self.url))
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
#[derive(Debug, Clone)]
pub struct SignatureValidator {
    keys: Arc<[Key]>,
    variants: Stripped,
}

/// The id given to the key of [`SignatureValidator::new`].
pub const PRIMARY_KEY_ID: &str = "primary";

impl SignatureValidator {
    /// A validator for one auth token (HMAC-SHA1, key id `"primary"`), variants off.
    ///
    /// An empty token is ignored with a warning: that validator rejects every request with
    /// [`SignatureError::NoKeyForAlgorithm`] (use [`builder`](Self::builder) to get an error instead).
    pub fn new(auth_token: AuthToken) -> Self {
        let built = Self::builder().key(PRIMARY_KEY_ID, auth_token).build();
        built.unwrap_or_else(|_| {
            tracing::warn!("empty auth token: every webhook signature will be rejected");
            let (keys, variants) = (Arc::new([]), Stripped::NONE);
            Self { keys, variants }
        })
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
    /// `Content-Type` from `headers`, in one pass (cheaper than three hashed lookups).
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
        for (name, value) in headers {
            let (slot, header) = match name.as_str() {
                "content-type" => (&mut request.content_type, "content-type"),
                SIGNATURE_HEADER => (&mut request.signature, SIGNATURE_HEADER),
                SETTINGS_HEADER => (&mut request.settings, SETTINGS_HEADER),
                _ => continue,
            };
            if slot.is_some_and(|seen| seen != value.as_bytes()) {
                return Err(SignatureError::AmbiguousHeaders { header });
            }
            *slot = Some(value.as_bytes());
        }
        self.validate(&request)
    }

    /// Validates a request described by its parts, checking in this order (which decides the
    /// error): the signature header is present; the settings header, when present, is exactly
    /// `key=<id>,algorithm=HMAC_SHA256`; the signature decodes to a tag of the algorithm; a key
    /// is configured for it; for [`SigningMode::BodyHash`], the URL has a `bodySHA256`; the tag
    /// matches some URL candidate with some key (every key on the URL as given first, then the
    /// port toggled, then the opt-in variants; then, for a form whose pairs sort differently by
    /// UTF-16 code units, that order); finally the body's SHA-256.
    ///
    /// # Errors
    /// [`SignatureError`] saying why the request is not authentic.
    pub fn validate(&self, request: &SignedRequest<'_>) -> Result<Verified, SignatureError> {
        let header = request.signature.ok_or(SignatureError::Missing)?;
        let named = request.settings.map(settings::parse).transpose()?;
        let algorithm = named.map_or(Algorithm::HmacSha1, |(_, algorithm)| algorithm);
        let mut buf = [0u8; 48];
        let tag = decode_signature(header, algorithm, &mut buf)?;
        // The auth tokens without the settings header, else the one key it names.
        let usable =
            |k: &&Key| k.mac.algorithm() == algorithm && named.is_none_or(|(id, _)| *k.id == *id);
        if !self.keys.iter().any(|k| k.mac.algorithm() == algorithm) {
            return Err(SignatureError::NoKeyForAlgorithm(algorithm));
        } else if !self.keys.iter().any(|k| usable(&k)) {
            return Err(SignatureError::UnknownKey);
        }
        // The first key and URL candidate whose MAC over the candidate then the pairs is `tag`.
        let find = |form: Option<&Form>| {
            let url = request.url.as_bytes();
            let (whole, pairs) = form.map_or((url, &b""[..]), |form| (form.signed(), form.pairs()));
            let signs = |message: &[&[u8]]| {
                let mut keys = self.keys.iter().filter(usable);
                keys.find(|key| key.mac.verify(message.iter().copied(), tag))
            };
            let as_given = signs(&[whole]).map(|key| (key, UrlCandidate::AsGiven));
            as_given.or_else(|| {
                let mut candidates = candidates::after_as_given(request.url, self.variants);
                candidates.find_map(|(pieces, candidate)| {
                    let [a, b, c, d, e, f, g] = pieces.map(str::as_bytes);
                    Some((signs(&[a, b, c, d, e, f, g, pairs])?, candidate))
                })
            })
        };
        let mode = SigningMode::of(request.method, request.content_type, request.body);
        let found = match mode {
            SigningMode::UrlOnly => find(None),
            // The pairs' offsets are `u32`s, to fit a body and the copies of its strings with
            // invalid UTF-8 replaced (three times its size at most): no body over 1 GiB passes.
            SigningMode::Form if request.body.len() > (u32::MAX / 4) as usize => None,
            SigningMode::Form => Form::with(request.url, request.body, |form| {
                find(Some(form)).or_else(|| form.sort_by_utf16().then(|| find(Some(form)))?)
            }),
            SigningMode::BodyHash => {
                let expected = body_sha256(request.url).ok_or(SignatureError::BodyHashMissing)?;
                let found = find(None);
                if found.is_some() && expected.as_bytes() != super::sha256_hex(request.body) {
                    return Err(SignatureError::BodyHashMismatch);
                }
                found
            }
        };
        let (key, candidate) = found.ok_or(SignatureError::Mismatch)?;
        Ok(Verified {
            key_id: Arc::clone(&key.id),
            candidate,
            algorithm,
            mode,
        })
    }
}

/// Decodes the header as canonical padded standard base64 of a tag of `algorithm`.
fn decode_signature<'b>(
    header: &[u8],
    algorithm: Algorithm,
    buf: &'b mut [u8; 48],
) -> Result<&'b [u8], SignatureError> {
    let malformed = |reason| Err(SignatureError::Malformed { reason });
    let decoded = base64::engine::general_purpose::STANDARD.decode_slice(header, buf);
    match decoded.map(|len| buf.get(..len)) {
        _ if header.is_empty() => malformed("empty"),
        _ if header.len() > 44 => malformed("wrong length"),
        Ok(Some(tag)) if tag.len() == algorithm.output_len() => Ok(tag),
        Ok(_) => malformed("wrong length for the algorithm"),
        Err(_) => malformed("not base64"),
    }
}

/// The first `bodySHA256` query value, as the official libraries read it: the query parsed as
/// a form (`+` as a space, `%XX` as a byte, invalid UTF-8 replaced), names and values decoded.
/// A query with nothing to decode (Twilio's: its value is hex) is only split.
fn body_sha256(url: &str) -> Option<Cow<'_, str>> {
    let (_, query) = url.split('#').next()?.split_once('?')?;
    if !query.bytes().any(|b| b == b'%' || b == b'+') {
        let mut pairs = query
            .split('&')
            .map(|p| p.split_once('=').unwrap_or((p, "")));
        return pairs.find_map(|(name, value)| (name == "bodySHA256").then_some(value.into()));
    }
    let mut pairs = form_urlencoded::parse(query.as_bytes());
    pairs.find_map(|(name, value)| (name == "bodySHA256").then_some(value))
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

    /// Adds an HMAC-SHA256 key (Twilio's "SharedKey" signatures), used when the
    /// `X-Twilio-Webhooks-Signature-Settings` header names `id`.
    #[must_use]
    pub fn sha256_key(self, id: impl Into<String>, secret: impl Into<KeySecret>) -> Self {
        self.key_with(id, Algorithm::HmacSha256, secret)
    }

    /// Adds a key for any algorithm.
    #[must_use]
    pub fn key_with(
        mut self,
        id: impl Into<String>,
        alg: Algorithm,
        secret: impl Into<KeySecret>,
    ) -> Self {
        self.keys.push((id.into(), alg, secret.into()));
        self
    }

    /// Also tries the URL without `user:pass@` (whether Twilio signs credentials is unconfirmed).
    #[must_use]
    pub fn try_without_credentials(mut self, on: bool) -> Self {
        self.variants = self.variants.with(CREDENTIALS, on);
        self
    }

    /// Also tries a bare host without its lone trailing `/` (`https://host/` → `https://host`).
    #[must_use]
    pub fn try_without_trailing_slash(mut self, on: bool) -> Self {
        self.variants = self.variants.with(TRAILING_SLASH, on);
        self
    }

    /// Also tries the URL without its `#fragment` (Twilio's connection overrides, `#rc=3`).
    #[must_use]
    pub fn try_without_fragment(mut self, on: bool) -> Self {
        self.variants = self.variants.with(FRAGMENT, on);
        self
    }

    /// Builds the validator, keying every HMAC once.
    ///
    /// # Errors
    /// [`ConfigError`] when no key was added, an id is empty or repeated, or a secret is empty.
    pub fn build(self) -> Result<SignatureValidator, ConfigError> {
        let mut keys: Vec<Key> = Vec::with_capacity(self.keys.len());
        for (id, algorithm, secret) in self.keys {
            let mac = KeyedMac::new(algorithm, secret.expose());
            match mac.filter(|_| !secret.expose().is_empty()) {
                _ if id.is_empty() => return Err(ConfigError::EmptyKeyId),
                _ if keys.iter().any(|k| *k.id == *id) => {
                    return Err(ConfigError::DuplicateKeyId(id));
                }
                None => return Err(ConfigError::EmptySecret(id)),
                Some(mac) => keys.push(Key { id: id.into(), mac }),
            }
        }
        let (keys, variants) = (keys.into(), self.variants);
        let validator = SignatureValidator { keys, variants };
        match validator.keys.is_empty() {
            true => Err(ConfigError::NoKeys),
            false => Ok(validator),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let form: &[u8] = b"Application/X-WWW-Form-URLEncoded ; charset=UTF-8";
        let json: &[u8] = b"application/json";
        let (get, post) = (&Method::GET, &Method::POST);
        let of = SigningMode::of;
        assert_eq!(of(post, Some(form), b"a=1"), SigningMode::Form);
        assert_eq!(of(post, Some(form), b""), SigningMode::Form);
        assert_eq!(of(get, None, b""), SigningMode::UrlOnly);
        assert_eq!(of(&Method::HEAD, Some(form), b""), SigningMode::UrlOnly);
        assert_eq!(of(get, Some(form), b"a=1"), SigningMode::BodyHash);
        assert_eq!(of(post, Some(json), b"{}"), SigningMode::BodyHash);
        assert_eq!(of(post, Some(json), b""), SigningMode::BodyHash);
        assert_eq!(of(post, None, b"a=1"), SigningMode::BodyHash);
        let almost: &[u8] = b"application/x-www-form-urlencodedx";
        assert_eq!(of(post, Some(almost), b""), SigningMode::BodyHash);
        // No content type and no body: a form without parameters, as the official libraries
        // check it (it was `BodyHash` before issue 13).
        assert_eq!(of(post, None, b""), SigningMode::Form);
        assert_eq!(of(&Method::PUT, None, b""), SigningMode::Form);
    }

    #[test]
    fn body_sha256_is_the_first_decoded_query_value() {
        let first = |url| body_sha256(url).map(Cow::into_owned);
        assert_eq!(
            first("https://h/p?a=1&bodySHA256=ab&x#bodySHA256=cd").as_deref(),
            Some("ab")
        );
        assert_eq!(first("https://h/bodySHA256=ab"), None);
        assert_eq!(first("https://h/?bodysha256=ab"), None);
        assert_eq!(first("https://h/#?bodySHA256=ab"), None);
        assert_eq!(
            first("https://h/?bodySHA256&bodySHA256=x").as_deref(),
            Some("")
        );
        assert_eq!(
            first("https://h/?bodySHA256=x&bodySHA256=y").as_deref(),
            Some("x")
        );
        assert_eq!(
            first("https://h/?body%53HA256=%61b+c").as_deref(),
            Some("ab c")
        );
    }

    #[test]
    fn signature_decoding() {
        let mut buf = [0u8; 48];
        let sha1 = Algorithm::HmacSha1;
        let decoded = decode_signature(b"RSOYDt4T1cUTdK1PDd93/VVr8B8=", sha1, &mut buf);
        assert_eq!(decoded.map(<[u8]>::len), Ok(20));
        for bad in [
            &b""[..],
            b"RSOYDt4T1cUTdK1PDd93/VVr8B8",
            b"RSOYDt4T1cUTdK1PDd93/VVr8B9=",
            b"RSOYDt4T1cUTdK1PDd93/VVr8B8=AAAAAAAAAAAAAAAAAAAAAA==",
            b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            b"AAAA",
        ] {
            let got = decode_signature(bad, sha1, &mut buf);
            assert!(
                matches!(got, Err(SignatureError::Malformed { .. })),
                "{bad:?}"
            );
        }
        let sha256 = b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let decoded = decode_signature(sha256, Algorithm::HmacSha256, &mut buf);
        assert_eq!(decoded.map(<[u8]>::len), Ok(32));
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
        let err = |b: SignatureValidatorBuilder| b.build().err();
        let b = SignatureValidator::builder;
        assert_eq!(err(b()), Some(ConfigError::NoKeys));
        assert_eq!(err(b().key("", t())), Some(ConfigError::EmptyKeyId));
        assert_eq!(
            err(b().key("a", t()).key("a", t())),
            Some(ConfigError::DuplicateKeyId("a".into()))
        );
        assert_eq!(
            err(b().key("a", AuthToken::new(""))),
            Some(ConfigError::EmptySecret("a".into()))
        );
        let empty = SignatureValidator::new(AuthToken::new(""));
        assert_eq!(empty.key_ids().count(), 0);
    }

    #[test]
    fn validator_is_send_sync_clone() {
        fn assert<T: Send + Sync + Clone + fmt::Debug + 'static>() {}
        assert::<SignatureValidator>();
        assert::<Verified>();
        assert::<SignatureError>();
    }
}
