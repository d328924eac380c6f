//! One API call over reqwest: auth, retries with backoff, error mapping and a tracing span.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderValue, Method};
use serde::de::DeserializeOwned;
use tracing::Instrument as _;
use url::Url;

use super::credentials::Credentials;
use super::retry::{Failure, Idempotency, RetryPolicy};
use crate::error::{ApiError, DecodeError, Error, Result, TransportError};
use crate::ids::AccountSid;

/// The largest successful body read (a page of 1000 messages is about 1.5 MB).
const MAX_BODY: usize = 32 * 1024 * 1024;
/// How much of an error body is read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The longest snippet of a non-JSON error body kept in [`ApiError::detail`].
const SNIPPET_CHARS: usize = 160;

/// The shared state behind a [`Client`](super::Client).
pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) base: Url,
    pub(crate) account_sid: AccountSid,
    pub(crate) credentials: Credentials,
    pub(crate) user_agent: HeaderValue,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry: RetryPolicy,
    /// Recipients never to send to; consulted before every create, fed by 21610 answers.
    pub(crate) opt_outs: Option<std::sync::Arc<dyn crate::optout::OptOutList>>,
}

/// One logical API call.
pub(crate) struct ApiRequest {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) form: Option<String>,
    pub(crate) idempotency: Idempotency,
}

/// A successful answer.
pub(crate) struct ApiResponse {
    pub(crate) body: Bytes,
}

impl ApiResponse {
    /// Decodes the JSON body.
    pub(crate) fn json<T: DeserializeOwned>(&self, what: &'static str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode(DecodeError::json(what, &e)))
    }
}

/// The outcome of one try.
enum Try {
    Success(ApiResponse),
    Failed(ApiError, Option<Duration>),
}

impl Inner {
    /// `{base path}/2010-04-01/Accounts/{AccountSid}{tail}`.
    pub(crate) fn account_url(&self, tail: &str) -> Url {
        let mut url = self.base.clone();
        let path = format!(
            "{}/2010-04-01/Accounts/{}{}",
            self.base.path().trim_end_matches('/'),
            self.account_sid,
            tail
        );
        url.set_path(&path);
        url
    }

    /// Resolves a page URI Twilio returned (relative to the API host) against the base URL.
    /// Absolute URLs are accepted only on the base URL's origin, so credentials never go
    /// elsewhere.
    pub(crate) fn resolve_page_uri(&self, uri: &str) -> Result<Url> {
        if uri.starts_with('/') && !uri.starts_with("//") {
            let (path, query) = match uri.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (uri, None),
            };
            let mut url = self.base.clone();
            url.set_path(&format!(
                "{}{}",
                self.base.path().trim_end_matches('/'),
                path
            ));
            url.set_query(query);
            return Ok(url);
        }
        match Url::parse(uri) {
            Ok(url) if url.origin() == self.base.origin() => Ok(url),
            _ => Err(Error::Decode(DecodeError::other(
                "message page",
                "next_page_uri is not on the api host",
            ))),
        }
    }

    /// Sends the request, retrying as the policy allows.
    pub(crate) async fn execute(&self, req: ApiRequest) -> Result<ApiResponse> {
        let span = tracing::info_span!(
            "twilio_request",
            method = %req.method,
            path = %req.url.path(),
            attempt = tracing::field::Empty,
            status = tracing::field::Empty,
            twilio_code = tracing::field::Empty,
        );
        self.execute_retrying(req).instrument(span).await
    }

    async fn execute_retrying(&self, req: ApiRequest) -> Result<ApiResponse> {
        let span = tracing::Span::current();
        let max = self.retry.max_attempts().max(1);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            span.record("attempt", attempt);
            let (failure, retry_after, error) = match self.try_once(&req).await {
                Ok(Try::Success(resp)) => return Ok(resp),
                // The try before may have deleted it (its answer lost): gone is what was asked.
                Ok(Try::Failed(api, _))
                    if attempt > 1 && req.method == Method::DELETE && api.http_status == 404 =>
                {
                    tracing::debug!(attempt, "deleted by an earlier try");
                    return Ok(ApiResponse { body: Bytes::new() });
                }
                Ok(Try::Failed(api, retry_after)) => {
                    if let Some(code) = api.code {
                        span.record("twilio_code", code);
                    }
                    (
                        Failure::Status(api.http_status, api.code),
                        retry_after,
                        Error::Api(api),
                    )
                }
                Err(e) => {
                    let failure = match &e {
                        Error::Connect(_) => Failure::Connect,
                        Error::Timeout(_) => Failure::Timeout,
                        _ => Failure::Transport,
                    };
                    (failure, None, e)
                }
            };
            // A body that could not be read as an answer would be the same again.
            let retry = attempt < max
                && !matches!(error, Error::Config(_) | Error::Decode(_))
                && self.retry.should_retry(req.idempotency, failure);
            if !retry {
                tracing::debug!(attempt, error = %summary(&error), "twilio request failed");
                return Err(error);
            }
            let delay = self.retry.delay(attempt - 1, retry_after);
            tracing::warn!(
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %summary(&error),
                "retrying twilio request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn try_once(&self, req: &ApiRequest) -> Result<Try> {
        let (user, pass) = self.credentials.basic(&self.account_sid);
        let mut rb = self
            .http
            .request(req.method.clone(), req.url.clone())
            .basic_auth(user, Some(pass))
            .header(USER_AGENT, self.user_agent.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(t) = self.timeout {
            rb = rb.timeout(t);
        }
        if let Some(form) = &req.form {
            rb = rb
                .header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                )
                .body(form.clone());
        }
        let mut resp = rb.send().await.map_err(transport_error)?;
        let status = resp.status();
        tracing::Span::current().record("status", status.as_u16());
        if status.is_success() {
            let body = read_limited(&mut resp, MAX_BODY).await?;
            if body.len() > MAX_BODY {
                return Err(Error::Decode(DecodeError::other(
                    "response",
                    "body larger than 32 MiB",
                )));
            }
            return Ok(Try::Success(ApiResponse { body }));
        }
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let is_html_or_text = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/"));
        // A failure to read an error body still leaves the status to report.
        let body = read_limited(&mut resp, MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        let api = api_error(status.as_u16(), &body, is_html_or_text);
        Ok(Try::Failed(api, retry_after))
    }
}

/// What a log line says of a failed try: the error, but of Twilio's answer only its HTTP status
/// and code, since Twilio's message can quote the recipient's number.
fn summary(error: &Error) -> String {
    match error {
        Error::Api(api) => match api.code {
            Some(code) => format!("twilio api error {code} (http {})", api.http_status),
            None => format!("http {}", api.http_status),
        },
        other => other.to_string(),
    }
}

/// Reads at most `limit + 1` bytes of the body (one more than allowed tells "too large").
async fn read_limited(resp: &mut reqwest::Response, limit: usize) -> Result<Bytes> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        let room = limit.saturating_add(1).saturating_sub(buf.len());
        let take = chunk.len().min(room);
        buf.extend_from_slice(chunk.get(..take).unwrap_or_default());
        if buf.len() > limit {
            break;
        }
    }
    Ok(Bytes::from(buf))
}

/// Maps a reqwest failure to the crate's transport variants.
pub(crate) fn transport_error(e: reqwest::Error) -> Error {
    if e.is_builder() {
        return Error::Config("the http request could not be built".into());
    }
    if e.is_connect() {
        Error::Connect(TransportError::new(e))
    } else if e.is_timeout() {
        Error::Timeout(TransportError::new(e))
    } else {
        Error::Transport(TransportError::new(e))
    }
}

/// Builds the API error from an error answer: Twilio's JSON when present, otherwise the
/// status's reason and a sanitised snippet.
pub(crate) fn api_error(status: u16, body: &[u8], looks_like_text: bool) -> ApiError {
    if !looks_like_text
        && let Ok(serde_json::Value::Object(map)) =
            serde_json::from_slice::<serde_json::Value>(body)
    {
        let text = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let code = map.get("code").and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        let message = text("message");
        if code.is_some() || message.is_some() {
            return ApiError {
                http_status: status,
                code,
                message: message.unwrap_or_else(|| reason(status)),
                more_info: text("more_info"),
                detail: text("detail"),
            };
        }
    }
    let mut err = ApiError::new(status, None, format!("{} (non-json body)", reason(status)));
    err.detail = snippet(body);
    err
}

fn reason(status: u16) -> String {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map_or_else(|| format!("http {status}"), |r| r.to_lowercase())
}

/// A short, printable snippet of a non-JSON body: markup tags and control characters removed,
/// whitespace collapsed, at most [`SNIPPET_CHARS`] characters.
fn snippet(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body.get(..4096).unwrap_or(body));
    let mut out = String::new();
    let mut in_tag = false;
    let mut last_space = true;
    let mut count = 0;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                if !last_space {
                    out.push(' ');
                    last_space = true;
                    count += 1;
                }
            }
            _ if in_tag => {}
            c if c.is_whitespace() || c.is_control() => {
                if !last_space {
                    out.push(' ');
                    last_space = true;
                    count += 1;
                }
            }
            c => {
                out.push(c);
                last_space = false;
                count += 1;
            }
        }
        if count >= SNIPPET_CHARS {
            break;
        }
    }
    let out = out.trim().to_owned();
    if out.is_empty() { None } else { Some(out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_error_json() {
        let body = br#"{"code": 21211, "message": "The 'To' number is not valid.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        let e = api_error(400, body, false);
        assert_eq!(e.code, Some(21211));
        assert_eq!(e.http_status, 400);
        assert_eq!(
            e.more_info.as_deref(),
            Some("https://www.twilio.com/docs/errors/21211")
        );
        let e = api_error(401, br#"{"code":"20003","message":"Authenticate","detail":"Your AccountSid or AuthToken was incorrect."}"#, false);
        assert_eq!(e.code, Some(20003));
        assert!(e.detail.is_some());
    }

    fn inner(base: &str) -> Inner {
        Inner {
            http: reqwest::Client::new(),
            base: Url::parse(base).unwrap(),
            account_sid: AccountSid::new("AC0123456789abcdef0123456789abcdef").unwrap(),
            credentials: Credentials::AuthToken(crate::secret::AuthToken::new("t")),
            user_agent: HeaderValue::from_static("t"),
            timeout: None,
            retry: RetryPolicy::none(),
            opt_outs: None,
        }
    }

    #[test]
    fn page_uris_resolve_only_onto_the_api_host() {
        let i = inner("http://127.0.0.1:4010/emu/");
        assert_eq!(
            i.account_url("/Messages.json").as_str(),
            "http://127.0.0.1:4010/emu/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        let next = "/2010-04-01/Accounts/AC1/Messages.json?To=%2B1&DateSent%3E=2008-01-02&Page=1";
        assert_eq!(
            i.resolve_page_uri(next).unwrap().as_str(),
            format!("http://127.0.0.1:4010/emu{next}")
        );
        let same = "http://127.0.0.1:4010/emu/x.json?Page=2";
        assert_eq!(i.resolve_page_uri(same).unwrap().as_str(), same);
        for bad in [
            "//evil.example.com/x",
            "https://evil.example.com/x",
            "http://127.0.0.1:4011/emu/x",
            "x.json",
            "",
        ] {
            assert!(i.resolve_page_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn html_bodies_become_snippets() {
        let body = b"<html><head><title>502 Bad Gateway</title></head>\r\n<body>\x07<h1>Bad   Gateway</h1></body></html>";
        let e = api_error(502, body, true);
        assert_eq!(e.code, None);
        assert_eq!(e.message, "bad gateway (non-json body)");
        assert_eq!(e.detail.as_deref(), Some("502 Bad Gateway Bad Gateway"));
        let long = "x".repeat(10_000);
        let e = api_error(500, long.as_bytes(), false);
        assert_eq!(e.detail.map(|d| d.chars().count()), Some(SNIPPET_CHARS));
        assert_eq!(api_error(503, b"", false).detail, None);
        assert_eq!(
            api_error(599, b"[]", false).message,
            "http 599 (non-json body)"
        );
    }
}
