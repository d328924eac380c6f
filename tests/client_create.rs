//! The wire form of `messages().create()`: method, path, auth for both credential kinds,
//! content type, and every `CreateMessageRequest` parameter's name and encoding.

mod client_support;

use std::time::Duration;

use client_support::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use twilio_delivery::client::{
    AddressRetention, Client, ContentRetention, RiskCheck, SendMessage, TrafficType,
};
use twilio_delivery::{
    AccountSid, ApiKeySecret, ApiKeySid, MessageStatus, MessagingServiceSid, PublicEndpoint,
    StatusStore,
};
use url::Url;
use wiremock::matchers::{basic_auth, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MG: &str = "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const HX: &str = "HXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const AP: &str = "APaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn create_example(name: &str) -> serde_json::Value {
    examples(&spec(), SPEC_LIST, "post", "201")
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap()
}

#[tokio::test]
async fn every_parameter_is_sent_with_its_spec_name_and_encoding() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(basic_auth(AC, TOKEN))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(header("accept", "application/json"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(create_example("createScheduledMessageMms")),
        )
        .expect(1)
        .mount(&server)
        .await;

    let send_at = OffsetDateTime::now_utc() + Duration::from_secs(3600);
    let callback = PublicEndpoint::new("https://app.example.com", "/cb")
        .unwrap()
        .with_recommended_overrides();
    let msg = SendMessage::new("+15558675310")
        .from("+15017122661")
        .messaging_service(MessagingServiceSid::new(MG).unwrap())
        .body("Hello & welcome = 100% 👍")
        .media_url(Url::parse("https://example.com/a.png").unwrap())
        .media_url(Url::parse("https://example.com/b.jpg?x=1&y=2").unwrap())
        .content_sid(HX)
        .content_variables([("1", "Ada"), ("2", "x&y")])
        .status_callback(&callback)
        .application_sid(AP)
        .validity_period(Duration::from_secs(600))
        .attempt(2)
        .provide_feedback(true)
        .force_delivery(false)
        .content_retention(ContentRetention::Discard)
        .address_retention(AddressRetention::Obfuscate)
        .smart_encoded(true)
        .persistent_action("geo:37.787890,-122.391664")
        .persistent_action("mailto:test@example.com")
        .shorten_urls(false)
        .schedule_at(send_at)
        .send_as_mms(true)
        .risk_check(RiskCheck::Disable)
        .fallback_from("+15005550006")
        .traffic_type(TrafficType::Free);

    let created = client(&server).messages().create(&msg).await.unwrap();
    assert_eq!(created.status, MessageStatus::Accepted);
    assert_eq!(created.sid.as_str(), "MMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body = &requests[0].body;
    let raw = String::from_utf8(body.clone()).unwrap();
    // Repeated keys, not `MediaUrl[]` or JSON arrays; `+` and `&` percent-encoded.
    assert_eq!(raw.matches("MediaUrl=").count(), 2);
    assert_eq!(raw.matches("PersistentAction=").count(), 2);
    assert!(raw.starts_with("To=%2B15558675310&"), "{raw}");

    let mut got = form_pairs(body);
    let sent_at_wire = got
        .iter()
        .find(|(k, _)| k == "SendAt")
        .map(|(_, v)| v.clone())
        .unwrap();
    // ISO-8601 UTC, whole seconds: 2025-05-01T12:00:00Z.
    assert_eq!(sent_at_wire.len(), 20, "{sent_at_wire}");
    assert!(sent_at_wire.ends_with('Z') && sent_at_wire.as_bytes()[10] == b'T');
    let parsed = OffsetDateTime::parse(&sent_at_wire, &Rfc3339).unwrap();
    assert_eq!(parsed, send_at.replace_nanosecond(0).unwrap());

    let mut want: Vec<(String, String)> = [
        ("To", "+15558675310"),
        ("From", "+15017122661"),
        ("MessagingServiceSid", MG),
        ("Body", "Hello & welcome = 100% 👍"),
        ("MediaUrl", "https://example.com/a.png"),
        ("MediaUrl", "https://example.com/b.jpg?x=1&y=2"),
        ("ContentSid", HX),
        ("ContentVariables", r#"{"1":"Ada","2":"x&y"}"#),
        (
            "StatusCallback",
            "https://app.example.com/cb#rc=3&rp=5xx,rt,ct&ct=3000&rt=5000&tt=15000",
        ),
        ("ApplicationSid", AP),
        ("ValidityPeriod", "600"),
        ("Attempt", "2"),
        ("ProvideFeedback", "true"),
        ("ForceDelivery", "false"),
        ("ContentRetention", "discard"),
        ("AddressRetention", "obfuscate"),
        ("SmartEncoded", "true"),
        ("PersistentAction", "geo:37.787890,-122.391664"),
        ("PersistentAction", "mailto:test@example.com"),
        ("ShortenUrls", "false"),
        ("ScheduleType", "fixed"),
        ("SendAt", sent_at_wire.as_str()),
        ("SendAsMms", "true"),
        ("RiskCheck", "disable"),
        ("FallbackFrom", "+15005550006"),
        ("TrafficType", "free"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // Every parameter of the spec's CreateMessageRequest is covered, except the obsolete MaxPrice.
    let spec = spec();
    let props = spec["paths"][SPEC_LIST]["post"]["requestBody"]["content"]
        ["application/x-www-form-urlencoded"]["schema"]["properties"]
        .as_object()
        .unwrap();
    for name in props.keys() {
        if name == "MaxPrice" {
            continue;
        }
        assert!(
            want.iter().any(|(k, _)| k == name),
            "spec parameter {name} is not sent"
        );
    }
}

#[tokio::test]
async fn minimal_message_sends_only_what_was_set() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(create_example("create")))
        .expect(1)
        .mount(&server)
        .await;
    let msg = SendMessage::new("+15558675310")
        .from("+15017122661")
        .body("hi there");
    let created = client(&server).messages().create(&msg).await.unwrap();
    assert_eq!(created.status, MessageStatus::Queued);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        String::from_utf8(requests[0].body.clone()).unwrap(),
        "To=%2B15558675310&From=%2B15017122661&Body=hi+there"
    );
    let ua = requests[0]
        .headers
        .get("user-agent")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(ua.starts_with("twilio-delivery/"), "{ua}");
}

#[tokio::test]
async fn api_key_credentials_use_the_key_for_basic_auth_and_the_account_in_the_path() {
    let server = MockServer::start().await;
    let sk = "SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(basic_auth(sk, "key-secret-value"))
        .respond_with(ResponseTemplate::new(201).set_body_json(create_example("create")))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::builder_with_api_key(
        AccountSid::new(AC).unwrap(),
        ApiKeySid::new(sk).unwrap(),
        ApiKeySecret::new("key-secret-value"),
    )
    .base_url(Url::parse(&server.uri()).unwrap())
    .user_agent("my-app/1.0")
    .build()
    .unwrap();
    assert!(!format!("{client:?}").contains("key-secret-value"));
    let msg = SendMessage::new("+15558675310")
        .messaging_service(MessagingServiceSid::new(MG).unwrap())
        .body("hi");
    client.messages().create(&msg).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests[0].headers.get("user-agent").unwrap(), "my-app/1.0");
}

#[tokio::test]
async fn a_base_url_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/twilio{MESSAGES_PATH}")))
        .respond_with(ResponseTemplate::new(201).set_body_json(create_example("create")))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::builder(AccountSid::new(AC).unwrap(), TOKEN.into())
        .base_url(Url::parse(&format!("{}/twilio/", server.uri())).unwrap())
        .build()
        .unwrap();
    let msg = SendMessage::new("+1555").from("+1666").body("x");
    client.messages().create(&msg).await.unwrap();
}

#[tokio::test]
async fn the_created_message_is_recorded_in_a_store() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(create_example("create")))
        .mount(&server)
        .await;
    let msg = SendMessage::new("+14155552345")
        .from("+14155552345")
        .body("Hello! 👍");
    let created = client(&server).messages().create(&msg).await.unwrap();
    let store = twilio_delivery::MemoryStore::new();
    store
        .record_sent(&created.to_sent_message(false))
        .await
        .unwrap();
    let record = store.get(&created.sid).await.unwrap().unwrap();
    assert_eq!(record.status, MessageStatus::Queued);
    assert_eq!(record.to.as_deref(), Some("+14155552345"));
    assert_eq!(record.body, None);
    assert_eq!(record.num_segments, Some(1));
    assert_eq!(
        record.created_at,
        time::macros::datetime!(2023-08-24 05:01:45 UTC)
    );
}

#[test]
fn create_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let client = Client::builder(AccountSid::new(AC).unwrap(), TOKEN.into())
        .base_url(Url::parse("http://127.0.0.1:9").unwrap())
        .build()
        .unwrap();
    let msg = SendMessage::new("+1").from("+2").body("x");
    let messages = client.messages();
    let fut = messages.create(&msg);
    assert_send(&fut);
    let sid = twilio_delivery::MessageSid::new(SM).unwrap();
    assert_send(&messages.fetch(&sid));
    assert_send(&messages.delete(&sid));
    assert_send(&messages.list(&twilio_delivery::ListFilter::new()));
}
