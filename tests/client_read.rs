//! Reading messages: every example response of the spec extract decodes, lenient decoding of
//! unknown and null-heavy responses, fetch/cancel/redact/delete, and list paging and filters.

mod client_support;

use client_support::*;
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};
use time::macros::{date, datetime};
use twilio_delivery::client::{Direction, ListFilter, Message, MessagePage};
use twilio_delivery::model::EventSource;
use twilio_delivery::{MessageSid, MessageStatus, StatusStore};
use wiremock::matchers::{body_string, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sid() -> MessageSid {
    MessageSid::new(SM).unwrap()
}

/// Checks that a decoded message carries the example's values.
fn assert_matches_json(m: &Message, v: &Value, name: &str) {
    assert_eq!(m.sid.as_str(), v["sid"].as_str().unwrap(), "{name}");
    assert_eq!(m.status.as_str(), v["status"].as_str().unwrap(), "{name}");
    assert_eq!(m.to.as_deref(), v["to"].as_str(), "{name}");
    assert_eq!(m.from.as_deref(), v["from"].as_str(), "{name}");
    assert_eq!(m.body.as_deref(), v["body"].as_str(), "{name}");
    assert_eq!(
        m.account_sid.as_ref().map(|s| s.as_str()),
        v["account_sid"].as_str(),
        "{name}"
    );
    let num = |k: &str| v[k].as_str().map(|s| s.parse::<u32>().unwrap());
    assert_eq!(m.num_segments, num("num_segments"), "{name}");
    assert_eq!(m.num_media, num("num_media"), "{name}");
    assert_eq!(
        m.error_code,
        v["error_code"].as_u64().map(|c| c as u32),
        "{name}"
    );
    assert_eq!(
        m.price.as_ref().map(|p| p.as_str()),
        v["price"].as_str(),
        "{name}"
    );
    assert_eq!(m.date_sent.is_some(), !v["date_sent"].is_null(), "{name}");
    assert!(
        m.date_created.is_some() && m.date_updated.is_some(),
        "{name}"
    );
    assert_eq!(
        m.subresource_uris.as_ref().map(|u| u.len()),
        v["subresource_uris"].as_object().map(|o| o.len()),
        "{name}"
    );
    // Serialising writes the same wire format back.
    let back: Message = serde_json::from_value(serde_json::to_value(m).unwrap()).unwrap();
    assert_eq!(&back, m, "{name}");
}

#[test]
fn every_example_response_in_the_spec_decodes() {
    let spec = spec();
    let mut count = 0;
    for (op_path, method, status) in [
        (SPEC_LIST, "post", "201"),
        (SPEC_INSTANCE, "get", "200"),
        (SPEC_INSTANCE, "post", "200"),
    ] {
        for (name, v) in examples(&spec, op_path, method, status) {
            let m: Message =
                serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_matches_json(&m, &v, &name);
            count += 1;
        }
    }
    for (name, v) in examples(&spec, SPEC_LIST, "get", "200") {
        let page: MessagePage =
            serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let items = v["messages"].as_array().unwrap();
        assert_eq!(page.messages.len(), items.len(), "{name}");
        for (m, item) in page.messages.iter().zip(items) {
            assert_matches_json(m, item, &name);
        }
        assert_eq!(page.next_page_uri.as_deref(), v["next_page_uri"].as_str());
        assert_eq!(page.page_size, v["page_size"].as_u64().map(|n| n as u32));
        count += 1;
    }
    // 7 create + 1 fetch + 2 update + 7 list examples.
    assert_eq!(count, 17);
}

#[tokio::test]
async fn fetch_types_every_field() {
    let server = MockServer::start().await;
    let example = examples(&spec(), SPEC_INSTANCE, "get", "200").remove(0).1;
    Mock::given(method("GET"))
        .and(path(MESSAGE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(example))
        .expect(1)
        .mount(&server)
        .await;
    let m = client(&server).messages().fetch(&sid()).await.unwrap();
    assert_eq!(m.sid, sid());
    assert_eq!(m.status, MessageStatus::Sent);
    assert_eq!(m.direction, Some(Direction::OutboundApi));
    assert_eq!(m.error_code, Some(30007));
    assert_eq!(m.error_message.as_deref(), Some("Carrier violation"));
    assert_eq!(m.price.as_ref().unwrap().as_str(), "-0.00750");
    assert!(m.price.as_ref().unwrap().is_negative());
    assert_eq!(m.price_unit.as_deref(), Some("USD"));
    assert_eq!(m.num_segments, Some(1));
    assert_eq!(m.num_media, Some(0));
    assert_eq!(m.date_created, Some(datetime!(2019-05-24 17:18:27 UTC)));
    assert_eq!(m.date_sent, Some(datetime!(2019-05-24 17:18:28 UTC)));
    assert_eq!(m.api_version.as_deref(), Some("2010-04-01"));
    assert_eq!(
        m.messaging_service_sid.as_ref().unwrap().as_str(),
        "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    );
    let uris = m.subresource_uris.as_ref().unwrap();
    assert!(uris["media"].ends_with("/Media.json") && uris["feedback"].ends_with("/Feedback.json"));

    // The reconciler's view of it, applied to a store.
    let event = m.to_status_event();
    assert_eq!(event.source, EventSource::Reconciler);
    assert_eq!(event.status, MessageStatus::Sent);
    assert_eq!(event.error_code, Some(30007));
    assert_eq!(event.error_message.as_deref(), Some("Carrier violation"));
    assert_eq!(event.to.as_deref(), Some("+18182008801"));
    assert_eq!(event.from.as_deref(), Some("+12019235161"));
    assert!(event.messaging_service_sid.is_some() && event.account_sid.is_some());
    let store = twilio_delivery::MemoryStore::new();
    let applied = store.apply(&event).await.unwrap();
    assert_eq!(applied.current, MessageStatus::Sent);
    let sent = m.to_sent_message(true);
    assert_eq!(sent.body.as_deref(), Some("testing"));
    assert_eq!(sent.num_segments, Some(1));
}

#[test]
fn unknown_fields_and_values_decode() {
    let mut v = examples(&spec(), SPEC_INSTANCE, "get", "200").remove(0).1;
    v["status"] = json!("queued_for_rcs");
    v["direction"] = json!("outbound-rcs");
    v["num_segments"] = json!(2);
    v["num_media"] = json!("");
    v["error_code"] = json!("30008");
    v["tags"] = json!({"campaign_name": "Spring Sale"});
    v["brand_new_field"] = json!([1, 2, {"x": null}]);
    v["subresource_uris"]["weird"] = json!(7);
    let m: Message = serde_json::from_value(v).unwrap();
    assert_eq!(m.status, MessageStatus::Unknown("queued_for_rcs".into()));
    assert_eq!(m.direction, Some(Direction::Unknown("outbound-rcs".into())));
    assert_eq!(m.num_segments, Some(2));
    assert_eq!(m.num_media, None);
    assert_eq!(m.error_code, Some(30008));
    assert!(!m.subresource_uris.unwrap().contains_key("weird"));
}

#[test]
fn null_heavy_scheduled_and_accepted_responses_decode() {
    for status in ["scheduled", "accepted"] {
        let v = json!({
            "account_sid": null, "api_version": null, "body": null, "date_created": null,
            "date_sent": null, "date_updated": null, "direction": null, "error_code": null,
            "error_message": null, "from": null, "messaging_service_sid": null,
            "num_media": null, "num_segments": null, "price": null, "price_unit": null,
            "sid": "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": status,
            "subresource_uris": null, "to": null, "uri": null
        });
        let m: Message = serde_json::from_value(v).unwrap();
        assert_eq!(m.status.as_str(), status);
        assert!(m.from.is_none() && m.date_sent.is_none() && m.num_segments.is_none());
        // Fields missing entirely are also fine.
        let m: Message = serde_json::from_value(
            json!({"sid": "MMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": status}),
        )
        .unwrap();
        assert!(m.to.is_none() && m.direction.is_none());
        let sent = m.to_sent_message(true);
        assert_eq!(sent.to, "");
    }
}

#[test]
fn malformed_fields_fail_decoding() {
    let base = examples(&spec(), SPEC_INSTANCE, "get", "200").remove(0).1;
    for (field, value) in [
        ("sid", json!("not-a-sid")),
        ("sid", Value::Null),
        ("date_created", json!("2019-05-24T17:18:27Z")),
        ("price", json!("-0.0075x")),
        ("num_segments", json!("one")),
        ("account_sid", json!("AC123")),
    ] {
        let mut v = base.clone();
        v[field] = value;
        assert!(serde_json::from_value::<Message>(v).is_err(), "{field}");
    }
}

#[tokio::test]
async fn cancel_redact_and_delete() {
    let server = MockServer::start().await;
    let updates = examples(&spec(), SPEC_INSTANCE, "post", "200");
    let example = |n: &str| updates.iter().find(|(k, _)| k == n).unwrap().1.clone();
    Mock::given(method("POST"))
        .and(path(MESSAGE_PATH))
        .and(body_string("Status=canceled"))
        .respond_with(ResponseTemplate::new(200).set_body_json(example("cancelMessage")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGE_PATH))
        .and(body_string("Body="))
        .respond_with(ResponseTemplate::new(200).set_body_json(example("redactBody")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(MESSAGE_PATH))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let canceled = client.messages().cancel(&sid()).await.unwrap();
    assert_eq!(canceled.status, MessageStatus::Canceled);
    let redacted = client.messages().redact(&sid()).await.unwrap();
    assert_eq!(redacted.body.as_deref(), Some(""));
    client.messages().delete(&sid()).await.unwrap();
    for r in server.received_requests().await.unwrap() {
        if r.method.as_str() == "POST" {
            assert_eq!(
                r.headers.get("content-type").unwrap(),
                "application/x-www-form-urlencoded"
            );
        }
    }
}

/// A page of `sids` whose next page is `next`.
fn page(n: u32, sids: &[&str], next: Option<String>) -> Value {
    let mut messages = Vec::new();
    for s in sids {
        let mut m = examples(&spec(), SPEC_INSTANCE, "get", "200").remove(0).1;
        m["sid"] = json!(s);
        messages.push(m);
    }
    json!({
        "messages": messages,
        "page": n,
        "page_size": 2,
        "start": n * 2,
        "end": (n * 2 + sids.len() as u32).saturating_sub(1),
        "uri": format!("{MESSAGES_PATH}?PageSize=2&Page={n}"),
        "first_page_uri": format!("{MESSAGES_PATH}?PageSize=2&Page=0"),
        "next_page_uri": next,
        "previous_page_uri": null
    })
}

fn sm(i: u32) -> String {
    format!("SM{i:032x}")
}

#[tokio::test]
async fn list_follows_next_page_uri_across_three_pages() {
    let server = MockServer::start().await;
    let next = |n: u32| {
        Some(format!(
            "{MESSAGES_PATH}?PageSize=2&Page={n}&PageToken=PA{n}"
        ))
    };
    let (s1, s2, s3, s4, s5) = (sm(1), sm(2), sm(3), sm(4), sm(5));
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(query_param("PageSize", "2"))
        .and(query_param_is_missing("Page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0, &[&s1, &s2], next(1))))
        .expect(2) // once by the stream, once page by page
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(query_param("Page", "1"))
        .and(query_param("PageToken", "PA1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(1, &[&s3, &s4], next(2))))
        .expect(2) // once by the stream, once page by page
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(query_param("Page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(2, &[&s5], None)))
        .expect(2) // once by the stream, once page by page
        .mount(&server)
        .await;
    let client = client(&server);
    let filter = ListFilter::new().page_size(2);
    let stream = client.messages().list(&filter);
    drop(filter); // the stream owns what it needs
    let all: Vec<Message> = stream.try_collect().await.unwrap();
    let sids: Vec<String> = all.iter().map(|m| m.sid.to_string()).collect();
    assert_eq!(sids, vec![s1, s2, s3, s4, s5]);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);

    // One page at a time.
    let first = client
        .messages()
        .list_page(&ListFilter::new().page_size(2))
        .await
        .unwrap();
    assert_eq!(first.messages.len(), 2);
    let second = client.messages().next_page(&first).await.unwrap().unwrap();
    assert_eq!(second.page, Some(1));
    let third = client.messages().next_page(&second).await.unwrap().unwrap();
    assert!(!third.has_next());
    assert!(client.messages().next_page(&third).await.unwrap().is_none());
}

#[tokio::test]
async fn taking_fewer_messages_fetches_no_further_page() {
    let server = MockServer::start().await;
    let next = Some(format!("{MESSAGES_PATH}?Page=1&PageToken=PA1"));
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0, &[&sm(1), &sm(2)], next)))
        .mount(&server)
        .await;
    let client = client(&server);
    let got: Vec<_> = client
        .messages()
        .list(&ListFilter::new())
        .take(2)
        .collect()
        .await;
    assert_eq!(got.len(), 2);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_empty_page_ends_the_stream() {
    let server = MockServer::start().await;
    let empty = examples(&spec(), SPEC_LIST, "get", "200")
        .into_iter()
        .find(|(n, _)| n == "readEmptySentdateLess")
        .unwrap()
        .1;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty))
        .expect(1)
        .mount(&server)
        .await;
    let all: Vec<Message> = client(&server)
        .messages()
        .list(&ListFilter::new())
        .try_collect()
        .await
        .unwrap();
    assert!(all.is_empty());
}

#[tokio::test]
async fn filters_are_encoded_with_date_sent_comparison_keys() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(query_param("To", "+123456789"))
        .and(query_param("From", "+987654321"))
        .and(query_param("DateSent", "2008-01-02"))
        .and(query_param("DateSent<", "2008-02-01"))
        .and(query_param("DateSent>", "2008-01-01"))
        .and(query_param("PageSize", "25"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0, &[], None)))
        .expect(1)
        .mount(&server)
        .await;
    let filter = ListFilter::new()
        .to("+123456789")
        .from("+987654321")
        .sent_on(date!(2008 - 01 - 02))
        .sent_on_or_before(date!(2008 - 02 - 01))
        .sent_on_or_after(date!(2008 - 01 - 01))
        .page_size(25);
    let page = client(&server).messages().list_page(&filter).await.unwrap();
    assert!(page.messages.is_empty());
    let req = &server.received_requests().await.unwrap()[0];
    let query = req.url.query().unwrap();
    assert_eq!(
        query,
        "To=%2B123456789&From=%2B987654321&DateSent=2008-01-02&DateSent%3C=2008-02-01\
         &DateSent%3E=2008-01-01&PageSize=25"
    );
}

#[tokio::test]
async fn next_page_uri_is_resolved_against_a_base_path_prefix() {
    let server = MockServer::start().await;
    let next = Some(format!("{MESSAGES_PATH}?Page=1&PageToken=PA1"));
    Mock::given(method("GET"))
        .and(path(format!("/emu{MESSAGES_PATH}")))
        .and(query_param_is_missing("Page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0, &[&sm(1)], next)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/emu{MESSAGES_PATH}")))
        .and(query_param("Page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(1, &[&sm(2)], None)))
        .expect(1)
        .mount(&server)
        .await;
    let client = twilio_delivery::Client::builder(
        twilio_delivery::AccountSid::new(AC).unwrap(),
        TOKEN.into(),
    )
    .base_url(url::Url::parse(&format!("{}/emu", server.uri())).unwrap())
    .build()
    .unwrap();
    let all: Vec<Message> = client
        .messages()
        .list(&ListFilter::new())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn a_next_page_off_the_api_host_is_refused() {
    let server = MockServer::start().await;
    let next = Some("https://elsewhere.example.com/steal?Page=1".to_owned());
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0, &[&sm(1)], next)))
        .expect(1)
        .mount(&server)
        .await;
    let items: Vec<_> = client(&server)
        .messages()
        .list(&ListFilter::new())
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    assert!(matches!(items[1], Err(twilio_delivery::Error::Decode(_))));
}

#[tokio::test]
async fn pages_pointing_back_at_each_other_end_the_stream() {
    let server = MockServer::start().await;
    let uri = |n: u32| Some(format!("{MESSAGES_PATH}?PageSize=2&Page={n}"));
    // Page 0 names page 1 as next, page 1 names page 0: A → B → A.
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(query_param("Page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(1, &[&sm(3)], uri(0))))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0, &[&sm(1), &sm(2)], uri(1))))
        .expect(1)
        .mount(&server)
        .await;
    let all: Vec<Message> = client(&server)
        .messages()
        .list(&ListFilter::new().page_size(2))
        .try_collect()
        .await
        .unwrap();
    let sids: Vec<String> = all.iter().map(|m| m.sid.to_string()).collect();
    assert_eq!(sids, vec![sm(1), sm(2), sm(3)]);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed() {
    let api = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/steal", elsewhere.uri()).as_str()),
        )
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0, &[&sm(1)], None)))
        .mount(&elsewhere)
        .await;
    let items: Vec<_> = client(&api)
        .messages()
        .list(&ListFilter::new())
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    let err = items.into_iter().next().unwrap().unwrap_err();
    assert_eq!(err.http_status(), Some(302), "{err:?}");
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}
