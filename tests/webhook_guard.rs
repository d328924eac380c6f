//! The signature guard in front of any route: the tower layer on a hyper-style service and on
//! an axum route, the actix-web extractor and the warp filter, each over a real server on
//! 127.0.0.1. Anchored on Twilio's own known-answer vector (token `12345`, the documented
//! URL and parameters, signature `RSOYDt4T1cUTdK1PDd93/VVr8B8=`), not on this crate's `sign()`:
//! a valid request reaches the inner handler once with the same body; a tampered, unsigned or
//! oversized one is answered 403/413 and the handler never runs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use tower::ServiceExt as _;
use twilio_delivery::adapters::tower::TwilioSignatureLayer;
use twilio_delivery::guard::BasicCredentials;
use twilio_delivery::{AuthToken, SignatureValidator, ValidatedWebhook, WebhookGuard};

const BASE: &str = "https://mycompany.com";
const TARGET: &str = "/myapp.php?foo=1&bar=2";
const BODY: &str = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
const SIGNATURE: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

fn guard(limit: usize, basic: bool) -> WebhookGuard {
    let mut builder = WebhookGuard::builder(SignatureValidator::new(AuthToken::new("12345")))
        .public_url(BASE)
        .body_limit(limit);
    if basic {
        builder = builder.basic_auth(BasicCredentials::new("twilio", "s3cret"));
    }
    builder.build().unwrap()
}

/// What the handlers saw.
#[derive(Default)]
struct Seen {
    calls: AtomicUsize,
    bodies: Mutex<Vec<String>>,
    digits: Mutex<Vec<String>>,
}

impl Seen {
    fn record(&self, body: &str, hook: &ValidatedWebhook) {
        // Numbers and text stay out of `Debug` (here the caller's number).
        let debug = format!("{hook:?}");
        assert!(!debug.contains("4158675309"), "{debug}");
        assert!(debug.contains("[5 pairs]"), "{debug}");
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.bodies.lock().unwrap().push(body.to_owned());
        let digits = hook
            .params
            .iter()
            .find(|(k, _)| k == "Digits")
            .map(|(_, v)| v.clone());
        self.digits.lock().unwrap().push(digits.unwrap_or_default());
    }
}

/// The cases every mount must answer alike: (signature, body, basic, expected status).
fn cases() -> Vec<(Option<&'static str>, String, Option<&'static str>, u16)> {
    let tampered = BODY.replace("Digits=1234", "Digits=1235");
    vec![
        (Some(SIGNATURE), BODY.to_owned(), None, 200),
        (Some(SIGNATURE), tampered, None, 403),
        (None, BODY.to_owned(), None, 403),
        (Some("not base64!"), BODY.to_owned(), None, 403),
        (
            Some(SIGNATURE),
            format!("{BODY}&Pad={}", "x".repeat(400)),
            None,
            413,
        ),
    ]
}

async fn send(addr: SocketAddr, signature: Option<&str>, body: String, auth: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}{TARGET}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(s) = signature {
        request = request.header("x-twilio-signature", s);
    }
    if let Some(a) = auth {
        request = request.header("authorization", a);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn check_mount(addr: SocketAddr, seen: &Seen) {
    for (signature, body, auth, expected) in cases() {
        let status = send(addr, signature, body.clone(), auth).await;
        assert_eq!(status, expected, "{signature:?} {body}");
    }
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        1,
        "only the valid request got through"
    );
    assert_eq!(seen.bodies.lock().unwrap().as_slice(), [BODY]);
    assert_eq!(seen.digits.lock().unwrap().as_slice(), ["1234"]);
}

#[tokio::test]
async fn the_layer_guards_a_hyper_style_service() {
    let seen = Arc::new(Seen::default());
    let inner_seen = seen.clone();
    let inner = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
        let seen = inner_seen.clone();
        async move {
            let hook = request
                .extensions()
                .get::<ValidatedWebhook>()
                .cloned()
                .unwrap();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            seen.record(std::str::from_utf8(&body).unwrap(), &hook);
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from("ok"))))
        }
    });
    let service = tower::Layer::layer(&TwilioSignatureLayer::new(guard(256, false)), inner);
    for (signature, body, _, expected) in cases() {
        let mut request =
            http::Request::post(TARGET).header("content-type", "application/x-www-form-urlencoded");
        if let Some(s) = signature {
            request = request.header("x-twilio-signature", s);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), expected);
    }
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
    assert_eq!(seen.bodies.lock().unwrap().as_slice(), [BODY]);
}

/// An axum `POST` route that records what the layer let through into `seen`.
fn recording(seen: &Arc<Seen>) -> axum::routing::MethodRouter {
    let seen = seen.clone();
    axum::routing::post(move |hook: ValidatedWebhook, body: String| {
        let seen = seen.clone();
        async move {
            seen.record(&body, &hook);
            "ok"
        }
    })
}

async fn listen() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[tokio::test]
async fn the_layer_guards_an_axum_route_and_the_extractor_reads_it() {
    let seen = Arc::new(Seen::default());
    let app = axum::Router::new()
        .route("/myapp.php", recording(&seen))
        .layer(TwilioSignatureLayer::new(guard(256, false)));
    let (listener, addr) = listen().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    check_mount(addr, &seen).await;
}

#[tokio::test]
async fn the_layer_checks_the_whole_path_inside_a_nested_axum_router() {
    let seen = Arc::new(Seen::default());
    // The inner router sees `/`, the signature covers `/myapp.php?foo=1&bar=2`.
    let inner = axum::Router::new()
        .route("/", recording(&seen))
        .layer(TwilioSignatureLayer::new(guard(256, false)));
    let app = axum::Router::new().nest("/myapp.php", inner);
    let (listener, addr) = listen().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    check_mount(addr, &seen).await;
}

#[tokio::test]
async fn the_axum_extractor_guards_a_route_without_the_layer() {
    use twilio_delivery::adapters::axum::TwilioForm;
    let seen = Arc::new(Seen::default());
    let handler_seen = seen.clone();
    let app = axum::Router::new()
        .route(
            "/myapp.php",
            axum::routing::post(move |TwilioForm(hook): TwilioForm| {
                let seen = handler_seen.clone();
                async move {
                    seen.record(BODY, &hook);
                    "ok"
                }
            }),
        )
        .with_state(guard(256, false));
    let (listener, addr) = listen().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    check_mount(addr, &seen).await;
}

#[tokio::test]
async fn the_warp_filter_guards_a_route() {
    use warp::Filter;
    let seen = Arc::new(Seen::default());
    let handler_seen = seen.clone();
    let route = warp::path!("myapp.php")
        .and(warp::post())
        .and(twilio_delivery::adapters::warp::validated(guard(
            256, false,
        )))
        .map(move |hook: ValidatedWebhook| {
            handler_seen.record(BODY, &hook);
            "ok"
        })
        .recover(twilio_delivery::adapters::warp::recover);
    let (listener, addr) = listen().await;
    tokio::spawn(warp::serve(route).incoming(listener).run());
    check_mount(addr, &seen).await;
}

#[test]
fn the_actix_web_extractor_guards_a_route() {
    use actix_web::{App, HttpServer, web};
    let seen = Arc::new(Seen::default());
    let handler_seen = seen.clone();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let seen = handler_seen.clone();
                App::new()
                    .app_data(web::Data::new(guard(256, false)))
                    .route(
                        "/myapp.php",
                        web::post().to(move |hook: ValidatedWebhook| {
                            let seen = seen.clone();
                            async move {
                                seen.record(BODY, &hook);
                                "ok"
                            }
                        }),
                    )
            })
            .workers(1)
            .disable_signals()
            .listen(std_listener)
            .unwrap()
            .run()
            .await
            .unwrap();
        });
    });
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(check_mount(addr, &seen));
}

#[tokio::test]
async fn basic_credentials_are_required_when_configured() {
    let seen = Arc::new(Seen::default());
    let handler_seen = seen.clone();
    let app = axum::Router::new()
        .route(
            "/myapp.php",
            axum::routing::post(move |hook: ValidatedWebhook, body: String| {
                let seen = handler_seen.clone();
                async move {
                    seen.record(&body, &hook);
                    "ok"
                }
            }),
        )
        .layer(TwilioSignatureLayer::new(guard(256, true)));
    let (listener, addr) = listen().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    // base64("twilio:s3cret") = dHdpbGlvOnMzY3JldA== (`printf twilio:s3cret | base64`).
    let good = Some("Basic dHdpbGlvOnMzY3JldA==");
    assert_eq!(send(addr, Some(SIGNATURE), BODY.into(), None).await, 401);
    assert_eq!(
        send(
            addr,
            Some(SIGNATURE),
            BODY.into(),
            Some("Basic dHdpbGlvOng=")
        )
        .await,
        401
    );
    assert_eq!(send(addr, None, BODY.into(), good).await, 403);
    assert_eq!(send(addr, Some(SIGNATURE), BODY.into(), good).await, 200);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn sharedkey_signed_requests_pass_the_layer_with_the_key_the_settings_header_names() {
    use twilio_delivery::signature::{Algorithm, sign_with};
    let validator = SignatureValidator::builder()
        .key("primary", AuthToken::new("12345"))
        .sha256_key("KSshared", b"shared-secret".to_vec())
        .build()
        .unwrap();
    let guard = WebhookGuard::builder(validator)
        .public_url(BASE)
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/myapp.php",
            axum::routing::post(|hook: ValidatedWebhook| async move {
                hook.verified.key_id().to_owned()
            }),
        )
        .layer(TwilioSignatureLayer::new(guard));
    let (listener, addr) = listen().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let pairs: Vec<(String, String)> = form_urlencoded::parse(BODY.as_bytes())
        .into_owned()
        .collect();
    let url = format!("{BASE}{TARGET}");
    let signature = sign_with(Algorithm::HmacSha256, b"shared-secret", &url, &pairs);
    let post = |settings: &'static str, signature: String| {
        reqwest::Client::new()
            .post(format!("http://{addr}{TARGET}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .header("x-twilio-webhooks-signature-settings", settings)
            .body(BODY)
            .send()
    };
    let ok = post("key=KSshared,algorithm=HMAC_SHA256", signature.clone())
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "KSshared");
    // The header names another key, or an unknown one: refused.
    let other = post("key=KSother,algorithm=HMAC_SHA256", signature.clone())
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    // Without the settings header, a SHA-256 signature is not guessed from its length.
    let bare = reqwest::Client::new()
        .post(format!("http://{addr}{TARGET}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);
}
