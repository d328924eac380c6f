//! One `PublicEndpoint` gives the `StatusCallback` the client sends and the URL the webhook
//! validates, byte for byte: for every way of configuring it (host case, ports, prefixes a proxy
//! strips, raw queries with escapes and sub-delimiters, connection overrides), a callback
//! signed over the URL Twilio was given is accepted, with or without the override fragment
//! in the signed URL. Then, for each framework, the URL the real client sends is captured from
//! the wire and a callback signed over it is accepted by the mounted webhook.

mod common;
#[path = "adapters/transport.rs"]
#[allow(dead_code)]
mod transport;

use std::sync::Arc;

use common::*;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use proptest::prelude::*;
use serde_json::json;
use transport::{Framing, Kind, Mounted, Req};
use twilio_delivery::endpoint::{ConnectionOverrides, PublicEndpoint, RetryOn};
use twilio_delivery::signature::sign;
use twilio_delivery::webhook::{StatusWebhook, WebhookRequest};
use twilio_delivery::{AccountSid, Client, MemoryStore, SendMessage, SignatureValidator};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// What Twilio requests: the callback URL without its fragment, split into the base Twilio
/// calls and the target the app receives once the proxy stripped `prefix`. Read with
/// `http::Uri`, which keeps the string as it is.
fn requested(callback: &str, prefix: &str) -> (String, String) {
    let without_fragment = callback.split('#').next().unwrap();
    let uri: http::Uri = without_fragment
        .parse()
        .expect("the callback is a valid URI");
    let path_and_query = uri.path_and_query().unwrap().as_str();
    let target = path_and_query.strip_prefix(prefix).unwrap().to_owned();
    (without_fragment.to_owned(), target)
}

fn form_headers(signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "x-twilio-signature",
        HeaderValue::from_str(signature).unwrap(),
    );
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    h
}

fn host() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9-]{0,10}(\\.[a-zA-Z][a-zA-Z0-9]{0,6}){1,2}"
}

/// Path segments and queries with what RFC 3986 allows unescaped, and escapes.
fn segment() -> impl Strategy<Value = String> {
    "([a-zA-Z0-9._~!$&'()*+,;=:@-]|%[0-9A-F]{2}){1,8}"
}

fn query() -> impl Strategy<Value = String> {
    "([a-zA-Z0-9._~!$'()*+,;:@/?=&-]|%[0-9a-fA-F]{2}){0,16}"
}

fn overrides() -> impl Strategy<Value = Option<ConnectionOverrides>> {
    prop_oneof![
        Just(None),
        Just(Some(ConnectionOverrides::recommended())),
        (0u8..=5).prop_map(|rc| Some(
            ConnectionOverrides::builder()
                .retry_count(rc)
                .retry_on(RetryOn::All)
                .build()
                .unwrap()
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_url_sent_is_a_url_the_webhook_accepts(
        https in any::<bool>(),
        host in host(),
        port in proptest::option::of(1u16..),
        prefix in proptest::collection::vec(segment(), 0..2),
        route in proptest::collection::vec(segment(), 1..3),
        query in proptest::option::of(query()),
        trailing_slash in any::<bool>(),
        overrides in overrides(),
        fragment_signed in any::<bool>(),
    ) {
        let scheme = if https { "https" } else { "http" };
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let prefix: String = prefix.iter().map(|s| format!("/{s}")).collect();
        let slash = if trailing_slash { "/" } else { "" };
        let base = format!("{scheme}://{host}{port}{prefix}{slash}");
        let mut route: String = route.iter().map(|s| format!("/{s}")).collect();
        if let Some(q) = &query {
            route = format!("{route}?{q}");
        }
        let mut endpoint = PublicEndpoint::new(&base, &route).unwrap();
        if let Some(o) = overrides {
            endpoint = endpoint.with_overrides(o);
        }
        let callback = endpoint.callback_url();
        // What the client puts on the wire is the callback URL, unchanged.
        let sent = SendMessage::new("+14155550199").from("+14155550100").body("x")
            .status_callback(&endpoint);
        prop_assert_eq!(sent.status_callback_url(), Some(callback.as_str()));
        let (signed_url, target) = requested(&callback, &prefix);
        prop_assert_eq!(&signed_url, &endpoint.signed_url());

        // Twilio signs the URL it was given; whether with the fragment is undocumented.
        let signed_over = if fragment_signed { callback.clone() } else { signed_url };
        let pairs = callback_pairs(&sid(1), "delivered", None);
        let signature = sign(&token(), &signed_over, &pairs);
        let body = form_body(&pairs);
        let webhook = StatusWebhook::builder(
            SignatureValidator::new(token()),
            Arc::new(MemoryStore::new()),
        )
        .endpoint(&endpoint)
        .build()
        .unwrap();
        let headers = form_headers(&signature);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let response = rt.block_on(webhook.handle(WebhookRequest::new(
            &Method::POST,
            &target,
            &headers,
            body.as_bytes(),
        )));
        prop_assert_eq!(response.status, StatusCode::NO_CONTENT, "{} / {}", callback, target);
    }
}

/// The `StatusCallback` the real client sends for `endpoint`, read off the wire.
async fn status_callback_on_the_wire(endpoint: &PublicEndpoint) -> String {
    let twilio = MockServer::start().await;
    let sid = sid(7).to_string();
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": sid, "account_sid": ACCOUNT, "status": "queued", "to": "+14155550199",
            "from": "+14155550100", "body": "x", "num_segments": "1", "num_media": "0",
            "date_created": "Thu, 24 Aug 2023 05:01:45 +0000", "api_version": "2010-04-01",
        })))
        .mount(&twilio)
        .await;
    let client = Client::builder(AccountSid::new(ACCOUNT).unwrap(), token())
        .base_url(twilio.uri().parse().unwrap())
        .build()
        .unwrap();
    let message = SendMessage::new("+14155550199")
        .from("+14155550100")
        .body("x")
        .status_callback(endpoint);
    client.messages().create(&message).await.unwrap();
    let requests = twilio.received_requests().await.unwrap();
    form_urlencoded::parse(&requests[0].body)
        .find(|(k, _)| k == "StatusCallback")
        .map(|(_, v)| v.into_owned())
        .expect("the client sent a StatusCallback")
}

/// The client's URL for an endpoint with a mixed-case host, a port, a prefix the proxy
/// strips, a raw query and overrides is accepted by `kind`'s mounted webhook.
async fn client_url_accepted(kind: Kind) {
    let endpoint = PublicEndpoint::new(
        "https://Hooks.Example.COM:8443/Edge",
        "/twilio/status?tenant=Acme&note=it%27s+(ok)!",
    )
    .unwrap()
    .with_recommended_overrides();
    let callback = status_callback_on_the_wire(&endpoint).await;
    assert_eq!(callback, endpoint.callback_url());
    let (signed_url, target) = requested(&callback, "/Edge");
    let store = Arc::new(MemoryStore::new());
    let webhook = StatusWebhook::builder(SignatureValidator::new(token()), store.clone())
        .endpoint(&endpoint)
        .build()
        .unwrap();
    let mounted = Mounted::mount(kind, webhook, "", endpoint.path()).await;
    for (n, url) in [(1, signed_url.as_str()), (2, callback.as_str())] {
        let pairs = callback_pairs(&sid(n), "delivered", None);
        let response = mounted
            .send(&Req {
                method: Method::POST,
                target: target.clone(),
                headers: vec![
                    ("x-twilio-signature".into(), sign(&token(), url, &pairs)),
                    (
                        "content-type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ),
                ],
                body: form_body(&pairs).into_bytes(),
                framing: Framing::Length,
            })
            .await;
        assert_eq!(
            response.status, 204,
            "{kind:?}: signed over {url}: {response:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_url_is_accepted_by_the_axum_adapter() {
    client_url_accepted(Kind::AxumHttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_url_is_accepted_by_the_actix_web_adapter() {
    client_url_accepted(Kind::ActixHttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_url_is_accepted_by_the_warp_adapter() {
    client_url_accepted(Kind::WarpHttp).await;
}
