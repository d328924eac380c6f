//! Twilio's documented answers, one test per item of issue 14: the Media and Feedback
//! subresources in the spec's shapes, `DateSent` in the spec's example formats, the documented
//! error codes of create and update, and the default `messaging_service_sid`.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::Api;
use support::schema::{self, assert_conforms, assert_error};
use twilio_delivery_emulator::{Chaos, Emulator, EmulatorHandle};

const TO: &str = "+15558675310";
const FROM: &str = "+15005550006";
const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";

async fn emulator() -> (EmulatorHandle, Api) {
    let emu = Emulator::builder()
        .seed(14)
        .chaos(Chaos::calm().step_delay(Duration::from_millis(1), Duration::from_millis(3)))
        .start()
        .await
        .unwrap();
    let api = Api::new(&emu);
    (emu, api)
}

fn sub(api: &Api, sid: &str, rest: &str) -> String {
    format!("/2010-04-01/Accounts/{}/Messages/{sid}/{rest}", api.account)
}

/// Creates a message with `extra` parameters and returns the error reply (status, body).
async fn refused(api: &Api, pairs: &[(&str, &str)]) -> (u16, Value) {
    let r = api.post(&api.messages_path(), pairs).await;
    (r.status, r.json)
}

#[tokio::test]
async fn media_subresource_lists_fetches_and_deletes_in_the_spec_shapes() {
    let spec = schema::spec();
    let (emu, api) = emulator().await;
    let m = api
        .create(&[
            ("To", TO),
            ("From", FROM),
            ("MediaUrl", "https://example.com/cat.jpg"),
            ("MediaUrl", "https://example.com/dog.PNG?size=2"),
            ("MediaUrl", "https://example.com/doc"),
        ])
        .await;
    let sid = m["sid"].as_str().unwrap().to_owned();
    let media_uri = m["subresource_uris"]["media"].as_str().unwrap().to_owned();
    assert_eq!(media_uri, sub(&api, &sid, "Media.json"));

    let list = api.get(&media_uri).await;
    assert_eq!(list.status, 200, "{}", list.json);
    assert_conforms(&spec, &schema::media_list_schema(&spec), &list.json);
    let items = list.json["media_list"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    let types: Vec<&str> = items
        .iter()
        .map(|i| i["content_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["image/jpeg", "image/png", "application/octet-stream"]
    );
    assert!(items.iter().all(|i| i["parent_sid"] == sid.as_str()));
    assert_eq!(list.json["page_size"], 50);
    assert_eq!(
        list.json["first_page_uri"],
        format!("{media_uri}?PageSize=50&Page=0").as_str()
    );

    // Paging and the DateCreated filters of ListMedia.
    let page = api.get(&format!("{media_uri}?PageSize=2")).await.json;
    assert_eq!(page["media_list"].as_array().unwrap().len(), 2);
    let next = page["next_page_uri"].as_str().unwrap().to_owned();
    let second = api.get(&next).await.json;
    assert_eq!(second["media_list"].as_array().unwrap().len(), 1);
    assert!(second["next_page_uri"].is_null());
    let empty = api
        .get(&format!("{media_uri}?DateCreated%3C=2008-01-02"))
        .await;
    assert_conforms(&spec, &schema::media_list_schema(&spec), &empty.json);
    assert_eq!(empty.json["media_list"], Value::Array(vec![]));
    assert!(
        empty.json["uri"]
            .as_str()
            .unwrap()
            .contains("DateCreated%3C=2008-01-02")
    );

    let me = items[0]["sid"].as_str().unwrap().to_owned();
    assert!(me.starts_with("ME") && me.len() == 34);
    let fetched = api.get(items[0]["uri"].as_str().unwrap()).await;
    assert_eq!(fetched.status, 200);
    assert_conforms(&spec, &schema::media_schema(&spec), &fetched.json);
    assert_eq!(fetched.json, items[0]);
    assert_eq!(
        fetched.json["uri"],
        sub(&api, &sid, &format!("Media/{me}.json")).as_str()
    );

    // DeleteMedia answers 204 (the spec's only response), then the media is gone.
    assert!(schema::has_response(
        &spec,
        schema::MEDIA_PATH,
        "delete",
        "204"
    ));
    let gone = api
        .delete(&sub(&api, &sid, &format!("Media/{me}.json")))
        .await;
    assert_eq!(gone.status, 204);
    let r = api.get(&sub(&api, &sid, &format!("Media/{me}.json"))).await;
    assert_error(r.status, &r.json, 20404);
    assert_eq!(
        api.get(&media_uri).await.json["media_list"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A message without media has an empty list; an unknown message is 404.
    let sms = api
        .create(&[("To", TO), ("From", FROM), ("Body", "x")])
        .await;
    let sms_media = sms["subresource_uris"]["media"].as_str().unwrap();
    let r = api.get(sms_media).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["media_list"], Value::Array(vec![]));
    let r = api
        .get(&sub(
            &api,
            "SM00000000000000000000000000000000",
            "Media.json",
        ))
        .await;
    assert_error(r.status, &r.json, 20404);
    emu.shutdown().await;
}

#[tokio::test]
async fn feedback_subresource_in_the_spec_shape() {
    let spec = schema::spec();
    let (emu, api) = emulator().await;
    let m = api
        .create(&[("To", TO), ("From", FROM), ("Body", "x")])
        .await;
    let sid = m["sid"].as_str().unwrap();
    let path = sub(&api, sid, "Feedback.json");
    let r = api.post(&path, &[("Outcome", "unconfirmed")]).await;
    assert_eq!(
        r.status, 200,
        "the spec answers CreateMessageFeedback with 200"
    );
    assert_conforms(&spec, &schema::feedback_schema(&spec), &r.json);
    assert_eq!(r.json["outcome"], "unconfirmed");
    assert_eq!(r.json["message_sid"], sid);
    assert_eq!(r.json["uri"], path.as_str());
    let r = api.post(&path, &[("Outcome", "confirmed")]).await;
    assert_eq!(r.json["outcome"], "confirmed");
    let r = api.post(&path, &[("Outcome", "maybe")]).await;
    assert_error(r.status, &r.json, 20001);
    let r = api
        .post(
            &sub(&api, "SM00000000000000000000000000000000", "Feedback.json"),
            &[("Outcome", "confirmed")],
        )
        .await;
    assert_error(r.status, &r.json, 20404);
    let r = api.get(&path).await;
    assert_error(r.status, &r.json, 20004);
    emu.shutdown().await;
}

#[tokio::test]
async fn date_sent_filters_accept_the_spec_example_formats() {
    let (emu, api) = emulator().await;
    api.create(&[("To", TO), ("From", FROM), ("Body", "x")])
        .await;
    emu.wait_idle(Duration::from_secs(5)).await.unwrap();
    // The spec's examples for DateSent> (readEmptySentdateGreaterFormat1..3 and readFullPage1):
    // all in the past, so the message sent now matches each of them.
    for value in [
        "2008-01-02",
        "06/11/2019 22:05:25 MST",
        "2019-06-11 22:05:25.000",
        "Wed, 19 Jun 2019 22:04:00 -0000",
    ] {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("DateSent>", value)
            .finish();
        let r = api.get(&format!("{}?{query}", api.messages_path())).await;
        assert_eq!(r.status, 200, "{value}: {}", r.json);
        assert_eq!(r.json["messages"].as_array().unwrap().len(), 1, "{value}");
        let r = api
            .get(&format!(
                "{}?{}",
                api.messages_path(),
                query.replace("%3E", "%3C")
            ))
            .await;
        assert_eq!(r.status, 200, "{value}");
        assert_eq!(r.json["messages"].as_array().unwrap().len(), 0, "{value}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn date_filters_past_the_year_9999_in_gmt_answer_20001() {
    let (emu, api) = emulator().await;
    let m = api
        .create(&[
            ("To", TO),
            ("From", FROM),
            ("Body", "x"),
            ("MediaUrl", "https://example.com/cat.jpg"),
        ])
        .await;
    let sid = m["sid"].as_str().unwrap().to_owned();
    emu.wait_idle(Duration::from_secs(5)).await.unwrap();
    let media = sub(&api, &sid, "Media.json");
    let list = |path: String, key: &str, value: &str| {
        let api = api.clone();
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair(key, value)
            .finish();
        async move { api.get(&format!("{path}?{query}")).await }
    };
    // Each names 31 December 9999 in its own zone, which is already 10000 in GMT: a date the
    // emulator cannot compare, answered as any other unusable date.
    for value in [
        "9999-12-31T23:00:00-05:00",
        "12/31/9999 23:00:00 EST",
        "Fri, 31 Dec 9999 23:00:00 -0500",
    ] {
        for key in ["DateSent", "DateSent<", "DateSent>"] {
            let r = list(api.messages_path(), key, value).await;
            assert_eq!(r.status, 400, "{key}={value}: {}", r.json);
            assert_error(r.status, &r.json, 20001);
        }
        for key in ["DateCreated", "DateCreated<", "DateCreated>"] {
            let r = list(media.clone(), key, value).await;
            assert_eq!(r.status, 400, "{key}={value}: {}", r.json);
            assert_error(r.status, &r.json, 20001);
        }
    }
    // The last day in GMT still filters.
    let r = list(api.messages_path(), "DateSent", "9999-12-31T23:00:00Z").await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["messages"].as_array().unwrap().len(), 0);
    let r = list(media, "DateCreated<", "12/31/9999 18:00:00 EST").await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["media_list"].as_array().unwrap().len(), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn scheduling_codes_35111_and_35126() {
    let (_emu, api) = emulator().await;
    let (status, body) = refused(
        &api,
        &[
            ("To", TO),
            ("MessagingServiceSid", SERVICE),
            ("Body", "x"),
            ("ScheduleType", "fixed"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_error(status, &body, 35111);
    let (status, body) = refused(
        &api,
        &[
            ("To", TO),
            ("MessagingServiceSid", SERVICE),
            ("Body", "x"),
            ("ScheduleType", "recurring"),
            ("SendAt", "2099-01-01T00:00:00Z"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_error(status, &body, 35126);
}

#[tokio::test]
async fn more_than_ten_media_urls_is_21623() {
    let (emu, api) = emulator().await;
    let mut pairs = vec![("To", TO), ("From", FROM)];
    pairs.extend(std::iter::repeat_n(
        ("MediaUrl", "https://example.com/a.png"),
        11,
    ));
    let (status, body) = refused(&api, &pairs).await;
    assert_eq!(status, 400);
    assert_error(status, &body, 21623);
    pairs.pop();
    let ten = api.create(&pairs).await;
    assert_eq!(ten["num_media"], "10");
    emu.shutdown().await;
}

#[tokio::test]
async fn malformed_messaging_service_sid_is_21705() {
    let (_emu, api) = emulator().await;
    for bad in ["MGnope", "PN0123456789abcdef0123456789abcdef", "MG0123"] {
        let (status, body) = refused(
            &api,
            &[("To", TO), ("MessagingServiceSid", bad), ("Body", "x")],
        )
        .await;
        assert_eq!(status, 400, "{bad}");
        assert_error(status, &body, 21705);
    }
}

#[tokio::test]
async fn validity_period_outside_1_to_36000_is_21624() {
    let (emu, api) = emulator().await;
    for bad in ["0", "36001", "-5", "1.5", "soon"] {
        let (status, body) = refused(
            &api,
            &[
                ("To", TO),
                ("From", FROM),
                ("Body", "x"),
                ("ValidityPeriod", bad),
            ],
        )
        .await;
        assert_eq!(status, 400, "{bad}");
        assert_error(status, &body, 21624);
    }
    for good in ["1", "36000"] {
        api.create(&[
            ("To", TO),
            ("From", FROM),
            ("Body", "x"),
            ("ValidityPeriod", good),
        ])
        .await;
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn status_callback_invalid_too_long_or_badly_encoded_is_21609() {
    let (emu, api) = emulator().await;
    let long = format!("https://example.com/{}", "a".repeat(4000));
    for bad in [
        "not a url",
        "ftp://example.com/cb",
        "https://bad_host.example.com/cb",
        "https://example.com/a b",
        "https://example.com/cb?x=%zz",
        "https://example.com/cb?x=caf\u{e9}",
        "https://example.com/cb?x=<y>",
        long.as_str(),
    ] {
        let (status, body) = refused(
            &api,
            &[
                ("To", TO),
                ("From", FROM),
                ("Body", "x"),
                ("StatusCallback", bad),
            ],
        )
        .await;
        assert_eq!(status, 400, "{bad}");
        assert_error(status, &body, 21609);
    }
    // The spec's own example has no path; quotes, parentheses and escapes are valid RFC 3986.
    for good in [
        "https://example.com",
        "https://example.com/cb?tenant='a'&x=(1)!*&y=%20#rc=2",
    ] {
        api.create(&[
            ("To", TO),
            ("From", FROM),
            ("Body", "x"),
            ("StatusCallback", good),
        ])
        .await;
    }
    assert_eq!(emu.truth().len(), 2, "refused requests create nothing");
    emu.shutdown().await;
}

#[tokio::test]
async fn update_rules_answer_30400() {
    let spec = schema::spec();
    let (emu, api) = emulator().await;
    let send_at = support::send_at(20);
    let scheduled = api
        .create(&[
            ("To", TO),
            ("MessagingServiceSid", SERVICE),
            ("Body", "later"),
            ("ScheduleType", "fixed"),
            ("SendAt", &send_at),
        ])
        .await;
    let path = api.message_path(scheduled["sid"].as_str().unwrap());
    for pairs in [
        vec![],
        vec![("Body", "new text")],
        vec![("Status", "sent")],
        vec![("Status", "")],
        vec![("Status", "canceled"), ("Body", "")],
    ] {
        let r = api.post(&path, &pairs).await;
        assert_eq!(r.status, 400, "{pairs:?}");
        assert_error(r.status, &r.json, 30400);
    }
    let still = api.get(&path).await.json;
    assert_eq!(
        still["status"], "scheduled",
        "a refused update changes nothing"
    );
    assert_eq!(still["body"], "later");
    let canceled = api.post(&path, &[("Status", "canceled")]).await;
    assert_eq!(canceled.status, 200);
    assert_conforms(&spec, &schema::update_schema(&spec), &canceled.json);
    assert_eq!(canceled.json["body"], "later", "canceling does not redact");
    let redacted = api.post(&path, &[("Body", "")]).await;
    assert_eq!(redacted.json["body"], "");
    assert_eq!(redacted.json["status"], "canceled");
    emu.shutdown().await;
}

#[tokio::test]
async fn messages_without_a_service_get_a_default_messaging_service_sid() {
    let spec = schema::spec();
    let (emu, api) = emulator().await;
    let direct = api
        .create(&[("To", TO), ("From", FROM), ("Body", "x")])
        .await;
    assert_conforms(&spec, &schema::create_schema(&spec), &direct);
    let default = direct["messaging_service_sid"].as_str().unwrap().to_owned();
    assert!(default.starts_with("MG") && default.len() == 34);
    assert_ne!(default, SERVICE);
    let again = api
        .create(&[("To", TO), ("From", FROM), ("Body", "y")])
        .await;
    assert_eq!(
        again["messaging_service_sid"],
        default.as_str(),
        "one per account"
    );
    assert_eq!(direct["status"], "queued", "still sent without a service");
    let via = api
        .create(&[("To", TO), ("MessagingServiceSid", SERVICE), ("Body", "x")])
        .await;
    assert_eq!(via["messaging_service_sid"], SERVICE);
    assert_eq!(via["status"], "accepted");
    emu.shutdown().await;
}
