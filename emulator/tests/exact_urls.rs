//! Callbacks go to exactly the configured URL and are signed over that same string: the request
//! line as it arrives on the socket names the configured path and query byte for byte, and the
//! library's own validator and `StatusWebhook` accept every callback. A property test covers
//! random RFC 3986 URLs (`'`, `!`, `*`, `(`, `)`, percent-escapes, ports, fragments).

mod support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http::Method;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::Api;
use support::raw::{RawReceiver, RawRequest};
use twilio_delivery::webhook::{StatusWebhook, WebhookRequest};
use twilio_delivery::{MemoryStore, SignatureValidator};
use twilio_delivery_emulator::{Chaos, Emulator, EmulatorHandle};

const TO: &str = "+15558675310";
const FROM: &str = "+15005550006";

async fn emulator(seed: u64) -> EmulatorHandle {
    Emulator::builder()
        .seed(seed)
        .chaos(Chaos::calm().step_delay(Duration::from_millis(1), Duration::from_millis(2)))
        .start()
        .await
        .unwrap()
}

/// Sends one message with `callback` and returns the callbacks the receiver got for it.
async fn callbacks_for(
    emu: &EmulatorHandle,
    api: &Api,
    rx: &RawReceiver,
    callback: &str,
) -> Vec<RawRequest> {
    let m = api
        .create(&[
            ("To", TO),
            ("From", FROM),
            ("Body", "hi"),
            ("StatusCallback", callback),
        ])
        .await;
    let sid = m["sid"].as_str().unwrap().to_owned();
    emu.wait_idle(Duration::from_secs(10)).await.unwrap();
    rx.received()
        .into_iter()
        .filter(|r| r.param("MessageSid").as_deref() == Some(sid.as_str()))
        .collect()
}

/// Checks one callback against the configured URL; `Err` says what differs.
async fn check(
    emu: &EmulatorHandle,
    rx: &RawReceiver,
    configured: &str,
    r: &RawRequest,
) -> Result<(), String> {
    let signed = configured.split('#').next().unwrap_or(configured);
    let base = format!("http://127.0.0.1:{}", rx.port);
    let target = signed
        .strip_prefix(&base)
        .ok_or_else(|| format!("{signed} is not under {base}"))?;
    if r.request_line != format!("POST {target} HTTP/1.1") {
        return Err(format!("request line {:?} for {signed}", r.request_line));
    }
    if r.url() != signed {
        return Err(format!("requested {} but configured {signed}", r.url()));
    }
    let headers = r.header_map();
    let validator = SignatureValidator::new(emu.auth_token().clone());
    validator
        .validate_http(&Method::POST, signed, &headers, &r.body)
        .map_err(|e| format!("signature over the configured URL: {e}"))?;
    let webhook = StatusWebhook::builder(validator, Arc::new(MemoryStore::new()))
        .public_url(base)
        .build()
        .map_err(|e| e.to_string())?;
    let answer = webhook
        .handle(WebhookRequest::new(
            &Method::POST,
            &r.target,
            &headers,
            &r.body,
        ))
        .await;
    match answer.outcome {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("StatusWebhook refused {signed}: {e}")),
    }
}

#[tokio::test]
async fn a_quote_in_the_query_is_requested_and_signed_as_configured() {
    let emu = emulator(31).await;
    let api = Api::new(&emu);
    let rx = RawReceiver::start().await;
    // url::Url would send `%27` for each `'` of this query: Twilio, and the emulator, do not.
    let callback = format!(
        "http://127.0.0.1:{}/hooks/it's(1)!*?tenant='acme'&x=%41%2f&y=a+b&z=~:@/?#rc=1&ct=2000",
        rx.port
    );
    let got = callbacks_for(&emu, &api, &rx, &callback).await;
    assert_eq!(got.len(), 2, "sent and delivered");
    for r in &got {
        assert_eq!(
            r.request_line,
            "POST /hooks/it's(1)!*?tenant='acme'&x=%41%2f&y=a+b&z=~:@/? HTTP/1.1"
        );
        check(&emu, &rx, &callback, r).await.unwrap();
    }
    let log = emu.callback_log();
    assert!(
        log.iter()
            .all(|a| a.url == callback.split('#').next().unwrap())
    );
}

#[tokio::test]
async fn credentials_in_the_url_become_basic_auth_and_stay_signed() {
    let emu = emulator(32).await;
    let api = Api::new(&emu);
    let rx = RawReceiver::start().await;
    let callback = format!("http://us%40er:p%3Ass@127.0.0.1:{}/cb?x='1'", rx.port);
    let got = callbacks_for(&emu, &api, &rx, &callback).await;
    assert_eq!(got.len(), 2);
    let expected = base64::engine::general_purpose::STANDARD.encode("us@er:p:ss");
    let validator = SignatureValidator::new(emu.auth_token().clone());
    for r in &got {
        assert_eq!(r.request_line, "POST /cb?x='1' HTTP/1.1");
        assert_eq!(
            r.header("host"),
            Some(format!("127.0.0.1:{}", rx.port).as_str())
        );
        assert_eq!(
            r.header("authorization"),
            Some(format!("Basic {expected}").as_str())
        );
        assert_eq!(r.header("user-agent"), Some("TwilioProxy/1.1"));
        // Signed over the URL as configured, credentials included.
        validator
            .validate_http(&Method::POST, &callback, &r.header_map(), &r.body)
            .unwrap();
    }
}

/// RFC 3986 `pchar` (unreserved, sub-delims, `:`, `@`) or a percent-escape in either case.
const PCHAR: &str = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})";

/// Paths (one to four segments), optional query, optional fragment.
fn suffix() -> impl Strategy<Value = String> {
    let path = format!(r"(?:/{PCHAR}{{0,10}}){{1,4}}");
    let query = format!(r"(?:\?(?:{PCHAR}|[/?]){{0,30}})?");
    let fragment = format!(r"(?:#(?:{PCHAR}|[/?]){{0,12}})?");
    proptest::string::string_regex(&format!("{path}{query}{fragment}")).unwrap()
}

#[test]
fn random_rfc3986_urls_are_requested_and_signed_byte_for_byte() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (emu, api, rx) = runtime.block_on(async {
        let emu = emulator(33).await;
        let api = Api::new(&emu);
        let rx = RawReceiver::start().await;
        (emu, api, rx)
    });
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&suffix(), |suffix| {
        let configured = format!("http://127.0.0.1:{}{suffix}", rx.port);
        runtime.block_on(async {
            let got = callbacks_for(&emu, &api, &rx, &configured).await;
            if got.len() != 2 {
                return Err(TestCaseError::fail(format!(
                    "{configured}: {} callbacks, {:?}",
                    got.len(),
                    emu.callback_log().last()
                )));
            }
            for r in &got {
                check(&emu, &rx, &configured, r)
                    .await
                    .map_err(TestCaseError::fail)?;
            }
            rx.clear();
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
