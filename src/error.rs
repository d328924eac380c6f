//! The API client's [`Error`] and Twilio's [`ApiError`]; no secret or body ever reaches them.

use std::fmt;

/// Why an API call failed.
///
/// Messages are lowercase and never contain the auth token, the API key secret or a request
/// body. The underlying HTTP library's error is kept only as a [`source`](std::error::Error::source),
/// wrapped in [`TransportError`] so that no foreign type is part of this enum.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Twilio (or something in front of it) answered with an error status.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The request did not complete within the configured timeout.
    ///
    /// For a create or update the message may or may not have been processed: check with
    /// `fetch`/`list` before sending again.
    #[error("request to the api timed out")]
    Timeout(#[source] TransportError),
    /// No connection could be made to the API host: the request provably never left.
    #[error("could not connect to the api")]
    Connect(#[source] TransportError),
    /// The connection failed after the request may have been sent (reset, broken body, ...).
    #[error("http transport failed")]
    Transport(#[source] TransportError),
    /// The API answered with success but its body was not the JSON expected.
    #[error("could not decode the api response")]
    Decode(#[source] DecodeError),
    /// The request failed local validation and was not sent.
    #[error("invalid request: {field}: {reason}")]
    InvalidRequest {
        /// The offending parameter, named as on the wire (`To`, `SendAt`, `MediaUrl`, `rc`, ...).
        field: &'static str,
        /// What is wrong with it (never the rejected value).
        reason: String,
    },
    /// The client was configured wrongly (bad base URL, region, user agent, ...).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The recipient is on the client's opt-out list: nothing was sent.
    #[error("the recipient opted out")]
    OptedOut,
    /// The client's opt-out list could not be read, so nothing was sent.
    #[error("the opt-out list could not be read")]
    OptOutList(#[source] crate::optout::OptOutError),
}

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidRequest {
            field,
            reason: reason.into(),
        }
    }

    /// Whether the failure is transient, so that the same request may succeed later:
    /// a 429 (or Twilio code 20429), a 5xx, a timeout or a connection failure.
    ///
    /// This does not say that resending is *safe*: a create that timed out or got a 5xx may
    /// have been processed. See [`is_safe_to_resend`](Self::is_safe_to_resend).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(e) => e.is_rate_limited() || e.http_status >= 500,
            Error::Timeout(_) | Error::Connect(_) | Error::Transport(_) | Error::OptOutList(_) => {
                true
            }
            Error::Decode(_)
            | Error::InvalidRequest { .. }
            | Error::Config(_)
            | Error::OptedOut => false,
        }
    }

    /// Whether Twilio provably did not act on the request, so that even a create can be sent
    /// again without risking a duplicate message: a connection failure or a 429/20429 answer.
    pub fn is_safe_to_resend(&self) -> bool {
        match self {
            Error::Api(e) => e.is_rate_limited(),
            Error::Connect(_) | Error::OptedOut | Error::OptOutList(_) => true,
            _ => false,
        }
    }

    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    /// Twilio's error code (`21211`, `20404`, ...), for API errors that carry one.
    pub fn code(&self) -> Option<u32> {
        match self {
            Error::Api(e) => e.code,
            _ => None,
        }
    }

    /// The HTTP status of the answer, for API errors.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.http_status),
            _ => None,
        }
    }

    /// The API error, if this is one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error answer from the API: Twilio's error JSON
/// (`{"code": 21211, "message": "...", "more_info": "...", "status": 400}`), or what could be
/// salvaged from a non-JSON error body (a proxy's HTML 502).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status of the response.
    pub http_status: u16,
    /// Twilio's error code, e.g. `21211`; `None` for a body without one.
    pub code: Option<u32>,
    /// Twilio's message; for a non-JSON body, a description of the response.
    pub message: String,
    /// The documentation link Twilio sends (`https://www.twilio.com/docs/errors/21211`).
    pub more_info: Option<String>,
    /// Twilio's `detail` (sent with some 401s); for a non-JSON body, a short sanitised snippet
    /// of it (tags and control characters removed, at most 160 characters).
    pub detail: Option<String>,
}

impl ApiError {
    /// Builds an API error (for tests and other transports).
    pub fn new(http_status: u16, code: Option<u32>, message: impl Into<String>) -> Self {
        Self {
            http_status,
            code,
            message: message.into(),
            more_info: None,
            detail: None,
        }
    }

    /// Twilio's code as an [`ErrorCode`](crate::error_code::ErrorCode): its description and what to do.
    pub fn error_code(&self) -> Option<crate::error_code::ErrorCode> {
        self.code.map(crate::error_code::ErrorCode::new)
    }

    /// What to do about this error ([`ErrorClass`](crate::error_code::ErrorClass)); `Unknown` without a
    /// code or for codes the crate does not know.
    pub fn class(&self) -> crate::error_code::ErrorClass {
        self.error_code().map_or(
            crate::error_code::ErrorClass::Unknown,
            crate::error_code::ErrorCode::class,
        )
    }

    /// Whether Twilio said "too many requests": HTTP 429 or code 20429. Such a request was not
    /// processed and may be sent again after a pause.
    pub fn is_rate_limited(&self) -> bool {
        self.http_status == 429 || self.code == Some(20429)
    }

    /// Whether the resource was not found (HTTP 404 or code 20404).
    pub fn is_not_found(&self) -> bool {
        self.http_status == 404 || self.code == Some(20404)
    }
}

impl fmt::Display for ApiError {
    /// Twilio's code, the HTTP status and Twilio's message, with the phone numbers it quotes
    /// (`The 'To' number +15005550009 is not a valid mobile number`) redacted, so that logging
    /// the error does not log the recipient. [`message`](Self::message) keeps them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = redact_numbers(&self.message);
        match self.code {
            Some(code) => write!(
                f,
                "twilio api error {code} (http {}): {message}",
                self.http_status
            ),
            None => write!(f, "api error (http {}): {message}", self.http_status),
        }
    }
}

/// `text` with every run of 7 or more digits standing alone (a phone number; a `+` before it
/// included) replaced by `[redacted]`. Twilio's codes have 5 digits; the digits inside a SID
/// have letters beside them.
fn redact_numbers(text: &str) -> std::borrow::Cow<'_, str> {
    const LONGEST_KEPT: usize = 6;
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let mut out = String::new();
    let mut kept = 0;
    let mut i = 0;
    while i < text.len() {
        let plus = usize::from(text.as_bytes()[i] == b'+');
        let run = digits(&text[i + plus..]);
        let alone = (i == 0 || !text.as_bytes()[i - 1].is_ascii_alphanumeric())
            && !text
                .as_bytes()
                .get(i + plus + run)
                .is_some_and(u8::is_ascii_alphanumeric);
        if run == 0 {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        if alone && run > LONGEST_KEPT {
            out.push_str(&text[kept..i]);
            out.push_str("[redacted]");
            kept = i + plus + run;
        }
        // The whole run at once: each byte is looked at a bounded number of times.
        i += plus + run;
    }
    if kept == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[kept..]);
    std::borrow::Cow::Owned(out)
}

/// A failure of the HTTP transport, kept as the [`source`](std::error::Error::source) of
/// [`Error::Timeout`], [`Error::Connect`] and [`Error::Transport`].
///
/// Opaque on purpose: the HTTP library is not part of the public API. Its text never includes
/// the request URL (stripped) or credentials.
pub struct TransportError {
    inner: reqwest::Error,
}

impl TransportError {
    pub(crate) fn new(inner: reqwest::Error) -> Self {
        Self {
            inner: inner.without_url(),
        }
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TransportError").field(&self.inner).finish()
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.inner)
    }
}

/// Why a successful response body could not be decoded: what was being decoded and where the
/// JSON went wrong.
///
/// The JSON parser's own message is not kept because it can quote response text (message
/// bodies, phone numbers); the category and position are enough to find the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    what: &'static str,
    kind: &'static str,
    line: usize,
    column: usize,
}

impl DecodeError {
    pub(crate) fn json(what: &'static str, e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let kind = match e.classify() {
            Category::Io => "i/o error",
            Category::Syntax => "invalid json",
            Category::Data => "unexpected value",
            Category::Eof => "truncated json",
        };
        Self {
            what,
            kind,
            line: e.line(),
            column: e.column(),
        }
    }

    pub(crate) fn other(what: &'static str, kind: &'static str) -> Self {
        Self {
            what,
            kind,
            line: 0,
            column: 0,
        }
    }

    /// What was being decoded (`message`, `message page`, ...).
    pub fn what(&self) -> &'static str {
        self.what
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.kind)?;
        if self.line > 0 {
            write!(f, " at line {} column {}", self.line, self.column)?;
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_classify() {
        let e = Error::Api(ApiError::new(429, Some(20429), "Too Many Requests"));
        assert!(e.is_retryable() && e.is_safe_to_resend());
        assert_eq!(e.code(), Some(20429));
        assert_eq!(e.http_status(), Some(429));
        let e = Error::Api(ApiError::new(500, None, "oops"));
        assert!(e.is_retryable() && !e.is_safe_to_resend());
        let e = Error::Api(ApiError::new(400, Some(21211), "bad To"));
        assert!(!e.is_retryable());
        assert_eq!(e.to_string(), "twilio api error 21211 (http 400): bad To");
        let e = Error::invalid("To", "is required");
        assert_eq!(e.to_string(), "invalid request: To: is required");
        assert!(!e.is_retryable() && e.code().is_none() && e.http_status().is_none());
    }

    #[test]
    fn display_redacts_the_numbers_twilio_quotes() {
        // Twilio's message for error 21614, as its docs show it.
        let e = ApiError::new(
            400,
            Some(21614),
            "The 'To' number +15005550009 is not a valid mobile number",
        );
        assert_eq!(
            e.to_string(),
            "twilio api error 21614 (http 400): The 'To' number [redacted] is not a valid mobile number"
        );
        assert!(e.message.contains("+15005550009"), "the field keeps it");
        for (message, shown) in [
            (
                "To whatsapp:+14155550100, from 5005550006.",
                "To whatsapp:[redacted], from [redacted].",
            ),
            (
                "Code 21211 on MM0123456789abcdef0123456789abcdef",
                "Code 21211 on MM0123456789abcdef0123456789abcdef",
            ),
            (
                "Number 123456 has six digits; é+1234567",
                "Number 123456 has six digits; é[redacted]",
            ),
            ("+", "+"),
            ("", ""),
            ("1234567", "[redacted]"),
            ("++1234567é", "+[redacted]é"),
            ("+é1234567x", "+é1234567x"),
        ] {
            assert_eq!(redact_numbers(message), shown);
        }
    }

    #[test]
    fn decode_error_does_not_quote_the_body() {
        let err = serde_json::from_str::<u32>("\"my secret text\"").unwrap_err();
        let d = DecodeError::json("message", &err);
        assert!(!d.to_string().contains("secret"));
        assert!(
            d.to_string()
                .starts_with("message: unexpected value at line 1")
        );
        let d = DecodeError::other("message page", "next_page_uri is not on the api host");
        assert_eq!(
            d.to_string(),
            "message page: next_page_uri is not on the api host"
        );
    }
}
