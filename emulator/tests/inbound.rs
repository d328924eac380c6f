//! Incoming messages: the emulator posts Twilio's signed incoming-message webhook to a real
//! receiver on 127.0.0.1, which checks it with this workspace's `SignatureValidator` and with
//! twilio-python's `RequestValidator`, parses it with `InboundMessage::from_form`, and answers
//! TwiML; the emulator returns the answer and sends the replies it asks for. Also the admin
//! endpoint `POST /emulator/inbound`, redeliveries and refusals.
//!
//! The Python check needs `python3 -m pip install twilio`; without it that part is skipped,
//! saying why, except under CI (the `CI` variable set), where it fails.

mod support;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use support::{Api, basic, closed_port, wire};
use twilio_delivery::SignatureValidator;
use twilio_delivery::ids::{MessageSid, MessagingServiceSid};
use twilio_delivery::inbound::{InboundMessage, OptOut};
use twilio_delivery_emulator::{
    AttemptOutcome, Chaos, DEFAULT_PROFILE_NAME, Emulator, EmulatorError, EmulatorHandle, Inbound,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
const SENDER: &str = "+15558675310";
const NUMBER: &str = "+15005550006";
const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";
const TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<Response><Message>Thanks &amp; welcome!</Message></Response>";

/// One webhook request as the receiver saw it, checked and parsed.
#[derive(Debug, Clone)]
struct Got {
    url: String,
    headers: HeaderMap,
    params: Vec<(String, String)>,
    /// `SignatureValidator::validate_http` over the URL requested.
    valid: Result<(), String>,
    parsed: Result<InboundMessage, String>,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn message(&self) -> &InboundMessage {
        self.parsed.as_ref().expect("InboundMessage::from_form")
    }
}

#[derive(Clone)]
struct RxState {
    base: String,
    validator: Arc<SignatureValidator>,
    log: Arc<Mutex<Vec<Got>>>,
}

/// An app's incoming-message webhook on 127.0.0.1. The path chooses the answer: `/twiml…`
/// answers [`TWIML`], `/plain` a `text/plain` reply, `/empty` an empty `<Response/>`,
/// `/status/{code}` that status, anything else 204.
struct App {
    base: String,
    log: Arc<Mutex<Vec<Got>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Validates, parses and records one request, then answers as its path says.
async fn receive(
    State(state): State<RxState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let url = format!("{}{target}", state.base);
    let valid = state
        .validator
        .validate_http(&method, &url, &headers, &body)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let parsed = InboundMessage::from_form(&body).map_err(|e| e.to_string());
    state.log.lock().unwrap().push(Got {
        url,
        headers: headers.clone(),
        params: form_urlencoded::parse(&body).into_owned().collect(),
        valid,
        parsed,
    });
    let xml = [(header::CONTENT_TYPE, "text/xml")];
    let path = uri.path();
    if path.starts_with("/twiml") {
        return (StatusCode::OK, xml, TWIML).into_response();
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let code = code.parse().unwrap();
        return StatusCode::from_u16(code).unwrap().into_response();
    }
    match path {
        "/plain" => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Got it",
        )
            .into_response(),
        "/empty" => (StatusCode::OK, xml, "<Response/>").into_response(),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

impl App {
    /// Starts the app, validating signatures with `emu`'s auth token.
    async fn start(emu: &EmulatorHandle) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = RxState {
            base: base.clone(),
            validator: Arc::new(SignatureValidator::new(emu.auth_token().clone())),
            log: Arc::clone(&log),
        };
        let app = axum::Router::new().fallback(receive).with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, log, task }
    }

    fn got(&self) -> Vec<Got> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn emulator(seed: u64) -> EmulatorHandle {
    Emulator::builder()
        .seed(seed)
        .chaos(Chaos::calm().step_delay(Duration::from_millis(1), Duration::from_millis(3)))
        .start()
        .await
        .unwrap()
}

/// Asserts that every request is signed as both this crate and twilio-python check it.
fn assert_signed(emu: &EmulatorHandle, got: &[Got]) {
    for g in got {
        assert_eq!(g.valid, Ok(()), "SignatureValidator on {}", g.url);
    }
    python_validates(emu, got);
}

/// Runs twilio-python's `RequestValidator` over every request; skipped (or failed under CI)
/// when the library is missing.
fn python_validates(emu: &EmulatorHandle, got: &[Got]) {
    let dir = Path::new(DATA);
    let check = wire::probe("python3", &["--version"], dir).and_then(|()| {
        wire::probe("python3", &["-c", "import twilio.request_validator"], dir).map_err(|_| {
            "the twilio package is not installed (python3 -m pip install twilio)".into()
        })
    });
    if !wire::required(check, "twilio-python") {
        return;
    }
    let requests: Vec<Value> = got
        .iter()
        .map(|g| {
            json!({
                "url": g.url,
                "params": g.params,
                "signature": g.header("X-Twilio-Signature"),
            })
        })
        .collect();
    let mut child = Command::new("python3")
        .arg("twilio_python_validate.py")
        .current_dir(dir)
        .env("EMU_TOKEN", emu.auth_token().expose())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::from(requests).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "twilio_python_validate.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<bool> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdicts.len(), got.len());
    for (g, ok) in got.iter().zip(verdicts) {
        assert!(ok, "twilio-python's RequestValidator refused {}", g.url);
    }
}

#[tokio::test]
async fn every_field_arrives_signed_and_the_twiml_answer_is_returned() {
    let emu = emulator(61).await;
    let app = App::start(&emu).await;
    // A query Twilio must sign and request byte for byte (`'` and `%2B` kept as written).
    let url = format!("{}/twiml/sms?src='inbound'&k=%2Bv", app.base);
    let body = "Hello, café 👋 & = +";
    let service = MessagingServiceSid::new(SERVICE).unwrap();
    let delivery = emu
        .deliver_inbound(
            Inbound::new(&url, SENDER, NUMBER, body)
                .media("https://example.com/cat.jpg")
                .media_with_type("https://example.com/doc", "application/pdf")
                .messaging_service_sid(service.clone())
                .param("FromCity", "SPRINGFIELD"),
        )
        .await
        .unwrap();

    // What the app answered comes back.
    assert_eq!(delivery.status(), Some(200));
    assert_eq!(delivery.outcome, AttemptOutcome::Response(200));
    assert_eq!(delivery.content_type.as_deref(), Some("text/xml"));
    assert_eq!(delivery.body, TWIML);
    assert_eq!(delivery.url, url);
    assert!(!delivery.redelivery);
    assert_eq!(delivery.attempt, 1);
    let sid = delivery.message_sid.clone();
    assert!(
        sid.as_str().starts_with("MM") && sid.as_str().len() == 34,
        "{sid}"
    );

    let got = app.got();
    assert_eq!(got.len(), 1);
    let g = &got[0];
    assert_eq!(g.url, url, "requested at exactly the configured URL");
    assert_eq!(g.header("User-Agent"), "TwilioProxy/1.1");
    assert!(
        g.header("Content-Type")
            .starts_with("application/x-www-form-urlencoded"),
        "{}",
        g.header("Content-Type")
    );
    assert_eq!(g.header("I-Twilio-Idempotency-Token").len(), 36);
    assert_eq!(
        g.header("I-Twilio-Idempotency-Token"),
        delivery.idempotency_token
    );
    assert_eq!(g.params, delivery.params, "the log holds what was sent");
    assert_signed(&emu, &got);

    let m = g.message();
    assert_eq!(m.sid, sid);
    assert_eq!(m.account_sid.as_ref(), Some(emu.account_sid()));
    assert_eq!(m.messaging_service_sid.as_ref(), Some(&service));
    assert_eq!(m.from, SENDER);
    assert_eq!(m.to, NUMBER);
    assert_eq!(m.body, body);
    assert_eq!(m.num_segments, Some(1));
    assert_eq!(m.media.len(), 2);
    assert_eq!(m.media[0].url, "https://example.com/cat.jpg");
    assert_eq!(m.media[0].content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(m.media[1].url, "https://example.com/doc");
    assert_eq!(m.media[1].content_type.as_deref(), Some("application/pdf"));
    assert_eq!(m.opt_out_type, None);
    assert_eq!(m.from_place.city.as_deref(), Some("SPRINGFIELD"));
    assert_eq!(m.profile_name, None);
    assert_eq!(m.wa_id, None);
    let raw = |k: &str| {
        m.raw
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(raw("SmsStatus"), Some("received"));
    assert_eq!(raw("ApiVersion"), Some("2010-04-01"));
    assert_eq!(raw("SmsSid"), Some(sid.as_str()));
    assert_eq!(raw("SmsMessageSid"), Some(sid.as_str()));
    assert_eq!(raw("NumMedia"), Some("2"));

    // The TwiML's <Message> became an outbound reply to the sender, from the number.
    assert_eq!(delivery.replies.len(), 1);
    let reply = &delivery.replies[0];
    assert_eq!((reply.to.as_str(), reply.from.as_str()), (SENDER, NUMBER));
    assert_eq!(reply.body, "Thanks & welcome!");
    assert_eq!(reply.error_code, None);
    let reply_sid = reply.message_sid.clone().unwrap();
    let api = Api::new(&emu);
    let fetched = api.get(&api.message_path(reply_sid.as_str())).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.json["body"], "Thanks & welcome!");
    assert_eq!(fetched.json["to"], SENDER);
    assert!(emu.truth().contains_key(&reply_sid));

    assert_eq!(emu.inbound_log(), vec![delivery]);
    emu.wait_idle(Duration::from_secs(10)).await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn default_keywords_set_opt_out_type() {
    let emu = emulator(62).await;
    let app = App::start(&emu).await;
    let url = format!("{}/sms", app.base);
    let cases = [
        ("STOP", Some(OptOut::Stop)),
        ("  unsubscribe\n", Some(OptOut::Stop)),
        ("StopAll", Some(OptOut::Stop)),
        ("revoke", Some(OptOut::Stop)),
        ("start", Some(OptOut::Start)),
        ("UNSTOP", Some(OptOut::Start)),
        ("yes", Some(OptOut::Start)),
        ("info", Some(OptOut::Help)),
        ("HELP", Some(OptOut::Help)),
        ("stop it", None),
        ("hello", None),
    ];
    for (body, _) in &cases {
        let d = emu
            .deliver_inbound(Inbound::new(&url, SENDER, NUMBER, *body))
            .await
            .unwrap();
        assert_eq!(d.status(), Some(204));
        assert!(d.replies.is_empty());
    }
    let got = app.got();
    assert_eq!(got.len(), cases.len());
    for ((body, expected), g) in cases.iter().zip(&got) {
        assert_eq!(&g.message().opt_out_type, expected, "{body:?}");
        assert_eq!(g.message().body, *body);
    }
    // Advanced Opt-Out off, or a custom keyword.
    emu.deliver_inbound(Inbound::new(&url, SENDER, NUMBER, "STOP").no_opt_out_type())
        .await
        .unwrap();
    emu.deliver_inbound(Inbound::new(&url, SENDER, NUMBER, "arrêt").opt_out_type("STOP"))
        .await
        .unwrap();
    let got = app.got();
    assert_eq!(got[cases.len()].message().opt_out_type, None);
    assert_eq!(
        got[cases.len() + 1].message().opt_out_type,
        Some(OptOut::Stop)
    );
    assert_signed(&emu, &got);
    emu.shutdown().await;
}

#[tokio::test]
async fn whatsapp_senders_carry_profile_name_and_wa_id() {
    let emu = emulator(63).await;
    let app = App::start(&emu).await;
    let url = format!("{}/sms", app.base);
    let from = "whatsapp:+15551234567";
    emu.deliver_inbound(Inbound::new(&url, from, "whatsapp:+14155238886", "hi"))
        .await
        .unwrap();
    emu.deliver_inbound(
        Inbound::new(&url, from, "whatsapp:+14155238886", "hi")
            .profile_name("Ada")
            .wa_id("4915112345678"),
    )
    .await
    .unwrap();
    let got = app.got();
    let m = got[0].message();
    assert_eq!(m.from, from);
    assert_eq!(m.profile_name.as_deref(), Some(DEFAULT_PROFILE_NAME));
    assert_eq!(m.wa_id.as_deref(), Some("15551234567"));
    let m = got[1].message();
    assert_eq!(m.profile_name.as_deref(), Some("Ada"));
    assert_eq!(m.wa_id.as_deref(), Some("4915112345678"));
    assert_signed(&emu, &got);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_redelivery_keeps_the_message_sid() {
    let emu = emulator(64).await;
    let app = App::start(&emu).await;
    let url = format!("{}/twiml", app.base);
    let first = emu
        .deliver_inbound(Inbound::new(&url, SENDER, NUMBER, "hello"))
        .await
        .unwrap();
    assert!(first.message_sid.as_str().starts_with("SM"));
    let again = emu.redeliver_inbound(&first.message_sid).await.unwrap();
    assert_eq!(again.message_sid, first.message_sid);
    assert_eq!(again.params, first.params, "the same request");
    assert!(again.redelivery && !first.redelivery);
    assert_ne!(again.idempotency_token, first.idempotency_token);
    assert_eq!(again.body, TWIML);
    // Or a message built again under a SID given explicitly.
    let explicit = emu
        .deliver_inbound(
            Inbound::new(&url, SENDER, NUMBER, "hello").message_sid(first.message_sid.clone()),
        )
        .await
        .unwrap();
    assert_eq!(explicit.message_sid, first.message_sid);
    assert!(explicit.redelivery);

    let got = app.got();
    assert_eq!(got.len(), 3);
    for g in &got {
        assert_eq!(g.message().sid, first.message_sid);
    }
    let tokens: std::collections::HashSet<&str> = got
        .iter()
        .map(|g| g.header("I-Twilio-Idempotency-Token"))
        .collect();
    assert_eq!(tokens.len(), 3, "a new idempotency token per delivery");
    assert_signed(&emu, &got);
    // Each answer was TwiML: the reply is sent each time, as Twilio would.
    assert_eq!(emu.truth().len(), 3);
    assert_eq!(emu.inbound_log().len(), 3);

    let unknown = MessageSid::new("SM00000000000000000000000000000000").unwrap();
    assert!(matches!(
        emu.redeliver_inbound(&unknown).await,
        Err(EmulatorError::UnknownInbound(sid)) if sid == unknown
    ));
    emu.wait_idle(Duration::from_secs(10)).await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn answers_other_than_twiml_messages() {
    let emu = emulator(65).await;
    let app = App::start(&emu).await;
    let deliver = |path: &str| {
        emu.deliver_inbound(Inbound::new(
            format!("{}{path}", app.base),
            SENDER,
            NUMBER,
            "hi",
        ))
    };
    let empty = deliver("/empty").await.unwrap();
    assert_eq!(empty.body, "<Response/>");
    assert!(empty.replies.is_empty());
    let plain = deliver("/plain").await.unwrap();
    assert_eq!(plain.replies.len(), 1, "text/plain is sent as a reply");
    assert_eq!(plain.replies[0].body, "Got it");
    let failed = deliver("/status/500").await.unwrap();
    assert_eq!(failed.status(), Some(500));
    assert!(failed.replies.is_empty());
    assert_eq!(app.got().len(), 3, "a 500 is not retried by default");
    // Replies can be turned off.
    let quiet = emu
        .deliver_inbound(
            Inbound::new(format!("{}/twiml", app.base), SENDER, NUMBER, "hi").send_replies(false),
        )
        .await
        .unwrap();
    assert_eq!(quiet.body, TWIML);
    assert!(quiet.replies.is_empty());
    assert_eq!(emu.truth().len(), 1, "only the text/plain reply was sent");
    emu.wait_idle(Duration::from_secs(10)).await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn an_invalid_url_is_refused_and_nothing_is_sent() {
    let emu = emulator(66).await;
    let app = App::start(&emu).await;
    for url in [
        String::new(),
        "not a url".to_owned(),
        "ftp://127.0.0.1/sms".to_owned(),
        format!("{}/a b", app.base),
        format!("{}/caf\u{e9}", app.base),
        format!("http://bad_host:{}/sms", closed_port().await),
    ] {
        let r = emu
            .deliver_inbound(Inbound::new(&url, SENDER, NUMBER, "hi"))
            .await;
        assert!(
            matches!(r, Err(EmulatorError::InvalidInbound(_))),
            "{url:?}: {r:?}"
        );
    }
    let r = emu
        .deliver_inbound(Inbound::new(format!("{}/sms", app.base), "", NUMBER, "hi"))
        .await;
    assert!(matches!(r, Err(EmulatorError::InvalidInbound(_))), "{r:?}");
    assert!(app.got().is_empty());
    assert!(emu.inbound_log().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn no_answer_is_an_error_after_the_default_retry() {
    let emu = emulator(67).await;
    let url = format!("http://127.0.0.1:{}/sms", closed_port().await);
    let r = emu
        .deliver_inbound(Inbound::new(&url, SENDER, NUMBER, "hi"))
        .await;
    let Err(EmulatorError::InboundNotAnswered {
        message_sid,
        outcome,
    }) = r
    else {
        panic!("{r:?}");
    };
    assert_eq!(outcome, AttemptOutcome::ConnectFailed);
    let log = emu.inbound_log();
    assert_eq!(log.len(), 2, "one retry of a failed connection");
    assert!(log.iter().all(|d| d.message_sid == message_sid));
    assert_eq!((log[0].attempt, log[1].attempt), (1, 2));
    assert_eq!(log[1].status(), None);
    emu.shutdown().await;
}

#[tokio::test]
async fn sids_come_from_the_seed_and_reset_rewinds_them() {
    let url = format!("http://127.0.0.1:{}/sms#rc=0", closed_port().await);
    let sid_of = |r: Result<_, EmulatorError>| match r {
        Err(EmulatorError::InboundNotAnswered { message_sid, .. }) => message_sid,
        other => panic!("{other:?}"),
    };
    let a = emulator(68).await;
    let b = emulator(68).await;
    let first = sid_of(
        a.deliver_inbound(Inbound::new(&url, SENDER, NUMBER, "x"))
            .await,
    );
    assert_eq!(
        first,
        sid_of(
            b.deliver_inbound(Inbound::new(&url, SENDER, NUMBER, "x"))
                .await
        )
    );
    let second = sid_of(
        a.deliver_inbound(Inbound::new(&url, SENDER, NUMBER, "x"))
            .await,
    );
    assert_ne!(first, second);
    assert_eq!(a.inbound_log().len(), 2, "#rc=0: no retry");
    a.reset();
    assert!(a.inbound_log().is_empty());
    assert_eq!(
        first,
        sid_of(
            a.deliver_inbound(Inbound::new(&url, SENDER, NUMBER, "x"))
                .await
        )
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn the_inbound_and_callback_logs_are_bounded_in_bytes() {
    const BUDGET: usize = 256 * 1024;
    let emu = Emulator::builder()
        .seed(71)
        .chaos(Chaos::calm().step_delay(Duration::from_millis(1), Duration::from_millis(3)))
        .max_log_bytes(BUDGET)
        .start()
        .await
        .unwrap();
    let app = App::start(&emu).await;
    let url = format!("{}/ok", app.base);
    let body = "x".repeat(64 * 1024);
    let mut last = None;
    for _ in 0..10 {
        let d = emu
            .deliver_inbound(Inbound::new(&url, SENDER, NUMBER, body.as_str()))
            .await
            .unwrap();
        last = Some(d.message_sid);
    }
    let log = emu.inbound_log();
    let kept: usize = log
        .iter()
        .flat_map(|d| &d.params)
        .map(|(k, v)| k.len() + v.len())
        .sum();
    assert!(kept <= BUDGET, "{kept} bytes kept");
    assert!(
        (2..10).contains(&log.len()),
        "{} deliveries kept",
        log.len()
    );
    assert_eq!(
        log.last().map(|d| &d.message_sid),
        last.as_ref(),
        "the newest kept"
    );

    // The callback log too: each attempt keeps its URL, here about 4 KB.
    let rx = support::Receiver::start(emu.auth_token()).await;
    let callback = format!("{}/cb?pad={}", rx.base, "p".repeat(3900));
    let api = Api::new(&emu);
    for _ in 0..40 {
        api.create(&[
            ("To", SENDER),
            ("From", NUMBER),
            ("Body", "x"),
            ("StatusCallback", &callback),
        ])
        .await;
    }
    emu.wait_idle(Duration::from_secs(10)).await.unwrap();
    assert_eq!(rx.received().len(), 80, "every callback was sent");
    let log = emu.callback_log();
    let kept: usize = log.iter().map(|a| a.url.len()).sum();
    assert!(kept <= BUDGET, "{kept} bytes kept");
    assert!((2..80).contains(&log.len()), "{} attempts kept", log.len());
    emu.shutdown().await;
}

/// POSTs a form to an admin endpoint with `auth`.
async fn admin_post(
    emu: &EmulatorHandle,
    auth: Option<&str>,
    pairs: &[(&str, &str)],
) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let mut req = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/emulator/inbound", emu.base_url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(auth) = auth {
        req = req.header("Authorization", auth);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn the_admin_endpoint_delivers_end_to_end() {
    let emu = emulator(69).await;
    let app = App::start(&emu).await;
    let auth = basic(emu.account_sid().as_str(), emu.auth_token().expose());
    let url = format!("{}/twiml?via=admin", app.base);
    let (status, out) = admin_post(
        &emu,
        Some(&auth),
        &[
            ("Url", &url),
            ("From", SENDER),
            ("To", NUMBER),
            ("Body", "Stop"),
            ("MediaUrl", "https://example.com/a.png"),
            ("MediaUrl", "https://example.com/b"),
            ("MediaContentType", ""),
            ("MediaContentType", "video/mp4"),
            ("MessagingServiceSid", SERVICE),
        ],
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let sid = out["message_sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("MM"), "{out}");
    assert_eq!(out["status"], 200);
    assert_eq!(out["content_type"], "text/xml");
    assert_eq!(out["body"], TWIML);
    assert_eq!(out["redelivery"], false);
    assert_eq!(out["params"]["OptOutType"], "STOP");
    assert_eq!(out["replies"][0]["to"], SENDER);
    assert!(out["replies"][0]["message_sid"].is_string(), "{out}");

    let got = app.got();
    assert_eq!(got.len(), 1);
    let m = got[0].message();
    assert_eq!(m.sid.as_str(), sid);
    assert_eq!(m.body, "Stop");
    assert_eq!(m.opt_out_type, Some(OptOut::Stop));
    assert_eq!(m.media[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(m.media[1].content_type.as_deref(), Some("video/mp4"));
    assert_eq!(
        m.messaging_service_sid.as_ref().map(|s| s.as_str()),
        Some(SERVICE)
    );

    // MessageSid alone redelivers.
    let (status, again) = admin_post(&emu, Some(&auth), &[("MessageSid", &sid)]).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["message_sid"], sid.as_str());
    assert_eq!(again["redelivery"], true);
    assert_eq!(app.got()[1].message().sid.as_str(), sid);
    assert_signed(&emu, &app.got());

    // The log over HTTP.
    let api = Api::new(&emu);
    let log = api.get("/emulator/inbound").await;
    assert_eq!(log.status, 200);
    let entries = log.json["inbound"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["outcome"], "response");
    assert_eq!(
        api.get("/emulator/info").await.json["inbound_deliveries"],
        2
    );

    // Refusals: no credentials, an invalid URL, missing fields, an unknown SID, no answer.
    let (status, _) = admin_post(&emu, None, &[("Url", &url)]).await;
    assert_eq!(status, 401);
    let (status, e) = admin_post(
        &emu,
        Some(&auth),
        &[("Url", "http://h/a b"), ("From", SENDER), ("To", NUMBER)],
    )
    .await;
    assert_eq!((status, e["code"].as_u64()), (400, Some(20001)), "{e}");
    let (status, e) = admin_post(&emu, Some(&auth), &[("Url", &url), ("To", NUMBER)]).await;
    assert_eq!((status, e["code"].as_u64()), (400, Some(20001)), "{e}");
    let (status, e) = admin_post(
        &emu,
        Some(&auth),
        &[("MessageSid", "SM00000000000000000000000000000000")],
    )
    .await;
    assert_eq!((status, e["code"].as_u64()), (404, Some(20404)), "{e}");
    let dead = format!("http://127.0.0.1:{}/sms#rc=0", closed_port().await);
    let (status, e) = admin_post(
        &emu,
        Some(&auth),
        &[("Url", &dead), ("From", SENDER), ("To", NUMBER)],
    )
    .await;
    assert_eq!((status, e["code"].as_u64()), (502, Some(11200)), "{e}");
    assert_eq!(app.got().len(), 2, "refused requests never reach the app");
    emu.wait_idle(Duration::from_secs(10)).await.unwrap();
    emu.shutdown().await;
}
