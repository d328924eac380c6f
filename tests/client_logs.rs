//! What the client logs: a span per request with method, path, attempt, status and Twilio
//! code, and never the auth token, a request body, query values or Twilio's error message
//! (which can quote a number). In its own test binary because tracing caches per-callsite
//! interest process-wide: a test running without the subscriber on another thread could hide
//! this test's spans.

mod client_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use client_support::*;
use serde_json::json;
use twilio_delivery::client::{ListFilter, SendMessage};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BODY_TEXT: &str = "private body text 4711";

fn sms() -> SendMessage {
    SendMessage::new("+15558675310")
        .from("+15017122661")
        .body(BODY_TEXT)
}

/// A writer that keeps everything the subscriber prints.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_carry_method_path_status_and_code_but_no_secret_or_body() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "code": 20429, "message": "Too Many Requests", "status": 429
        })))
        .mount(&server)
        .await;
    let _ = client(&server).messages().create(&sms()).await.unwrap_err();
    let filter = ListFilter::new().to("+15550001111");
    let _ = client(&server).messages().list_page(&filter).await;

    // Twilio's message can quote the recipient's number (documented 21211 body): the logs
    // keep its status and code only.
    let invalid = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 21211,
            "message": "The 'To' number +15005550001 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400
        })))
        .mount(&invalid)
        .await;
    let to_invalid = SendMessage::new("+15005550001")
        .from("+15017122661")
        .body(BODY_TEXT);
    let err = client(&invalid)
        .messages()
        .create(&to_invalid)
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), Some(400));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("twilio api error 21211 (http 400)"), "{logs}");
    assert!(!logs.contains("15005550001"), "number leaked: {logs}");
    assert!(logs.contains("retrying twilio request"), "{logs}");
    assert!(logs.contains("twilio_request"), "{logs}");
    assert!(logs.contains("method=POST"), "{logs}");
    assert!(logs.contains(&format!("path={MESSAGES_PATH}")), "{logs}");
    assert!(logs.contains("attempt=3"), "{logs}");
    assert!(logs.contains("status=429"), "{logs}");
    assert!(logs.contains("twilio_code=20429"), "{logs}");
    assert!(!logs.contains(TOKEN), "{logs}");
    assert!(!logs.contains(BODY_TEXT), "{logs}");
    assert!(!logs.contains("15550001111"), "query leaked: {logs}");
}
