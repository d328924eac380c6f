//! The admin endpoints under `/emulator/` and their library twins: truth, callback log,
//! advancing the clock for scheduled messages, waiting for quiet, reset.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::schema::assert_error;
use support::{Api, Receiver};
use twilio_delivery_emulator::{Chaos, Emulator, EmulatorError, EmulatorHandle, Outcome};

const TO: &str = "+15558675310";
const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";

async fn start(seed: u64, chaos: Chaos) -> (EmulatorHandle, Api, Receiver) {
    let emu = Emulator::builder()
        .seed(seed)
        .chaos(chaos)
        .start()
        .await
        .unwrap();
    let api = Api::new(&emu);
    let rx = Receiver::start(emu.auth_token()).await;
    (emu, api, rx)
}

fn fast() -> Chaos {
    Chaos::calm().step_delay(Duration::from_millis(1), Duration::from_millis(3))
}

#[tokio::test]
async fn truth_callbacks_wait_idle_and_reset_over_http() {
    let chaos = fast().recipient("+15550000001", Outcome::Failed(30002));
    let (emu, api, rx) = start(51, chaos).await;
    let callback = format!("{}/cb", rx.base);
    let ok = api
        .create(&[
            ("To", TO),
            ("From", "+15005550006"),
            ("Body", "a"),
            ("StatusCallback", &callback),
        ])
        .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = api
        .create(&[
            ("To", "+15550000001"),
            ("From", "+15005550006"),
            ("Body", "b"),
            ("StatusCallback", &callback),
        ])
        .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let idle = api.post("/emulator/wait-idle", &[("Timeout", "10")]).await;
    assert_eq!(idle.status, 200, "{}", idle.json);
    assert_eq!(idle.json["busy"], 0);

    let truth = api.get("/emulator/truth").await;
    assert_eq!(truth.status, 200);
    let truth = truth.json["truth"].as_array().unwrap().clone();
    assert_eq!(truth.len(), 2);
    assert_eq!(truth[0]["sid"], ok.as_str());
    assert_eq!(truth[0]["status"], "delivered");
    assert_eq!(truth[0]["error_code"], Value::Null);
    assert_eq!(truth[1]["sid"], failed.as_str());
    assert_eq!(truth[1]["status"], "failed");
    assert_eq!(truth[1]["error_code"], 30002);

    let log = api.get("/emulator/callbacks").await.json["callbacks"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(log.len(), 3, "sent + delivered, failed");
    for a in &log {
        assert_eq!(a["outcome"], "response");
        assert_eq!(a["http_status"], 204);
        assert_eq!(a["url"], callback.as_str());
        assert_eq!(a["attempt"], 1);
        assert!(a["idempotency_token"].is_string());
    }
    assert_eq!(log.len(), emu.callback_log().len());

    let info = api.get("/emulator/info").await.json;
    assert_eq!(info["account_sid"], emu.account_sid().as_str());
    assert_eq!(info["seed"], 51);
    assert_eq!(info["messages"], 2);
    assert!(
        !info.to_string().contains(emu.auth_token().expose()),
        "no secrets"
    );

    let reset = api.post("/emulator/reset", &[]).await;
    assert_eq!(reset.status, 204);
    assert!(emu.truth().is_empty() && emu.callback_log().is_empty());
    let list = api.get(&api.messages_path()).await.json;
    assert_eq!(list["messages"], Value::Array(vec![]));
    // Same seed, fresh run: the first message gets the first SID again.
    let again = api
        .create(&[("To", TO), ("From", "+15005550006"), ("Body", "a")])
        .await;
    assert_eq!(again["sid"], ok.as_str());
}

#[tokio::test]
async fn admin_endpoints_need_the_api_credentials_and_say_what_is_wrong() {
    let (emu, api, _rx) = start(52, fast()).await;
    let stranger = Api::with_credentials(&emu, emu.account_sid().as_str(), "wrong");
    let r = stranger.get("/emulator/truth").await;
    assert_error(r.status, &r.json, 20003);
    let r = api.post("/emulator/time/advance", &[]).await;
    assert_error(r.status, &r.json, 20001);
    let r = api
        .post("/emulator/time/advance", &[("Seconds", "-1")])
        .await;
    assert_error(r.status, &r.json, 20001);
    let r = api.get("/emulator/reset").await;
    assert_error(r.status, &r.json, 20004);
    let r = api.get("/emulator/nothing").await;
    assert_error(r.status, &r.json, 20404);
}

#[tokio::test]
async fn advancing_time_sends_scheduled_messages_now() {
    // Real time (scale 1): without an advance, these would wait 20 and 40 minutes.
    let (emu, api, rx) = start(53, fast()).await;
    let callback = format!("{}/cb", rx.base);
    let schedule = |minutes: i64| {
        let (api, callback) = (api.clone(), callback.clone());
        async move {
            api.create(&[
                ("To", TO),
                ("MessagingServiceSid", SERVICE),
                ("Body", "later"),
                ("ScheduleType", "fixed"),
                ("SendAt", &support::send_at(minutes)),
                ("StatusCallback", &callback),
            ])
            .await["sid"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let soon = schedule(20).await;
    let later = schedule(40).await;
    let status = |sid: String| {
        let api = api.clone();
        async move { api.get(&api.message_path(&sid)).await.json["status"].clone() }
    };

    let r = api
        .post("/emulator/time/advance", &[("Seconds", "1260")])
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["advanced_seconds"], 1260.0);
    let mut polls = 0;
    while status(soon.clone()).await != "delivered" {
        polls += 1;
        assert!(polls < 200, "the advanced message was not sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(later.clone()).await, "scheduled");
    let fetched = api.get(&api.message_path(&soon)).await.json;
    let sent = time::OffsetDateTime::parse(
        fetched["date_sent"].as_str().unwrap(),
        &time::format_description::well_known::Rfc2822,
    )
    .unwrap();
    assert!(
        sent > time::OffsetDateTime::now_utc() + time::Duration::minutes(20),
        "dates follow the emulated clock"
    );

    // The library's twin of the endpoint.
    emu.advance_time(Duration::from_secs(20 * 60));
    emu.wait_idle(Duration::from_secs(10)).await.unwrap();
    assert_eq!(status(later.clone()).await, "delivered");
    let by_sid = rx.statuses_by_sid();
    assert_eq!(by_sid[&soon], ["queued", "sent", "delivered"]);
    assert_eq!(by_sid[&later], ["queued", "sent", "delivered"]);

    // SendAt is checked against the emulated clock: 10 minutes ahead of real time is now past.
    let r = api
        .post(
            &api.messages_path(),
            &[
                ("To", TO),
                ("MessagingServiceSid", SERVICE),
                ("Body", "x"),
                ("ScheduleType", "fixed"),
                ("SendAt", &support::send_at(10)),
            ],
        )
        .await;
    assert_error(r.status, &r.json, 35114);
}

#[tokio::test]
async fn an_advance_right_after_a_create_counts_for_that_message() {
    // Real time (scale 1): without the advance, the message would wait 10 minutes.
    let (emu, api, rx) = start(55, fast()).await;
    let create: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("To", TO),
            ("MessagingServiceSid", SERVICE),
            ("Body", "later"),
            ("ScheduleType", "fixed"),
            ("SendAt", &support::send_at(10)),
            ("StatusCallback", &format!("{}/cb", rx.base)),
        ])
        .finish();
    // Both on one connection: the advance comes before the new lifecycle first runs.
    let messages = api.messages_path();
    let answers = api
        .pipelined(&[
            ("POST", &messages, &create),
            ("POST", "/emulator/time/advance", "Seconds=900"),
        ])
        .await;
    assert_eq!(answers, [201, 200]);
    emu.wait_idle(Duration::from_secs(10))
        .await
        .expect("the advance made the message due");
    let truth = emu.truth();
    let sid = truth.keys().next().unwrap().as_str().to_owned();
    assert_eq!(rx.statuses_by_sid()[&sid], ["queued", "sent", "delivered"]);
    assert_eq!(
        api.get(&api.message_path(&sid)).await.json["status"],
        "delivered"
    );
}

/// The emulated `now` that `GET /emulator/info` (or an advance) reports.
fn reported_now(info: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        info["now"].as_str().unwrap(),
        &time::format_description::well_known::Rfc2822,
    )
    .unwrap()
}

#[tokio::test]
async fn an_advance_past_the_year_9999_is_refused_and_the_clock_never_goes_back() {
    let (emu, api, _rx) = start(56, fast()).await;
    let advance = |seconds: &'static str| {
        let api = api.clone();
        async move {
            api.post("/emulator/time/advance", &[("Seconds", seconds)])
                .await
        }
    };
    let r = advance("1e11").await;
    assert_eq!(r.status, 200, "{}", r.json);
    let first = reported_now(&r.json);
    assert!(first.year() > 5000, "{first}");
    for too_far in ["3e11", "1e30"] {
        let r = advance(too_far).await;
        assert_eq!(r.status, 400, "{too_far}: {}", r.json);
        assert_error(r.status, &r.json, 20001);
    }
    let info = api.get("/emulator/info").await.json;
    assert!(reported_now(&info) >= first, "{info}");
    assert_eq!(info["advanced_seconds"], 1e11);

    // The library's twin has no error to give: the clock stops at the end of the year 9999.
    emu.advance_time(Duration::from_secs(300_000_000_000));
    let info = api.get("/emulator/info").await.json;
    let last = reported_now(&info);
    assert_eq!(last.year(), 9999, "{info}");
    emu.advance_time(Duration::MAX);
    let info = api.get("/emulator/info").await.json;
    assert!(reported_now(&info) >= last, "{info}");
    // Messages still get dates.
    let m = api
        .create(&[("To", TO), ("From", "+15005550006"), ("Body", "x")])
        .await;
    assert!(m["date_created"].as_str().unwrap().contains("9999"), "{m}");
}

#[tokio::test]
async fn library_reset_stops_work_in_flight() {
    let slow = Chaos::calm().step_delay(Duration::from_secs(60), Duration::from_secs(60));
    let (emu, api, rx) = start(54, slow).await;
    api.create(&[
        ("To", TO),
        ("From", "+15005550006"),
        ("Body", "x"),
        ("StatusCallback", &format!("{}/cb", rx.base)),
    ])
    .await;
    assert!(emu.wait_idle(Duration::from_millis(100)).await.is_err());
    emu.reset();
    emu.wait_idle(Duration::from_secs(5))
        .await
        .expect("a reset stops the lifecycles in flight");
    assert!(rx.received().is_empty());
    assert!(emu.truth().is_empty());
}

#[tokio::test]
async fn an_invalid_default_status_callback_is_refused_at_start() {
    let err = Emulator::builder()
        .default_status_callback("http://bad_host/cb")
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, EmulatorError::InvalidStatusCallback), "{err}");
}
