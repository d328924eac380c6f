//! Failures: Twilio's error JSON, non-JSON error bodies, timeouts, refused connections, the
//! retry rules (429 retried, a create never retried on 5xx/timeout), local validation that
//! makes no request, and secrets kept out of errors.

mod client_support;

use std::error::Error as _;
use std::time::{Duration, Instant};

use client_support::*;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use twilio_delivery::client::{ListFilter, RetryPolicy, SendMessage};
use twilio_delivery::{AccountSid, Client, Error, MessageSid, MessagingServiceSid};
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BODY_TEXT: &str = "private body text 4711";

fn sms() -> SendMessage {
    SendMessage::new("+15558675310")
        .from("+15017122661")
        .body(BODY_TEXT)
}

fn sid() -> MessageSid {
    MessageSid::new(SM).unwrap()
}

fn fetch_example() -> Value {
    examples(&spec(), SPEC_INSTANCE, "get", "200").remove(0).1
}

/// Neither the error's text, its `Debug` nor any of its sources mention the token or the body.
fn assert_clean(err: &Error) {
    let mut texts = vec![err.to_string(), format!("{err:?}")];
    let mut source = err.source();
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    for t in texts {
        assert!(!t.contains(TOKEN), "token leaked: {t}");
        assert!(!t.contains(BODY_TEXT), "body leaked: {t}");
    }
}

#[tokio::test]
async fn documented_error_bodies_map_to_api_errors() {
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/twilio_errors.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for case in data["errors"].as_array().unwrap() {
        let server = MockServer::start().await;
        let status = case["http_status"].as_u64().unwrap() as u16;
        let body = &case["body"];
        let (verb, route) = match case["op"].as_str().unwrap() {
            "create" => ("POST", MESSAGES_PATH),
            "fetch" => ("GET", MESSAGE_PATH),
            "cancel" => ("POST", MESSAGE_PATH),
            "delete" => ("DELETE", MESSAGE_PATH),
            other => panic!("unknown op {other}"),
        };
        Mock::given(method(verb))
            .and(path(route))
            .respond_with(ResponseTemplate::new(status).set_body_json(body.clone()))
            .mount(&server)
            .await;
        let client = client_with(&server, RetryPolicy::none());
        let m = client.messages();
        let err = match case["op"].as_str().unwrap() {
            "create" => m.create(&sms()).await.map(|_| ()),
            "fetch" => m.fetch(&sid()).await.map(|_| ()),
            "cancel" => m.cancel(&sid()).await.map(|_| ()),
            _ => m.delete(&sid()).await,
        }
        .unwrap_err();
        let api = err.api_error().unwrap_or_else(|| panic!("{err:?}"));
        let code = body["code"].as_u64().unwrap() as u32;
        assert_eq!(api.http_status, status);
        assert_eq!(api.code, Some(code));
        assert_eq!(err.code(), Some(code));
        assert_eq!(err.http_status(), Some(status));
        assert_eq!(api.message, body["message"].as_str().unwrap());
        assert_eq!(api.more_info.as_deref(), body["more_info"].as_str());
        assert_eq!(api.detail.as_deref(), body["detail"].as_str());
        assert_eq!(err.is_retryable(), code == 20429, "{code}");
        assert!(err.to_string().contains(&code.to_string()));
        assert_clean(&err);
    }
}

#[tokio::test]
async fn an_html_502_still_gives_an_api_error_and_a_create_is_not_retried() {
    let server = MockServer::start().await;
    let html = "<html><head><title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n</body></html>";
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(502).set_body_raw(html, "text/html"))
        .mount(&server)
        .await;
    let err = client(&server).messages().create(&sms()).await.unwrap_err();
    let api = err.api_error().unwrap();
    assert_eq!(api.http_status, 502);
    assert_eq!(api.code, None);
    assert_eq!(api.message, "bad gateway (non-json body)");
    let detail = api.detail.as_deref().unwrap();
    assert!(
        !detail.contains('<') && detail.contains("502 Bad Gateway"),
        "{detail}"
    );
    assert!(err.is_retryable() && !err.is_safe_to_resend());
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_clean(&err);
}

#[tokio::test]
async fn a_500_answer_to_a_create_is_never_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({
            "code": 20500, "message": "Internal Server Error",
            "more_info": "https://www.twilio.com/docs/errors/20500", "status": 500
        })))
        .mount(&server)
        .await;
    let err = client(&server).messages().create(&sms()).await.unwrap_err();
    assert_eq!(err.http_status(), Some(500));
    assert_eq!(err.code(), Some(20500));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_500_answer_to_an_update_is_never_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGE_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_raw("oops", "text/plain"))
        .mount(&server)
        .await;
    let err = client(&server).messages().cancel(&sid()).await.unwrap_err();
    assert_eq!(err.http_status(), Some(500));
    let err = client(&server).messages().redact(&sid()).await.unwrap_err();
    assert_eq!(err.http_status(), Some(500));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_fetch_is_retried_on_5xx_until_it_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGE_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_raw("", "text/plain"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(MESSAGE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(fetch_example()))
        .mount(&server)
        .await;
    let m = client(&server).messages().fetch(&sid()).await.unwrap();
    assert_eq!(m.sid, sid());
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_create_is_retried_on_429_twice_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "code": 20429, "message": "Too Many Requests",
            "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429
        })))
        .up_to_n_times(2)
        .with_priority(1)
        .expect(2)
        .mount(&server)
        .await;
    let created = examples(&spec(), SPEC_LIST, "post", "201").remove(0).1;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(created))
        .expect(1)
        .mount(&server)
        .await;
    let msg = client(&server).messages().create(&sms()).await.unwrap();
    assert_eq!(msg.status.as_str(), "queued");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    // The same body each time.
    assert!(requests.windows(2).all(|w| w[0].body == w[1].body));
}

#[tokio::test]
async fn retries_stop_after_max_attempts_and_honour_a_capped_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3600")
                .set_body_json(
                    json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
                ),
        )
        .mount(&server)
        .await;
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(Duration::from_micros(10))
        .max_delay(Duration::from_micros(10))
        .max_retry_after(Duration::from_millis(150))
        .build();
    let started = Instant::now();
    let err = client_with(&server, policy)
        .messages()
        .create(&sms())
        .await
        .unwrap_err();
    // Two waits of Retry-After capped at 150 ms (the backoff alone would be microseconds).
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(err.api_error().unwrap().is_rate_limited());
    assert!(err.is_safe_to_resend());
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn timeouts_are_reported_and_a_timed_out_create_is_not_retried() {
    let server = MockServer::start().await;
    let created = examples(&spec(), SPEC_LIST, "post", "201").remove(0).1;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(created)
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(MESSAGE_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fetch_example())
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&server)
        .await;
    let client = Client::builder(AccountSid::new(AC).unwrap(), TOKEN.into())
        .base_url(Url::parse(&server.uri()).unwrap())
        .timeout(Duration::from_millis(100))
        .retry_policy(fast_retry())
        .build()
        .unwrap();
    let err = client.messages().create(&sms()).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(matches!(err, Error::Timeout(_)));
    assert!(err.is_retryable() && !err.is_safe_to_resend());
    assert_clean(&err);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests.len(),
        1,
        "a create that timed out must not be resent"
    );

    // A read is retried on timeouts: three tries in all.
    let err = client.messages().fetch(&sid()).await.unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

/// A socket bound to a free port of 127.0.0.1 that does not listen: connecting to it is refused.
fn bound_socket() -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    // A port held by a socket that never listens: connections to it are refused, and no other
    // test can take it while the socket lives.
    let held = bound_socket();
    let port = held.local_addr().unwrap().port();
    let client = Client::builder(AccountSid::new(AC).unwrap(), TOKEN.into())
        .base_url(Url::parse(&format!("http://127.0.0.1:{port}")).unwrap())
        .retry_policy(fast_retry())
        .build()
        .unwrap();
    let err = client.messages().create(&sms()).await.unwrap_err();
    assert!(matches!(err, Error::Connect(_)), "{err:?}");
    assert!(err.is_safe_to_resend() && err.is_retryable() && !err.is_timeout());
    assert!(err.source().is_some());
    assert_clean(&err);
}

#[tokio::test]
async fn a_connect_failure_is_retried_even_for_a_create() {
    // Hold a port; nothing listens on it for the first 100 ms, so the first tries are
    // refused, then the same socket starts listening (no other test can take the port).
    let held = bound_socket();
    let addr = held.local_addr().unwrap();
    // Up to 200 tries, each after a full-jitter wait under 20 ms: they span well over 100 ms
    // (the chance that 199 such waits add up to under 100 ms is nil).
    let policy = RetryPolicy::builder()
        .max_attempts(200)
        .base_delay(Duration::from_millis(20))
        .max_delay(Duration::from_millis(20))
        .build();
    let client = Client::builder(AccountSid::new(AC).unwrap(), TOKEN.into())
        .base_url(Url::parse(&format!("http://{addr}")).unwrap())
        .retry_policy(policy)
        .build()
        .unwrap();
    let created = examples(&spec(), SPEC_LIST, "post", "201").remove(0).1;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let listener = held.listen(64).unwrap().into_std().unwrap();
        let server = MockServer::builder().listener(listener).start().await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(ResponseTemplate::new(201).set_body_json(created))
            .mount(&server)
            .await;
        let _ = tx.send(server);
    });
    let started = Instant::now();
    let msg = client.messages().create(&sms()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(msg.status.as_str(), "queued");
    let server = rx.await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn local_validation_errors_make_no_request() {
    let server = MockServer::start().await;
    let client = client(&server);
    let mg = MessagingServiceSid::new("MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
    let media = Url::parse("https://example.com/a.png").unwrap();
    let now = time::OffsetDateTime::now_utc();
    let cases: Vec<(&str, SendMessage)> = vec![
        ("To", SendMessage::new("").from("+1").body("x")),
        ("From", SendMessage::new("+1").body("x")),
        ("Body", SendMessage::new("+1").from("+2")),
        ("MediaUrl", sms().media_urls(std::iter::repeat_n(media, 11))),
        ("ContentVariables", sms().content_variables([("1", "x")])),
        (
            "SendAt",
            sms()
                .messaging_service(mg.clone())
                .schedule_at(now + Duration::from_secs(60)),
        ),
        (
            "SendAt",
            sms()
                .messaging_service(mg.clone())
                .schedule_at(now + Duration::from_secs(36 * 86_400)),
        ),
        ("SendAt", sms().schedule_at(now + Duration::from_secs(3600))),
        (
            "SendAt",
            sms()
                .messaging_service(mg)
                .send_at(now + Duration::from_secs(3600)),
        ),
        ("ValidityPeriod", sms().validity_period(Duration::ZERO)),
    ];
    for (field, msg) in cases {
        let err = client.messages().create(&msg).await.unwrap_err();
        match &err {
            Error::InvalidRequest { field: f, .. } => assert_eq!(*f, field, "{err}"),
            other => panic!("expected InvalidRequest for {field}, got {other:?}"),
        }
        assert!(!err.is_retryable());
        assert_clean(&err);
    }
    let items: Vec<_> = client
        .messages()
        .list(&ListFilter::new().page_size(1001))
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    assert!(matches!(
        items[0],
        Err(Error::InvalidRequest {
            field: "PageSize",
            ..
        })
    ));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_garbled_success_body_is_a_decode_error_that_quotes_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            format!(r#"{{"sid": 5, "body": "{BODY_TEXT}"}}"#),
            "application/json",
        ))
        .mount(&server)
        .await;
    let err = client(&server).messages().fetch(&sid()).await.unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert_clean(&err);
}

#[tokio::test]
async fn a_create_redirected_elsewhere_sends_nothing_there() {
    let api = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/grab", elsewhere.uri()).as_str()),
        )
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(fetch_example()))
        .mount(&elsewhere)
        .await;
    let err = client(&api).messages().create(&sms()).await.unwrap_err();
    assert_eq!(err.http_status(), Some(307), "{err:?}");
    assert_clean(&err);
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_delete_retried_after_a_lost_answer_that_finds_the_message_gone_succeeds() {
    let server = MockServer::start().await;
    let gone =
        json!({"code": 20404, "message": "The requested resource was not found", "status": 404});
    // The first try's answer is a 500 (say the delete went through and the answer was lost).
    Mock::given(method("DELETE"))
        .and(path(MESSAGE_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_raw("", "text/plain"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(MESSAGE_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_json(gone))
        .mount(&server)
        .await;
    client(&server).messages().delete(&sid()).await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    // A first try that finds nothing still says so.
    let err = client(&server).messages().delete(&sid()).await.unwrap_err();
    assert_eq!(err.http_status(), Some(404));
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_body_too_large_to_read_is_not_fetched_again() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGE_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(vec![b' '; 32 * 1024 * 1024 + 1], "application/json"),
        )
        .mount(&server)
        .await;
    let err = client(&server).messages().fetch(&sid()).await.unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
