//! The one suite of webhook cases every adapter runs: each row of the contract table plus the
//! URL shapes that break signatures (queries, repeated keys, unicode, ports, proxies, nesting).

#![allow(unreachable_pub)]

use std::sync::Arc;

use http::Method;
use time::OffsetDateTime;
use twilio_delivery::AuthToken;
use twilio_delivery::endpoint::{Scheme, TrustedProxy};
use twilio_delivery::ids::MessageSid;
use twilio_delivery::model::{HistoryEntry, MessageRecord};
use twilio_delivery::signature::sign;
use twilio_delivery::store::{ListQuery, StatusStore};
use twilio_delivery::webhook::{StatusWebhook, StatusWebhookBuilder};
use twilio_delivery::{MemoryStore, SignatureValidator};

use super::common::{DownStore, callback_pairs, form_body, sid, token};
use super::transport::{Framing, Kind, Mounted, Req, Resp};

pub const BASE: &str = "https://hooks.example.com";
pub const PATH: &str = "/twilio/status";
/// The body limit of the "limit" site.
pub const LIMIT: usize = 600;

const FORM: &str = "application/x-www-form-urlencoded";

/// What one request got, in the parts every adapter must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub step: String,
    pub status: u16,
    pub allow: Option<String>,
    pub retry_after: Option<String>,
    /// The body, except for the framework's own 404 (its text is the framework's) and HEAD.
    pub body: Option<String>,
}

/// A store's contents with receive and update times zeroed: every record with its history.
pub type Snapshot = Vec<(MessageRecord, Vec<HistoryEntry>)>;

/// What a run of the suite produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub transcript: Vec<Observed>,
    pub stores: Vec<(&'static str, Snapshot)>,
}

struct Step {
    label: String,
    req: Req,
    expect: u16,
}

/// Webhooks mounted on `prefix` + `path`, and the requests sent to them in order.
struct Site {
    name: &'static str,
    webhook: StatusWebhook,
    store: Arc<dyn StatusStore>,
    prefix: &'static str,
    path: &'static str,
    steps: Vec<Step>,
}

fn step(label: impl Into<String>, req: Req, expect: u16) -> Step {
    Step {
        label: label.into(),
        req,
        expect,
    }
}

fn request(method: Method, target: &str, headers: &[(&str, &str)], body: &str) -> Req {
    Req {
        method,
        target: target.to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.as_bytes().to_vec(),
        framing: Framing::Length,
    }
}

/// A callback POSTed to `target` carrying `pairs`, signed for `signed_url` with `key`.
fn signed_with(key: &AuthToken, signed_url: &str, target: &str, pairs: &[(String, String)]) -> Req {
    let signature = sign(key, signed_url, pairs);
    let token = format!("idem-{}", signature.get(..8).unwrap_or_default());
    request(
        Method::POST,
        target,
        &[
            ("content-type", FORM),
            ("x-twilio-signature", &signature),
            ("i-twilio-idempotency-token", &token),
            ("user-agent", "TwilioProxy/1.1"),
        ],
        &form_body(pairs),
    )
}

fn signed(signed_url: &str, target: &str, pairs: &[(String, String)]) -> Req {
    signed_with(&token(), signed_url, target, pairs)
}

/// Four bytes of an address: a thousand of them are far past `callback::MAX_ADDRESS`.
const LONG_ADDRESS: &str = "+1ab";

fn status_of(n: u32, status: &str) -> Vec<(String, String)> {
    callback_pairs(&sid(n), status, None)
}

fn with(mut pairs: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    pairs
}

/// Pairs padded with a `Padding` field so that their form body is exactly `len` bytes.
fn padded(pairs: Vec<(String, String)>, len: usize) -> Vec<(String, String)> {
    let bare = form_body(&with(pairs.clone(), &[("Padding", "")])).len();
    let padding = "x".repeat(len - bare);
    let pairs = with(pairs, &[("Padding", &padding)]);
    assert_eq!(form_body(&pairs).len(), len);
    pairs
}

fn builder(store: Arc<dyn StatusStore>) -> StatusWebhookBuilder {
    StatusWebhook::builder(SignatureValidator::new(token()), store)
}

fn site(
    name: &'static str,
    store: Arc<dyn StatusStore>,
    configure: impl FnOnce(StatusWebhookBuilder) -> StatusWebhookBuilder,
    prefix: &'static str,
    steps: Vec<Step>,
) -> Site {
    Site {
        name,
        webhook: configure(builder(store.clone())).build().unwrap(),
        store,
        prefix,
        path: PATH,
        steps,
    }
}

fn memory() -> Arc<dyn StatusStore> {
    Arc::new(MemoryStore::new())
}

fn contract_steps() -> Vec<Step> {
    let url = format!("{BASE}{PATH}");
    let sent = status_of(1, "sent");
    let (sent_body, good_sig) = (form_body(&sent), sign(&token(), &url, &sent));
    let with_sig = |sig: &str, ct: &str, body: &str| {
        request(
            Method::POST,
            PATH,
            &[("content-type", ct), ("x-twilio-signature", sig)],
            body,
        )
    };
    let mut steps = vec![
        step("new event", signed(&url, PATH, &sent), 204),
        step("duplicate event", signed(&url, PATH, &sent), 204),
        step(
            "newer event",
            signed(&url, PATH, &status_of(1, "delivered")),
            204,
        ),
        step(
            "stale event",
            signed(&url, PATH, &status_of(1, "sent")),
            204,
        ),
        step(
            "failure with error code",
            signed(
                &url,
                PATH,
                &callback_pairs(&sid(2), "undelivered", Some(30003)),
            ),
            204,
        ),
        step(
            "missing signature",
            request(Method::POST, PATH, &[("content-type", FORM)], &sent_body),
            403,
        ),
        step("empty signature", with_sig("", FORM, &sent_body), 403),
        step(
            "garbage signature",
            with_sig("not base64!", FORM, &sent_body),
            403,
        ),
        step(
            "signed by another token",
            signed_with(
                &AuthToken::new("another token"),
                &url,
                PATH,
                &status_of(3, "sent"),
            ),
            403,
        ),
        step(
            "signed for another url",
            signed(&format!("{url}?x=1"), PATH, &status_of(3, "sent")),
            403,
        ),
        step(
            "tampered body",
            with_sig(&good_sig, FORM, &sent_body.replace("sent", "read")),
            403,
        ),
        step(
            "no MessageSid",
            signed(&url, PATH, &[("MessageStatus".into(), "sent".into())]),
            400,
        ),
        step(
            "no MessageStatus",
            signed(&url, PATH, &[("MessageSid".into(), sid(4).to_string())]),
            400,
        ),
        step(
            "invalid MessageSid",
            signed(
                &url,
                PATH,
                &[
                    ("MessageSid".into(), "SMnot-a-sid".into()),
                    ("MessageStatus".into(), "sent".into()),
                ],
            ),
            400,
        ),
        step(
            "json content type",
            with_sig(&good_sig, "application/json", &sent_body),
            415,
        ),
        step(
            "no content type",
            request(
                Method::POST,
                PATH,
                &[("x-twilio-signature", &good_sig)],
                &sent_body,
            ),
            415,
        ),
        step(
            "multipart content type",
            with_sig(&good_sig, "multipart/form-data; boundary=x", &sent_body),
            415,
        ),
        step(
            "form content type with charset",
            signed(&url, PATH, &status_of(5, "sent")).header_replaced(
                "content-type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            ),
            204,
        ),
    ];
    for method in [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ] {
        let label = format!("{method} is not allowed");
        let mut req = signed(&url, PATH, &sent);
        req.method = method;
        steps.push(step(label, req, 405));
    }
    let queries: [(&str, &str); 6] = [
        ("query string", "?tenant=acme&note=a%2Bb+c%20d"),
        ("repeated query keys", "?to=2&to=1&to=2&from=x"),
        (
            "unicode query",
            "?name=%C3%A9t%C3%A9&mail=%F0%9F%93%A8&raw=caf%c3%a9",
        ),
        (
            "reserved characters in query",
            "?cb=https%3A%2F%2Fx.test%2F%3Fa%3D1&t=~!*()",
        ),
        ("empty query value", "?flag&empty=&last="),
        ("empty query", "?"),
    ];
    for (n, (label, query)) in (10..).zip(queries) {
        let target = format!("{PATH}{query}");
        let signed_url = format!("{BASE}{target}");
        steps.push(step(
            label,
            signed(&signed_url, &target, &status_of(n, "sent")),
            204,
        ));
    }
    steps.extend([
        step(
            "query signed without it",
            signed(&url, &format!("{PATH}?tenant=acme"), &status_of(20, "sent")),
            403,
        ),
        step(
            "query signed re-encoded",
            signed(
                &format!("{BASE}{PATH}?note=a+b"),
                &format!("{PATH}?note=a%20b"),
                &status_of(20, "sent"),
            ),
            403,
        ),
        step(
            "repeated body keys",
            signed(
                &url,
                PATH,
                &with(
                    status_of(21, "sent"),
                    &[
                        ("MediaUrl", "https://b.test/2"),
                        ("MediaUrl", "https://a.test/1"),
                        ("MediaUrl", "https://b.test/2"),
                    ],
                ),
            ),
            204,
        ),
        step(
            "unicode body values",
            signed(
                &url,
                PATH,
                &with(
                    status_of(22, "delivered"),
                    &[
                        ("ChannelStatusMessage", "livré ✓ 配達済み 📨"),
                        ("Émoji", "🙂"),
                    ],
                ),
            ),
            204,
        ),
        step(
            "url signed with the default port",
            signed(
                &format!("https://hooks.example.com:443{PATH}"),
                PATH,
                &status_of(23, "sent"),
            ),
            204,
        ),
        step(
            "an address over 256 bytes is left out, the callback kept",
            signed(
                &url,
                PATH,
                &status_of(25, "delivered")
                    .into_iter()
                    .map(|(k, v)| match k.as_str() {
                        "To" => (k, LONG_ADDRESS.repeat(1000)),
                        _ => (k, v),
                    })
                    .collect::<Vec<_>>(),
            ),
            204,
        ),
        step(
            "unrelated route is left to the framework",
            signed(
                &format!("{BASE}/twilio/other"),
                "/twilio/other",
                &status_of(24, "sent"),
            ),
            404,
        ),
    ]);
    steps
}

fn limit_steps() -> Vec<Step> {
    let url = format!("{BASE}{PATH}");
    let at_limit = padded(status_of(30, "sent"), LIMIT);
    let over = padded(status_of(31, "sent"), LIMIT + 1);
    let far_over = padded(status_of(32, "sent"), 70_000);
    let framed = |n: u32, len: usize, framing: Framing| Req {
        framing,
        ..signed(&url, PATH, &padded(status_of(n, "sent"), len))
    };
    vec![
        step(
            "body exactly at the limit",
            signed(&url, PATH, &at_limit),
            204,
        ),
        step(
            "body one byte over the limit",
            signed(&url, PATH, &over),
            413,
        ),
        step(
            "body far over the limit",
            signed(&url, PATH, &far_over),
            413,
        ),
        step(
            "chunked body over the limit",
            framed(33, LIMIT + 150, Framing::Chunked),
            413,
        ),
        step(
            "chunked body under the limit",
            framed(34, LIMIT - 50, Framing::Chunked),
            204,
        ),
        // Answered without waiting for the rest: reading stops at the first byte past the limit.
        step(
            "endless chunked body over the limit",
            framed(35, LIMIT + 150, Framing::ChunkedStalled),
            413,
        ),
        // Answered from the declared length alone, before any body byte is read.
        step(
            "declared length over the limit",
            framed(36, LIMIT - 50, Framing::DeclaredLength(10_000_000)),
            413,
        ),
        step(
            "unsigned body over the limit",
            request(
                Method::POST,
                PATH,
                &[("content-type", FORM)],
                &"a".repeat(LIMIT + 1),
            ),
            413,
        ),
    ]
}

/// Every site of the suite, with fresh stores.
fn sites() -> Vec<Site> {
    let url = format!("{BASE}{PATH}");
    let api = "https://example.com/api";
    vec![
        site(
            "contract",
            memory(),
            |b| b.public_url(BASE),
            "",
            contract_steps(),
        ),
        site(
            "limit",
            memory(),
            |b| b.public_url(BASE).body_limit(LIMIT),
            "",
            limit_steps(),
        ),
        site(
            "store down",
            Arc::new(DownStore::default()),
            |b| b.public_url(BASE),
            "",
            vec![
                step(
                    "store unavailable",
                    signed(&url, PATH, &status_of(40, "delivered")),
                    503,
                ),
                step(
                    "unsigned while the store is down",
                    request(
                        Method::POST,
                        PATH,
                        &[("content-type", FORM)],
                        "MessageSid=x",
                    ),
                    403,
                ),
            ],
        ),
        site(
            "port 8443",
            memory(),
            |b| b.public_url("https://hooks.example.com:8443"),
            "",
            vec![
                step(
                    "signed with the port",
                    signed(
                        &format!("https://hooks.example.com:8443{PATH}"),
                        PATH,
                        &status_of(50, "sent"),
                    ),
                    204,
                ),
                step(
                    "signed without the port",
                    signed(&url, PATH, &status_of(51, "sent")),
                    204,
                ),
                step(
                    "signed with another port",
                    signed(
                        &format!("https://hooks.example.com:9443{PATH}"),
                        PATH,
                        &status_of(52, "sent"),
                    ),
                    403,
                ),
            ],
        ),
        site(
            "port 443",
            memory(),
            |b| b.public_url("https://hooks.example.com:443"),
            "",
            vec![
                step(
                    "signed without the default port",
                    signed(&url, PATH, &status_of(53, "sent")),
                    204,
                ),
                step(
                    "signed with the default port",
                    signed(
                        &format!("https://hooks.example.com:443{PATH}"),
                        PATH,
                        &status_of(54, "sent"),
                    ),
                    204,
                ),
            ],
        ),
        site(
            "proxy prefix",
            memory(),
            |b| b.public_url(format!("{api}/")),
            "",
            vec![
                step(
                    "signed for the proxy url",
                    signed(
                        &format!("{api}{PATH}?tenant=acme"),
                        &format!("{PATH}?tenant=acme"),
                        &status_of(60, "sent"),
                    ),
                    204,
                ),
                step(
                    "signed for the url the app sees",
                    signed(
                        &format!("https://example.com{PATH}"),
                        PATH,
                        &status_of(61, "sent"),
                    ),
                    403,
                ),
            ],
        ),
        site(
            "nested",
            memory(),
            |b| b.public_url(BASE),
            "/hooks",
            vec![
                step(
                    "signed for the full path",
                    signed(
                        &format!("{BASE}/hooks{PATH}?a=1"),
                        &format!("/hooks{PATH}?a=1"),
                        &status_of(70, "sent"),
                    ),
                    204,
                ),
                step(
                    "signed without the nest prefix",
                    signed(&url, &format!("/hooks{PATH}"), &status_of(71, "sent")),
                    403,
                ),
                step(
                    "GET under the nest prefix",
                    request(Method::GET, &format!("/hooks{PATH}"), &[], ""),
                    405,
                ),
            ],
        ),
        site(
            "nested behind a proxy prefix",
            memory(),
            |b| b.public_url(api),
            "/hooks",
            vec![step(
                "signed for the proxy url",
                signed(
                    &format!("{api}/hooks{PATH}"),
                    &format!("/hooks{PATH}"),
                    &status_of(72, "sent"),
                ),
                204,
            )],
        ),
        site(
            "trusted proxy",
            memory(),
            |b| b.trusted_proxy(TrustedProxy::new(Scheme::Https)),
            "",
            proxy_steps(),
        ),
    ]
}

fn proxy_steps() -> Vec<Step> {
    let public = format!("https://public.example.com{PATH}?tenant=acme");
    let target = format!("{PATH}?tenant=acme");
    let forwarded = |req: Req, proto: &str, host: &str| {
        req.header_replaced("x-forwarded-proto", proto)
            .header_replaced("x-forwarded-host", host)
    };
    vec![
        step(
            "x-forwarded headers give the signed url",
            forwarded(
                signed(&public, &target, &status_of(80, "sent")),
                "https",
                "public.example.com",
            ),
            204,
        ),
        step(
            "forwarded header gives the signed url",
            signed(&public, &target, &status_of(81, "sent")).header_replaced(
                "forwarded",
                "for=192.0.2.1;proto=https;host=public.example.com",
            ),
            204,
        ),
        step(
            "headers name another host",
            forwarded(
                signed(&public, &target, &status_of(82, "sent")),
                "https",
                "evil.example.com",
            ),
            403,
        ),
        step(
            "no proxy headers",
            signed(&public, &target, &status_of(83, "sent")),
            403,
        ),
    ]
}

/// A store's contents, times zeroed (they are when each adapter happened to receive the event).
pub async fn snapshot(store: &dyn StatusStore) -> Snapshot {
    let page = store.list(&ListQuery::new().limit(1000)).await.unwrap();
    assert!(page.next.is_none());
    let mut out = Vec::new();
    for mut record in page.records {
        record.created_at = OffsetDateTime::UNIX_EPOCH;
        record.updated_at = OffsetDateTime::UNIX_EPOCH;
        let mut history = store.history(&record.sid).await.unwrap();
        for entry in &mut history {
            entry.received_at = OffsetDateTime::UNIX_EPOCH;
        }
        assert_eq!(
            store.get(&record.sid).await.unwrap().unwrap().sid,
            record.sid
        );
        out.push((record, history));
    }
    out.sort_by(|a, b| a.0.sid.as_str().cmp(b.0.sid.as_str()));
    out
}

fn check(kind: Kind, site: &str, step: &Step, resp: &Resp) {
    let at = format!("{kind:?} / {site} / {}", step.label);
    assert_eq!(resp.status, step.expect, "{at}: {resp:?}");
    match resp.status {
        204 => assert!(resp.body.is_empty(), "{at}"),
        405 => assert_eq!(resp.header("allow"), Some("POST"), "{at}"),
        503 => assert_eq!(resp.header("retry-after"), Some("5"), "{at}"),
        403 => assert_eq!(resp.body, "forbidden\n", "{at}"),
        413 => assert_eq!(resp.body, "payload too large\n", "{at}"),
        _ => {}
    }
}

/// Runs every site through `kind`, checking each status as it goes.
pub async fn run(kind: Kind) -> Outcome {
    let mut outcome = Outcome {
        transcript: Vec::new(),
        stores: Vec::new(),
    };
    for site in sites() {
        let mounted = Mounted::mount(kind, site.webhook.clone(), site.prefix, site.path).await;
        for step in &site.steps {
            let resp = mounted.send(&step.req).await;
            check(kind, site.name, step, &resp);
            outcome.transcript.push(Observed {
                step: format!("{} / {}", site.name, step.label),
                status: resp.status,
                allow: resp.header("allow").map(str::to_owned),
                retry_after: resp.header("retry-after").map(str::to_owned),
                // HEAD answers have no body on the wire; actix's harness keeps it.
                body: (resp.status != 404 && step.req.method != Method::HEAD)
                    .then(|| resp.body.clone()),
            });
        }
        drop(mounted);
        outcome
            .stores
            .push((site.name, snapshot(&*site.store).await));
    }
    outcome
}

/// What the suite's requests must have left in the stores, checked on the snapshots: the
/// accepted callbacks and nothing of the refused ones.
pub fn check_stores(kind: Kind, outcome: &Outcome) {
    use twilio_delivery::MessageStatus as S;
    let find = |site: &str| {
        &outcome
            .stores
            .iter()
            .find(|(name, _)| *name == site)
            .unwrap_or_else(|| panic!("no site {site}"))
            .1
    };
    let sids =
        |site: &str| -> Vec<MessageSid> { find(site).iter().map(|(r, _)| r.sid.clone()).collect() };
    let numbered = |ns: &[u32]| -> Vec<MessageSid> { ns.iter().map(|n| sid(*n)).collect() };

    let contract = find("contract");
    assert_eq!(
        sids("contract"),
        numbered(&[1, 2, 5, 10, 11, 12, 13, 14, 15, 21, 22, 23, 25]),
        "{kind:?}"
    );
    let (long, long_history) = contract.last().unwrap();
    assert_eq!(
        (long.status.clone(), long.to.clone()),
        (S::Delivered, None),
        "{kind:?}"
    );
    assert!(
        long_history[0]
            .raw
            .contains(&("To".into(), LONG_ADDRESS.repeat(1000))),
        "{kind:?}: the raw pair is kept"
    );
    let (one, one_history) = &contract[0];
    assert_eq!(one.status, S::Delivered, "{kind:?}");
    let statuses: Vec<_> = one_history.iter().map(|h| h.status.clone()).collect();
    assert_eq!(statuses, vec![S::Sent, S::Delivered], "{kind:?}");
    assert!(
        one_history[0]
            .idempotency_token
            .as_deref()
            .is_some_and(|t| t.starts_with("idem-"))
    );
    let (two, _) = &contract[1];
    assert_eq!(
        (two.status.clone(), two.error_code),
        (S::Undelivered, Some(30003)),
        "{kind:?}"
    );
    let raw = |n: u32| {
        contract
            .iter()
            .find(|(r, _)| r.sid == sid(n))
            .map(|(_, h)| h[0].raw.clone())
            .unwrap()
    };
    let media: Vec<_> = raw(21)
        .into_iter()
        .filter(|(k, _)| k == "MediaUrl")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        media,
        ["https://b.test/2", "https://a.test/1", "https://b.test/2"],
        "{kind:?}"
    );
    assert!(raw(22).contains(&("ChannelStatusMessage".into(), "livré ✓ 配達済み 📨".into())));
    assert!(raw(22).contains(&("Émoji".into(), "🙂".into())));

    assert_eq!(sids("limit"), numbered(&[30, 34]), "{kind:?}");
    assert!(find("store down").is_empty(), "{kind:?}");
    assert_eq!(sids("port 8443"), numbered(&[50, 51]), "{kind:?}");
    assert_eq!(sids("port 443"), numbered(&[53, 54]), "{kind:?}");
    assert_eq!(sids("proxy prefix"), numbered(&[60]), "{kind:?}");
    assert_eq!(sids("nested"), numbered(&[70]), "{kind:?}");
    assert_eq!(
        sids("nested behind a proxy prefix"),
        numbered(&[72]),
        "{kind:?}"
    );
}
