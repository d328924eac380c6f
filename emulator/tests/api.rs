//! The emulated Messages API against Twilio's spec: response shapes, magic numbers, validation
//! errors, auth, paging and filters, cancel/redact/delete, and hostile input.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::schema::{self, assert_conforms, assert_error};
use support::{Api, basic};
use twilio_delivery::{ApiKeySecret, ApiKeySid};
use twilio_delivery_emulator::{Chaos, Emulator, EmulatorHandle};

const TO: &str = "+15558675310";
const FROM: &str = "+15005550006";
const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";

fn fast() -> Chaos {
    Chaos::calm().step_delay(Duration::from_millis(1), Duration::from_millis(3))
}

async fn emulator(chaos: Chaos) -> EmulatorHandle {
    Emulator::builder()
        .seed(11)
        .chaos(chaos)
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn create_fetch_update_and_list_match_the_spec() {
    let spec = schema::spec();
    let emu = emulator(fast()).await;
    let api = Api::new(&emu);

    let created = api
        .post(
            &api.messages_path(),
            &[("To", TO), ("From", FROM), ("Body", "hello")],
        )
        .await;
    assert_eq!(created.status, 201);
    assert!(
        created.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let m = created.json;
    assert_conforms(&spec, &schema::create_schema(&spec), &m);
    let sid = m["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SM"));
    assert_eq!(m["status"], "queued");
    assert_eq!(m["num_segments"], "1");
    assert_eq!(m["num_media"], "0");
    assert_eq!(m["direction"], "outbound-api");
    assert_eq!(m["api_version"], "2010-04-01");
    assert_eq!(m["price"], Value::Null);
    assert_eq!(m["error_code"], Value::Null);
    assert_eq!(m["date_sent"], Value::Null);
    assert_eq!(m["account_sid"], emu.account_sid().as_str());
    assert_eq!(m["uri"], api.message_path(&sid).as_str());

    let fetched = api.get(&api.message_path(&sid)).await;
    assert_eq!(fetched.status, 200);
    assert_conforms(&spec, &schema::fetch_schema(&spec), &fetched.json);
    assert_eq!(fetched.json["sid"], sid.as_str());

    emu.wait_idle(Duration::from_secs(5)).await.unwrap();
    let done = api.get(&api.message_path(&sid)).await.json;
    assert_conforms(&spec, &schema::fetch_schema(&spec), &done);
    assert_eq!(done["status"], "delivered");
    assert!(done["date_sent"].is_string());
    assert_eq!(done["price"], "-0.00790");
    assert_eq!(done["price_unit"], "USD");

    let redacted = api.post(&api.message_path(&sid), &[("Body", "")]).await;
    assert_eq!(redacted.status, 200);
    assert_conforms(&spec, &schema::update_schema(&spec), &redacted.json);
    assert_eq!(redacted.json["body"], "");
    assert_eq!(api.get(&api.message_path(&sid)).await.json["body"], "");

    let list = api.get(&api.messages_path()).await;
    assert_eq!(list.status, 200);
    assert_conforms(&spec, &schema::list_schema(&spec), &list.json);
    assert_eq!(list.json["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn service_media_and_segment_shapes() {
    let spec = schema::spec();
    let emu = emulator(fast().step_delay(Duration::from_secs(30), Duration::from_secs(30))).await;
    let api = Api::new(&emu);

    let via_service = api
        .create(&[("To", TO), ("MessagingServiceSid", SERVICE), ("Body", "hi")])
        .await;
    assert_conforms(&spec, &schema::create_schema(&spec), &via_service);
    assert_eq!(via_service["status"], "accepted");
    assert_eq!(via_service["from"], Value::Null);
    assert_eq!(via_service["num_segments"], "0");
    assert_eq!(via_service["messaging_service_sid"], SERVICE);

    let mms = api
        .create(&[
            ("To", TO),
            ("From", FROM),
            ("MediaUrl", "https://example.com/a.png"),
            ("MediaUrl", "https://example.com/b.png"),
        ])
        .await;
    assert_conforms(&spec, &schema::create_schema(&spec), &mms);
    assert!(mms["sid"].as_str().unwrap().starts_with("MM"));
    assert_eq!(mms["num_media"], "2");

    for (body, segments) in [
        ("a".repeat(160), "1"),
        ("a".repeat(161), "2"),
        ("€".repeat(81), "2"),
        ("ж".repeat(70), "1"),
        ("ж".repeat(71), "2"),
        ("ж".repeat(135), "3"),
    ] {
        let m = api
            .create(&[("To", TO), ("From", FROM), ("Body", &body)])
            .await;
        assert_eq!(
            m["num_segments"],
            segments,
            "{} chars",
            body.chars().count()
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn every_magic_number() {
    let emu = emulator(fast()).await;
    let api = Api::new(&emu);
    let cases: [(&str, &str, u64); 8] = [
        ("From", "+15005550001", 21212),
        ("From", "+15005550007", 21606),
        ("From", "+15005550008", 21611),
        ("To", "+15005550001", 21211),
        ("To", "+15005550002", 21612),
        ("To", "+15005550003", 21408),
        ("To", "+15005550004", 21610),
        ("To", "+15005550009", 21614),
    ];
    for (field, number, code) in cases {
        let (to, from) = if field == "To" {
            (number, FROM)
        } else {
            (TO, number)
        };
        let r = api
            .post(
                &api.messages_path(),
                &[("To", to), ("From", from), ("Body", "x")],
            )
            .await;
        assert_eq!(r.status, 400, "{field} {number}");
        assert_error(r.status, &r.json, code);
    }
    let ok = api
        .post(
            &api.messages_path(),
            &[("To", TO), ("From", "+15005550006"), ("Body", "x")],
        )
        .await;
    assert_eq!(ok.status, 201);
    assert!(emu.truth().len() == 1, "rejected requests create nothing");
}

#[tokio::test]
async fn required_and_invalid_parameters() {
    let emu = emulator(fast()).await;
    let api = Api::new(&emu);
    let path = api.messages_path();
    let cases: Vec<(Vec<(&str, &str)>, u64)> = vec![
        (vec![("From", FROM), ("Body", "x")], 21604),
        (vec![("To", TO), ("Body", "x")], 21603),
        (vec![("To", TO), ("From", FROM)], 21602),
        (
            vec![("To", "5558675310"), ("From", FROM), ("Body", "x")],
            21211,
        ),
        (
            vec![("To", TO), ("From", "not a number!"), ("Body", "x")],
            21212,
        ),
        (
            vec![
                ("To", TO),
                ("From", FROM),
                ("Body", "x"),
                ("StatusCallback", "ftp://x/cb"),
            ],
            21609,
        ),
        (
            vec![
                ("To", TO),
                ("From", FROM),
                ("Body", "x"),
                ("StatusCallback", "https://bad_host/cb"),
            ],
            21609,
        ),
        (
            vec![
                ("To", TO),
                ("MessagingServiceSid", SERVICE),
                ("Body", "x"),
                ("ScheduleType", "fixed"),
                ("SendAt", "2000-01-01T00:00:00Z"),
            ],
            35114,
        ),
        (
            vec![
                ("To", TO),
                ("MessagingServiceSid", SERVICE),
                ("Body", "x"),
                ("ScheduleType", "fixed"),
                ("SendAt", "tomorrow"),
            ],
            35114,
        ),
        (
            vec![("To", TO), ("MessagingServiceSid", "MGnope"), ("Body", "x")],
            21705,
        ),
    ];
    for (pairs, code) in cases {
        let r = api.post(&path, &pairs).await;
        assert_eq!(r.status, 400, "{pairs:?}: {}", r.json);
        assert_error(r.status, &r.json, code);
    }
    let long = "a".repeat(1601);
    let r = api
        .post(&path, &[("To", TO), ("From", FROM), ("Body", &long)])
        .await;
    assert_error(r.status, &r.json, 21617);

    // A JSON body carries no form parameters, as on Twilio.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .post(format!("{}{path}", api.base))
        .header(
            "Authorization",
            basic(emu.account_sid().as_str(), emu.auth_token().expose()),
        )
        .header("Content-Type", "application/json")
        .body(r#"{"To":"+15558675310","From":"+15005550006","Body":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_error(400, &body, 21604);
    assert!(emu.truth().is_empty());
}

#[tokio::test]
async fn auth_failures_and_api_keys() {
    let key = ApiKeySid::new("SKfedcba9876543210fedcba9876543210").unwrap();
    let emu = Emulator::builder()
        .seed(5)
        .chaos(fast())
        .api_key(key.clone(), ApiKeySecret::new("key-secret"))
        .start()
        .await
        .unwrap();
    let good = Api::new(&emu);
    let pairs = [("To", TO), ("From", FROM), ("Body", "x")];

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let none = http
        .post(format!("{}{}", good.base, good.messages_path()))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status().as_u16(), 401);
    assert_eq!(
        none.headers()["www-authenticate"].to_str().unwrap(),
        "Basic realm=\"Twilio API\""
    );
    let body: Value = serde_json::from_slice(&none.bytes().await.unwrap()).unwrap();
    assert_error(401, &body, 20003);

    for (user, password) in [
        (emu.account_sid().as_str(), "wrong-token"),
        (key.as_str(), "wrong-secret"),
        (key.as_str(), emu.auth_token().expose()),
        (
            "ACffffffffffffffffffffffffffffffff",
            emu.auth_token().expose(),
        ),
    ] {
        let api = Api::with_credentials(&emu, user, password);
        let r = api.post(&api.messages_path(), &pairs).await;
        assert_eq!(r.status, 401, "{user}");
        assert_error(r.status, &r.json, 20003);
        let r = api.get(&api.messages_path()).await;
        assert_eq!(r.status, 401);
    }

    let with_key = Api::with_credentials(&emu, key.as_str(), "key-secret");
    let m = with_key.create(&pairs).await;
    assert_eq!(m["account_sid"], emu.account_sid().as_str());

    // The right credentials for another account's path are refused too.
    let mut other = Api::new(&emu);
    other.account = "ACffffffffffffffffffffffffffffffff".to_owned();
    let r = other.get(&other.messages_path()).await;
    assert_error(r.status, &r.json, 20003);

    let r = good.get("/2010-04-01/Accounts/").await;
    assert_error(r.status, &r.json, 20404);
    let r = good
        .get(&good.message_path("SM00000000000000000000000000000000"))
        .await;
    assert_error(r.status, &r.json, 20404);
    let r = good.get(&good.message_path("nonsense")).await;
    assert_error(r.status, &r.json, 20404);
    let r = good
        .get(&format!("/2010-04-01/Accounts/{}/Calls.json", good.account))
        .await;
    assert_error(r.status, &r.json, 20404);
    let put = http
        .put(format!("{}{}", good.base, good.messages_path()))
        .header(
            "Authorization",
            basic(emu.account_sid().as_str(), emu.auth_token().expose()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 405);
    let body: Value = serde_json::from_slice(&put.bytes().await.unwrap()).unwrap();
    assert_error(405, &body, 20004);
}

/// Follows `next_page_uri` from a first page; returns every page.
async fn pages(api: &Api, first: &str) -> Vec<Value> {
    let spec = schema::spec();
    let mut out = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(uri) = next {
        let r = api.get(&uri).await;
        assert_eq!(r.status, 200, "{uri}: {}", r.json);
        assert_conforms(&spec, &schema::list_schema(&spec), &r.json);
        next = r.json["next_page_uri"].as_str().map(str::to_owned);
        out.push(r.json);
        assert!(out.len() < 20, "paging does not end");
    }
    out
}

fn sids(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn paging_three_pages_and_filters() {
    let emu = emulator(fast()).await;
    let api = Api::new(&emu);
    let mut created = Vec::new();
    for i in 0..7 {
        let to = if i % 2 == 0 { TO } else { "+15558675311" };
        let m = api
            .create(&[("To", to), ("From", FROM), ("Body", "page me")])
            .await;
        created.push(m["sid"].as_str().unwrap().to_owned());
    }
    emu.wait_idle(Duration::from_secs(5)).await.unwrap();

    let first = format!("{}?PageSize=3", api.messages_path());
    let all = pages(&api, &first).await;
    assert_eq!(all.len(), 3);
    let sizes: Vec<usize> = all.iter().map(|p| sids(p).len()).collect();
    assert_eq!(sizes, [3, 3, 1]);
    let listed: Vec<String> = all.iter().flat_map(sids).collect();
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);
    for (i, p) in all.iter().enumerate() {
        let i = i as u64;
        assert_eq!(p["page"], i);
        assert_eq!(p["page_size"], 3);
        assert_eq!(p["start"], i * 3);
        assert_eq!(p["end"], i * 3 + sids(p).len() as u64 - 1);
        let expected_first = format!("{}?PageSize=3&Page=0", api.messages_path());
        assert_eq!(p["first_page_uri"], expected_first.as_str());
        assert_eq!(p["previous_page_uri"].is_null(), i == 0);
    }
    assert!(all[2]["next_page_uri"].is_null());
    // previous_page_uri leads back to the same messages.
    let back = api.get(all[2]["previous_page_uri"].as_str().unwrap()).await;
    assert_eq!(sids(&back.json), sids(&all[1]));
    // Page numbers alone work too.
    let by_number = api
        .get(&format!("{}?PageSize=3&Page=1", api.messages_path()))
        .await;
    assert_eq!(sids(&by_number.json), sids(&all[1]));

    let to_filtered = pages(
        &api,
        &format!("{}?To=%2B15558675311&PageSize=2", api.messages_path()),
    )
    .await;
    let filtered: Vec<String> = to_filtered.iter().flat_map(sids).collect();
    assert_eq!(filtered.len(), 3);
    assert!(
        to_filtered[0]["uri"]
            .as_str()
            .unwrap()
            .contains("To=%2B15558675311")
    );
    assert!(
        to_filtered[0]["next_page_uri"]
            .as_str()
            .unwrap()
            .contains("To=%2B15558675311")
    );

    let today = time::OffsetDateTime::now_utc().date();
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let today = today.format(&fmt).unwrap();
    for (query, expected) in [
        (format!("DateSent={today}"), 7),
        (format!("DateSent%3E={today}"), 7),
        (format!("DateSent%3C={today}"), 7),
        ("DateSent%3C=2000-01-01".to_owned(), 0),
        ("DateSent%3E=2999-01-01T00:00:00Z".to_owned(), 0),
        ("From=%2B15005550006".to_owned(), 7),
        ("From=%2B19999999999".to_owned(), 0),
    ] {
        let r = api
            .get(&format!("{}?{query}&PageSize=50", api.messages_path()))
            .await;
        assert_eq!(sids(&r.json).len(), expected, "{query}");
    }

    for bad in [
        "PageSize=0",
        "PageSize=-1",
        "PageSize=abc",
        "Page=-1",
        "PageToken=XYZ",
        "DateSent=someday",
    ] {
        let r = api.get(&format!("{}?{bad}", api.messages_path())).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_error(r.status, &r.json, 20001);
    }
    let capped = api
        .get(&format!("{}?PageSize=5000", api.messages_path()))
        .await;
    assert_eq!(capped.json["page_size"], 1000);
}

#[tokio::test]
async fn cancel_redact_and_delete_rules() {
    let spec = schema::spec();
    // Slow steps: messages stay in progress during the test.
    let emu = emulator(fast().step_delay(Duration::from_secs(60), Duration::from_secs(60))).await;
    let api = Api::new(&emu);
    let sid = api
        .create(&[("To", TO), ("From", FROM), ("Body", "x")])
        .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = api.message_path(&sid);

    let r = api.post(&path, &[("Status", "canceled")]).await;
    assert_error(r.status, &r.json, 30409);
    let r = api.post(&path, &[("Status", "sent")]).await;
    assert_error(r.status, &r.json, 30400);
    let r = api.post(&path, &[("Body", "new text")]).await;
    assert_error(r.status, &r.json, 30400);
    let r = api.delete(&path).await;
    assert_eq!(r.status, 400);
    assert_error(r.status, &r.json, 20009);
    assert_eq!(
        api.get(&path).await.status,
        200,
        "a refused delete changes nothing"
    );

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
    assert_conforms(&spec, &schema::create_schema(&spec), &scheduled);
    assert_eq!(scheduled["status"], "scheduled");
    let ssid = scheduled["sid"].as_str().unwrap().to_owned();
    let canceled = api
        .post(&api.message_path(&ssid), &[("Status", "canceled")])
        .await;
    assert_eq!(canceled.status, 200);
    assert_conforms(&spec, &schema::update_schema(&spec), &canceled.json);
    assert_eq!(canceled.json["status"], "canceled");
    let again = api
        .post(&api.message_path(&ssid), &[("Status", "canceled")])
        .await;
    assert_error(again.status, &again.json, 30409);
    let truth = emu.truth();
    let t = truth.iter().find(|(s, _)| s.as_str() == ssid).unwrap().1;
    assert_eq!(t.status.as_str(), "canceled");

    // A canceled message is final: it can be deleted.
    let gone = api.delete(&api.message_path(&ssid)).await;
    assert_eq!(gone.status, 204);
    assert_eq!(gone.json, Value::Null);
    let r = api.get(&api.message_path(&ssid)).await;
    assert_error(r.status, &r.json, 20404);
    let r = api.delete(&api.message_path(&ssid)).await;
    assert_error(r.status, &r.json, 20404);
    emu.shutdown().await;
}

#[tokio::test]
async fn in_flight_cap_answers_429_and_store_is_bounded() {
    let emu = Emulator::builder()
        .seed(3)
        .max_messages(2)
        .chaos(fast().step_delay(Duration::from_secs(60), Duration::from_secs(60)))
        .start()
        .await
        .unwrap();
    let api = Api::new(&emu);
    let pairs = [("To", TO), ("From", FROM), ("Body", "x")];
    api.create(&pairs).await;
    api.create(&pairs).await;
    let r = api.post(&api.messages_path(), &pairs).await;
    assert_eq!(r.status, 429);
    assert_error(r.status, &r.json, 20429);
    emu.shutdown().await;

    let emu = Emulator::builder()
        .seed(3)
        .max_messages(3)
        .chaos(fast())
        .start()
        .await
        .unwrap();
    let api = Api::new(&emu);
    let mut last = Vec::new();
    for _ in 0..6 {
        last.push(api.create(&pairs).await["sid"].as_str().unwrap().to_owned());
        emu.wait_idle(Duration::from_secs(5)).await.unwrap();
    }
    let listed = api.get(&api.messages_path()).await;
    let listed = sids(&listed.json);
    let newest: Vec<String> = last.iter().rev().take(3).cloned().collect();
    assert_eq!(listed, newest, "the oldest messages are evicted");
    assert_eq!(emu.truth().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_exceed_max_messages() {
    let pairs = [("To", TO), ("From", FROM), ("Body", "x")];
    for round in 0..40 {
        let emu = Emulator::builder()
            .seed(round)
            .max_messages(1)
            .chaos(fast().step_delay(Duration::from_secs(60), Duration::from_secs(60)))
            .start()
            .await
            .unwrap();
        let api = Api::new(&emu);
        let creates: Vec<_> = (0..40)
            .map(|_| {
                let api = api.clone();
                tokio::spawn(async move { api.post(&api.messages_path(), &pairs).await })
            })
            .collect();
        let mut created = Vec::new();
        for create in creates {
            let r = create.await.unwrap();
            match r.status {
                201 => created.push(r.json["sid"].as_str().unwrap().to_owned()),
                _ => assert_error(r.status, &r.json, 20429),
            }
        }
        assert_eq!(created.len(), 1, "round {round}: {created:?}");
        let listed = api.get(&api.messages_path()).await;
        assert_eq!(sids(&listed.json), created, "round {round}");
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn a_message_in_flight_is_never_evicted() {
    let emu = Emulator::builder()
        .seed(5)
        .max_messages(2)
        .chaos(fast())
        .start()
        .await
        .unwrap();
    let api = Api::new(&emu);
    let rx = support::Receiver::start(emu.auth_token()).await;
    let scheduled = api
        .create_scheduled(TO, SERVICE, 30, &format!("{}/cb", rx.base))
        .await;
    let pairs = [("To", TO), ("From", FROM), ("Body", "x")];
    let done = api.create(&pairs).await["sid"].as_str().unwrap().to_owned();
    // A third message is accepted once `done` has finished (the scheduled one is in flight);
    // storing it evicts the oldest finished message, never the scheduled one.
    let mut tries = 0;
    let third = loop {
        let r = api.post(&api.messages_path(), &pairs).await;
        if r.status == 201 {
            break r.json["sid"].as_str().unwrap().to_owned();
        }
        assert_error(r.status, &r.json, 20429);
        tries += 1;
        assert!(tries < 500, "the second message never finished");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let listed = api.get(&api.messages_path()).await;
    assert_eq!(sids(&listed.json), [third, scheduled.clone()]);
    let r = api.get(&api.message_path(&done)).await;
    assert_error(r.status, &r.json, 20404);
    assert_eq!(
        api.get(&api.message_path(&scheduled)).await.json["status"],
        "scheduled"
    );
    assert!(
        emu.truth().keys().any(|s| s.as_str() == scheduled),
        "its truth is kept too"
    );
    emu.advance_time(Duration::from_secs(31 * 60));
    emu.wait_idle(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        api.get(&api.message_path(&scheduled)).await.json["status"],
        "delivered"
    );
    assert_eq!(
        rx.statuses_by_sid()[&scheduled],
        ["queued", "sent", "delivered"]
    );
}

#[tokio::test]
async fn hostile_input_gets_json_errors_and_the_server_survives() {
    let emu = emulator(fast()).await;
    let api = Api::new(&emu);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let auth = basic(emu.account_sid().as_str(), emu.auth_token().expose());
    let base = &api.base;
    let path = api.messages_path();

    let mut rng = fastrand::Rng::with_seed(99);
    let mut requests: Vec<(reqwest::Method, String, Vec<u8>, Option<&str>)> = vec![
        (
            reqwest::Method::POST,
            path.clone(),
            vec![0xff, 0xfe, b'=', 0x80],
            Some("application/x-www-form-urlencoded"),
        ),
        (
            reqwest::Method::POST,
            path.clone(),
            b"To=%ZZ&From=%&Body==&&=".to_vec(),
            Some("application/x-www-form-urlencoded"),
        ),
        (
            reqwest::Method::POST,
            path.clone(),
            vec![b'a'; 300 * 1024],
            Some("application/x-www-form-urlencoded"),
        ),
        (
            reqwest::Method::GET,
            format!("{path}?PageToken=PA%FF%FF&DateSent%3C=%00"),
            vec![],
            None,
        ),
        (
            reqwest::Method::GET,
            format!("{path}?Page=18446744073709551615&PageSize=1000"),
            vec![],
            None,
        ),
        (
            reqwest::Method::GET,
            format!("{path}?PageToken=PAffffffffffffffffff"),
            vec![],
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/2010-04-01/Accounts/{}/Messages/%2e%2e.json", api.account),
            vec![],
            None,
        ),
        (
            reqwest::Method::GET,
            format!(
                "/2010-04-01/Accounts/{}/Messages/SM.json/x.json",
                api.account
            ),
            vec![],
            None,
        ),
        (
            reqwest::Method::PATCH,
            api.message_path("SM0123456789abcdef0123456789abcdef"),
            vec![],
            None,
        ),
        (
            reqwest::Method::POST,
            api.message_path("SMé"),
            b"Status=canceled".to_vec(),
            Some("application/x-www-form-urlencoded"),
        ),
    ];
    for _ in 0..40 {
        let len = rng.usize(0..200);
        let body: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(len).collect();
        requests.push((
            reqwest::Method::POST,
            path.clone(),
            body,
            Some("application/x-www-form-urlencoded"),
        ));
    }
    for (method, target, body, content_type) in requests {
        let mut req = http
            .request(method.clone(), format!("{base}{target}"))
            .header("Authorization", &auth)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{method} {target}: not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        if status >= 400 {
            let code = json["code"].as_u64().unwrap_or_else(|| panic!("{json}"));
            assert_error(status, &json, code);
        }
    }
    for bad_auth in [
        "Basic",
        "Basic %%%",
        "Basic Og==",
        "Digest x",
        "Basic dXNlcg==",
    ] {
        let r = http
            .get(format!("{base}{path}"))
            .header("Authorization", bad_auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{bad_auth}");
    }
    let ok = api.get(&path).await;
    assert_eq!(ok.status, 200, "the server still answers");
}

#[tokio::test]
async fn extreme_knobs_do_not_panic() {
    let chaos = Chaos::calm()
        .step_delay(Duration::MAX, Duration::MAX)
        .time_scale(f64::INFINITY);
    let emu = emulator(chaos).await;
    let api = Api::new(&emu);
    let m = api
        .create(&[("To", TO), ("From", FROM), ("Body", "x")])
        .await;
    assert_eq!(m["status"], "queued");
    let send_at = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let s = api
        .create(&[
            ("To", TO),
            ("MessagingServiceSid", SERVICE),
            ("Body", "x"),
            ("ScheduleType", "fixed"),
            ("SendAt", &send_at),
        ])
        .await;
    let sid = s["sid"].as_str().unwrap();
    let r = api
        .post(&api.message_path(sid), &[("Status", "canceled")])
        .await;
    assert_eq!(r.json["status"], "canceled");
    assert!(
        emu.wait_idle(Duration::from_millis(200)).await.is_err(),
        "the first message is still in flight"
    );
    emu.shutdown().await;
}
