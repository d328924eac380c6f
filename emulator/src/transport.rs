//! One webhook request (a status callback or an incoming message) over a fresh HTTP/1.1 connection, with the request target written
//! byte for byte as configured (hyper sends an origin-form `http::Uri` as given; `url::Url` and
//! reqwest would re-encode characters such as `'`).

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Uri, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::callback_url::CallbackUrl;
use super::truth::AttemptOutcome;

/// The `User-Agent` of Twilio's callback requests.
const USER_AGENT: &str = "TwilioProxy/1.1";

/// One request to send: the parsed URL, the headers that vary, the form body.
#[derive(Debug)]
pub(crate) struct Outgoing<'a> {
    pub(crate) url: &'a CallbackUrl,
    pub(crate) signature: &'a str,
    pub(crate) idempotency_token: &'a str,
    pub(crate) body: Bytes,
}

/// Percent-decodes userinfo for the `Authorization` header.
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The request for `out`, its target exactly the configured path and query.
fn request(out: &Outgoing<'_>) -> Result<Request<Full<Bytes>>, String> {
    let target: Uri = out
        .url
        .target
        .parse()
        .map_err(|_| "the callback URL's path is not a valid request target".to_owned())?;
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(target)
        .header(header::HOST, out.url.host_header())
        .header(header::USER_AGENT, USER_AGENT)
        .header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("X-Twilio-Signature", out.signature)
        .header("I-Twilio-Idempotency-Token", out.idempotency_token);
    if let Some(userinfo) = &out.url.userinfo {
        // Credentials in the URL are sent as HTTP Basic auth (Twilio's "secure your webhook"
        // docs); the emulator sends them up front instead of waiting for a 401 challenge.
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            decode(user),
            decode(password)
        ));
        builder = builder.header(header::AUTHORIZATION, format!("Basic {credentials}"));
    }
    builder
        .body(Full::new(out.body.clone()))
        .map_err(|_| "the callback request could not be built".to_owned())
}

/// What a receiver answered: the status, its `Content-Type` and (when asked for) the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Bytes,
}

/// The most response body read from a receiver (a TwiML reply); a longer body is an error.
pub(crate) const MAX_ANSWER: usize = 64 * 1024;

/// Sends `out`: connects within `connect_timeout`, then waits at most `read_timeout` for the
/// response status, never past `deadline` (the total budget `#tt`). Never follows redirects;
/// the response body is not read.
pub(crate) async fn send(
    out: &Outgoing<'_>,
    connect_timeout: Duration,
    read_timeout: Duration,
    deadline: Instant,
) -> AttemptOutcome {
    match exchange(out, connect_timeout, read_timeout, deadline, false).await {
        Ok(answer) => AttemptOutcome::Response(answer.status),
        Err(outcome) => outcome,
    }
}

/// Like [`send`], but also reads the response body (at most [`MAX_ANSWER`] bytes, within the
/// same read timeout): the answer, or how the attempt failed.
pub(crate) async fn send_reading(
    out: &Outgoing<'_>,
    connect_timeout: Duration,
    read_timeout: Duration,
    deadline: Instant,
) -> Result<Answer, AttemptOutcome> {
    exchange(out, connect_timeout, read_timeout, deadline, true).await
}

/// One request and its answer; the body is read only when `read_body` is set.
async fn exchange(
    out: &Outgoing<'_>,
    connect_timeout: Duration,
    read_timeout: Duration,
    deadline: Instant,
    read_body: bool,
) -> Result<Answer, AttemptOutcome> {
    if out.url.https {
        return Err(AttemptOutcome::Error(
            "the emulator sends webhooks over plain http only".into(),
        ));
    }
    let request = request(out).map_err(AttemptOutcome::Error)?;
    let (host, port) = out.url.connect_to();
    let left = || deadline.saturating_duration_since(Instant::now());
    let connect = TcpStream::connect((host.as_str(), port));
    let stream = match tokio::time::timeout(connect_timeout.min(left()), connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(_)) | Err(_) => return Err(AttemptOutcome::ConnectFailed),
    };
    let exchange = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("http error: {e}"))?;
        let driver = tokio::spawn(connection);
        let answer = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("http error: {e}"))?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let body = if read_body {
                Limited::new(response.into_body(), MAX_ANSWER)
                    .collect()
                    .await
                    .map_err(|e| format!("reading the response body: {e}"))?
                    .to_bytes()
            } else {
                Bytes::new()
            };
            Ok::<_, String>(Answer {
                status,
                content_type,
                body,
            })
        }
        .await;
        driver.abort();
        answer
    };
    match tokio::time::timeout(read_timeout.min(left()), exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(AttemptOutcome::Error(e)),
        Err(_) => Err(AttemptOutcome::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_target_and_host_are_the_configured_bytes() {
        let url = CallbackUrl::parse("http://LocalHost:81/p'a(t)h!*?q='1'&r=%2b#rc=1").unwrap();
        let out = Outgoing {
            url: &url,
            signature: "sig",
            idempotency_token: "tok",
            body: Bytes::from_static(b"a=b"),
        };
        let req = request(&out).unwrap();
        assert_eq!(req.uri().to_string(), "/p'a(t)h!*?q='1'&r=%2b");
        assert_eq!(req.headers()[header::HOST], "LocalHost:81");
        assert!(req.headers().get(header::AUTHORIZATION).is_none());

        let url = CallbackUrl::parse("http://ad%40min:p%3Ass@h/cb").unwrap();
        let out = Outgoing { url: &url, ..out };
        let req = request(&out).unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode("ad@min:p:ss");
        assert_eq!(
            req.headers()[header::AUTHORIZATION],
            format!("Basic {expected}").as_str()
        );
        assert_eq!(req.headers()[header::HOST], "h");
    }
}
