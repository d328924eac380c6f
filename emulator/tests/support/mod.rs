//! Shared helpers for the emulator tests: a plain reqwest API caller, a callback receiver on
//! 127.0.0.1 that checks signatures with `sign()`, and a schema check against the spec.
#![allow(dead_code, unreachable_pub)]

pub mod raw;
pub mod schema;
pub mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine as _;
use serde_json::Value;
use twilio_delivery::AuthToken;
use twilio_delivery::signature::sign;
use twilio_delivery_emulator::EmulatorHandle;

/// Calls the emulated API with plain reqwest and Basic auth.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub account: String,
    user: String,
    password: String,
    http: reqwest::Client,
}

/// A response: status and JSON body (Null when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub json: Value,
    pub headers: reqwest::header::HeaderMap,
}

pub fn basic(user: &str, password: &str) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {enc}")
}

/// A `SendAt` `minutes` ahead of the real clock (RFC 3339).
pub fn send_at(minutes: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

impl Api {
    pub fn new(emu: &EmulatorHandle) -> Self {
        Self::with_credentials(emu, emu.account_sid().as_str(), emu.auth_token().expose())
    }

    pub fn with_credentials(emu: &EmulatorHandle, user: &str, password: &str) -> Self {
        Self {
            base: emu.base_url(),
            account: emu.account_sid().to_string(),
            user: user.to_owned(),
            password: password.to_owned(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    pub fn messages_path(&self) -> String {
        format!("/2010-04-01/Accounts/{}/Messages.json", self.account)
    }

    pub fn message_path(&self, sid: &str) -> String {
        format!("/2010-04-01/Accounts/{}/Messages/{sid}.json", self.account)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req
            .header("Authorization", basic(&self.user, &self.password))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        Reply {
            status,
            json,
            headers,
        }
    }

    pub async fn get(&self, path_and_query: &str) -> Reply {
        self.send(self.http.get(format!("{}{path_and_query}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    /// Sends `requests` (method, path, form body) pipelined on one connection, in one write,
    /// and returns the HTTP status of each answer in order. The server reads them back to back,
    /// so on a current-thread runtime a task one of them spawns runs only after the others
    /// were answered: a deterministic way to make a request win a race.
    pub async fn pipelined(&self, requests: &[(&str, &str, &str)]) -> Vec<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = self.base.trim_start_matches("http://");
        let auth = basic(&self.user, &self.password);
        let mut wire = String::new();
        for (i, (method, path, body)) in requests.iter().enumerate() {
            let close = if i + 1 == requests.len() {
                "Connection: close\r\n"
            } else {
                ""
            };
            wire.push_str(&format!(
                "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\n{close}\r\n{body}",
                body.len()
            ));
        }
        let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
        stream.write_all(wire.as_bytes()).await.unwrap();
        let mut answers = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answers))
            .await
            .expect("the pipelined answers in time")
            .unwrap();
        let mut statuses = Vec::new();
        let mut rest = answers.as_slice();
        while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&rest[..end]).into_owned();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("not an HTTP answer: {head}"));
            statuses.push(status);
            let length: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            rest = &rest[(end + 4 + length).min(rest.len())..];
        }
        statuses
    }

    /// Creates a message from `to` through the Messaging Service `service`, scheduled
    /// `minutes` ahead, with `callback` as its status callback; its SID. Panics unless 201.
    pub async fn create_scheduled(
        &self,
        to: &str,
        service: &str,
        minutes: i64,
        callback: &str,
    ) -> String {
        let send_at = send_at(minutes);
        let created = self
            .create(&[
                ("To", to),
                ("MessagingServiceSid", service),
                ("Body", "later"),
                ("ScheduleType", "fixed"),
                ("SendAt", &send_at),
                ("StatusCallback", callback),
            ])
            .await;
        created["sid"].as_str().unwrap().to_owned()
    }

    /// Creates a message; panics unless 201.
    pub async fn create(&self, pairs: &[(&str, &str)]) -> Value {
        let r = self.post(&self.messages_path(), pairs).await;
        assert_eq!(r.status, 201, "{}", r.json);
        r.json
    }
}

/// One callback as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path_and_query: String,
    pub params: Vec<(String, String)>,
    pub signature_valid: bool,
    pub idempotency_token: String,
    pub user_agent: String,
    pub content_type: String,
}

impl Received {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn status(&self) -> &str {
        self.param("MessageStatus").unwrap_or_default()
    }

    pub fn sid(&self) -> &str {
        self.param("MessageSid").unwrap_or_default()
    }
}

#[derive(Clone)]
struct ReceiverState {
    base: String,
    token: AuthToken,
    log: Arc<Mutex<Vec<Received>>>,
}

/// A status-callback receiver on 127.0.0.1. Paths choose the answer: `/status/{code}` answers
/// that code, `/slow/{ms}` waits before answering 204, anything else answers 204.
pub struct Receiver {
    pub base: String,
    log: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn receive(
    State(state): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let url = format!("{}{path_and_query}", state.base);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let expected = sign(&state.token, &url, &params);
    state.log.lock().unwrap().push(Received {
        path_and_query: path_and_query.clone(),
        params,
        signature_valid: header("X-Twilio-Signature") == expected,
        idempotency_token: header("I-Twilio-Idempotency-Token"),
        user_agent: header("User-Agent"),
        content_type: header("Content-Type"),
    });
    let path = uri.path();
    if let Some(code) = path.strip_prefix("/status/") {
        return StatusCode::from_u16(code.parse().unwrap()).unwrap();
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
    }
    StatusCode::NO_CONTENT
}

impl Receiver {
    /// Starts a receiver that validates signatures with `token`.
    pub async fn start(token: &AuthToken) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState {
            base: base.clone(),
            token: token.clone(),
            log: Arc::clone(&log),
        };
        let app = axum::Router::new().fallback(receive).with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, log, task }
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// The statuses received for each SID, in arrival order.
    pub fn statuses_by_sid(&self) -> HashMap<String, Vec<String>> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for r in self.received() {
            map.entry(r.sid().to_owned())
                .or_default()
                .push(r.status().to_owned());
        }
        map
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
