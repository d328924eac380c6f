//! Status callbacks against a real receiver on 127.0.0.1: lifecycle order, signatures,
//! idempotency tokens, error codes, connection overrides, chaos knobs and reproducibility.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use support::{Api, Receiver, closed_port};
use twilio_delivery_emulator::{AttemptOutcome, CallbackAttempt, Chaos, Emulator, EmulatorHandle};

const TO: &str = "+15558675310";
const FROM: &str = "+15005550006";
const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";
const IDLE: Duration = Duration::from_secs(10);

fn fast() -> Chaos {
    Chaos::calm().step_delay(Duration::from_millis(2), Duration::from_millis(6))
}

async fn start(seed: u64, chaos: Chaos) -> (EmulatorHandle, Api, Receiver) {
    let emu = Emulator::builder()
        .seed(seed)
        .chaos(chaos)
        .start()
        .await
        .unwrap();
    let api = Api::new(&emu);
    let receiver = Receiver::start(emu.auth_token()).await;
    (emu, api, receiver)
}

async fn send(api: &Api, callback: &str) -> String {
    api.create(&[
        ("To", TO),
        ("From", FROM),
        ("Body", "hi"),
        ("StatusCallback", callback),
    ])
    .await["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn attempts_for<'a>(log: &'a [CallbackAttempt], sid: &str) -> Vec<&'a CallbackAttempt> {
    log.iter().filter(|a| a.sid.as_str() == sid).collect()
}

#[tokio::test]
async fn lifecycle_in_order_signed_and_without_initial_status() {
    let (emu, api, rx) = start(1, fast()).await;
    // The query is signed; the fragment (connection overrides) is neither sent nor signed.
    let callback = format!("{}/cb?tenant=a%20b&x=1#rc=2&ct=2000", rx.base);
    let direct = send(&api, &callback).await;
    let via_service = api
        .create(&[
            ("To", TO),
            ("MessagingServiceSid", SERVICE),
            ("Body", "hi"),
            ("StatusCallback", &callback),
        ])
        .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.wait_idle(IDLE).await.unwrap();

    let by_sid = rx.statuses_by_sid();
    assert_eq!(
        by_sid[&direct],
        ["sent", "delivered"],
        "no callback for the initial queued"
    );
    assert_eq!(
        by_sid[&via_service],
        ["queued", "sent", "delivered"],
        "no callback for accepted"
    );

    let received = rx.received();
    assert_eq!(received.len(), 5);
    let mut tokens = HashSet::new();
    for r in &received {
        assert!(r.signature_valid, "bad signature on {r:?}");
        assert_eq!(r.path_and_query, "/cb?tenant=a%20b&x=1");
        assert_eq!(r.user_agent, "TwilioProxy/1.1");
        assert!(
            r.content_type
                .starts_with("application/x-www-form-urlencoded")
        );
        assert!(tokens.insert(r.idempotency_token.clone()), "token reused");
        assert!(!r.idempotency_token.is_empty());
        assert_eq!(r.param("SmsSid"), Some(r.sid()));
        assert_eq!(r.param("SmsStatus"), Some(r.status()));
        assert_eq!(r.param("AccountSid"), Some(emu.account_sid().as_str()));
        assert_eq!(r.param("ApiVersion"), Some("2010-04-01"));
        assert_eq!(r.param("To"), Some(TO));
        assert_eq!(r.param("From"), Some(FROM));
        assert_eq!(r.param("ErrorCode"), None);
        let service = r.param("MessagingServiceSid");
        assert_eq!(service, (r.sid() == via_service).then_some(SERVICE));
        let dlr = r.param("RawDlrDoneDate");
        if r.status() == "delivered" {
            let dlr = dlr.expect("RawDlrDoneDate on delivered");
            assert!(
                dlr.len() == 10 && dlr.bytes().all(|b| b.is_ascii_digit()),
                "{dlr}"
            );
        } else {
            assert_eq!(dlr, None);
        }
    }

    let log = emu.callback_log();
    assert_eq!(log.len(), 5);
    assert!(
        log.iter()
            .all(|a| a.outcome == AttemptOutcome::Response(204)
                && a.attempt == 1
                && !a.dropped
                && !a.duplicate
                && a.url == format!("{}/cb?tenant=a%20b&x=1", rx.base))
    );
    let truth = emu.truth();
    assert_eq!(truth.len(), 2);
    assert!(
        truth
            .values()
            .all(|t| t.status.as_str() == "delivered" && t.error_code.is_none())
    );
    let fetched = api.get(&api.message_path(&via_service)).await.json;
    assert_eq!(fetched["status"], "delivered");
    assert_eq!(fetched["from"], FROM, "the service picked a sender");
}

#[tokio::test]
async fn failures_carry_their_error_code() {
    let chaos = fast().outcomes(0, 1, 1);
    let (emu, api, rx) = start(3, chaos).await;
    let callback = format!("{}/cb", rx.base);
    let mut sids = Vec::new();
    for _ in 0..8 {
        sids.push(send(&api, &callback).await);
    }
    emu.wait_idle(IDLE).await.unwrap();
    let truth = emu.truth();
    let received = rx.received();
    let mut kinds = HashSet::new();
    for sid in &sids {
        let t = truth.iter().find(|(s, _)| s.as_str() == sid).unwrap().1;
        let status = t.status.as_str();
        kinds.insert(status.to_owned());
        let code = t.error_code.expect("failures have a code");
        match status {
            "failed" => assert!((30001..=30002).contains(&code)),
            "undelivered" => assert!((30003..=30008).contains(&code)),
            other => panic!("unexpected outcome {other}"),
        }
        let mine: Vec<_> = received.iter().filter(|r| r.sid() == sid).collect();
        let last = mine.last().unwrap();
        assert_eq!(last.status(), status);
        assert_eq!(last.param("ErrorCode"), Some(code.to_string().as_str()));
        assert_eq!(
            last.param("RawDlrDoneDate").is_some(),
            status == "undelivered"
        );
        for r in &mine[..mine.len() - 1] {
            assert_eq!(r.status(), "sent");
            assert_eq!(r.param("ErrorCode"), None);
        }
        let m = api.get(&api.message_path(sid)).await.json;
        assert_eq!(m["status"], status);
        assert_eq!(m["error_code"], code);
        assert!(m["error_message"].is_string());
        assert_eq!(
            m["price"].is_null(),
            status == "failed",
            "failed messages are not charged"
        );
    }
    assert_eq!(kinds.len(), 2, "seed 3 gives both outcomes: {kinds:?}");
}

/// The attempt numbers per (sid, status), in log order.
fn attempts_per_status(log: &[CallbackAttempt]) -> HashMap<(String, String), Vec<u32>> {
    let mut map: HashMap<(String, String), Vec<u32>> = HashMap::new();
    for a in log {
        map.entry((a.sid.to_string(), a.status.to_string()))
            .or_default()
            .push(a.attempt);
    }
    map
}

#[tokio::test]
async fn server_errors_are_retried_only_when_rp_says_so() {
    let (emu, api, rx) = start(3, fast()).await;
    let default = send(&api, &format!("{}/status/503", rx.base)).await;
    let with_rp = send(&api, &format!("{}/status/503#rp=5xx&rc=3", rx.base)).await;
    let client_error = send(&api, &format!("{}/status/404#rp=5xx&rc=3", rx.base)).await;
    let four_xx = send(&api, &format!("{}/status/404#rp=4xx&rc=2", rx.base)).await;
    emu.wait_idle(IDLE).await.unwrap();

    let log = emu.callback_log();
    let per = attempts_per_status(&log);
    for status in ["sent", "delivered"] {
        let key = |sid: &str| (sid.to_owned(), status.to_owned());
        assert_eq!(per[&key(&default)], [1], "5xx not retried by default");
        assert_eq!(
            per[&key(&with_rp)],
            [1, 2, 3, 4],
            "rp=5xx, rc=3: 1 + 3 retries"
        );
        assert_eq!(per[&key(&client_error)], [1], "404 is not a 5xx");
        assert_eq!(per[&key(&four_xx)], [1, 2, 3]);
    }
    let mine = attempts_for(&log, &with_rp);
    assert!(
        mine.iter()
            .all(|a| a.outcome == AttemptOutcome::Response(503))
    );
    let tokens: HashSet<_> = mine
        .iter()
        .map(|a| a.idempotency_token.clone().unwrap())
        .collect();
    assert_eq!(
        tokens.len(),
        mine.len(),
        "a new idempotency token per attempt"
    );

    let received = rx.received();
    let hits = |sid: &str| received.iter().filter(|r| r.sid() == sid).count();
    assert_eq!(hits(&default), 2);
    assert_eq!(hits(&with_rp), 8);
    assert!(received.iter().all(|r| r.signature_valid));
    let retry_tokens: HashSet<_> = received
        .iter()
        .filter(|r| r.sid() == with_rp)
        .map(|r| r.idempotency_token.clone())
        .collect();
    assert_eq!(retry_tokens.len(), 8);
}

#[tokio::test]
async fn connect_failures_are_retried_once_by_default() {
    let (emu, api, _rx) = start(4, fast()).await;
    let port = closed_port().await;
    let default = send(&api, &format!("http://127.0.0.1:{port}/cb")).await;
    let none = send(&api, &format!("http://127.0.0.1:{port}/cb#rc=0")).await;
    let more = send(&api, &format!("http://127.0.0.1:{port}/cb#rc=4")).await;
    let only_5xx = send(&api, &format!("http://127.0.0.1:{port}/cb#rp=5xx&rc=4")).await;
    emu.wait_idle(IDLE).await.unwrap();
    let log = emu.callback_log();
    let per = attempts_per_status(&log);
    for status in ["sent", "delivered"] {
        let key = |sid: &str| (sid.to_owned(), status.to_owned());
        assert_eq!(per[&key(&default)], [1, 2]);
        assert_eq!(per[&key(&none)], [1]);
        assert_eq!(per[&key(&more)], [1, 2, 3, 4, 5]);
        assert_eq!(per[&key(&only_5xx)], [1], "rp replaces the default policy");
    }
    assert!(
        log.iter()
            .all(|a| a.outcome == AttemptOutcome::ConnectFailed)
    );
}

#[tokio::test]
async fn read_timeouts_and_the_total_budget() {
    let chaos = fast().outcomes(0, 0, 1); // one callback (failed) per message
    let (emu, api, rx) = start(5, chaos).await;
    let retried = send(&api, &format!("{}/slow/2000#rt=100&rc=2&rp=rt", rx.base)).await;
    let budget = send(
        &api,
        &format!("{}/slow/2000#rt=300&tt=500&rc=5&rp=rt", rx.base),
    )
    .await;
    let not_retried = send(&api, &format!("{}/slow/2000#rt=100&rc=3", rx.base)).await;
    emu.wait_idle(IDLE).await.unwrap();
    let log = emu.callback_log();
    let count = |sid: &str| attempts_for(&log, sid).len();
    assert_eq!(count(&retried), 3);
    assert!(
        attempts_for(&log, &retried)
            .iter()
            .all(|a| a.outcome == AttemptOutcome::Timeout)
    );
    let b = count(&budget);
    assert!(
        (2..=3).contains(&b),
        "tt=500 with rt=300 allows 2 attempts, not 6: {b}"
    );
    assert_eq!(
        count(&not_retried),
        1,
        "timeouts are not retried by default"
    );
    drop(rx);
}

#[tokio::test]
async fn reorder_duplicate_and_drop_knobs() {
    let (emu, api, rx) = start(6, fast().reorder(1.0)).await;
    let sid = send(&api, &format!("{}/cb", rx.base)).await;
    emu.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        rx.statuses_by_sid()[&sid],
        ["delivered", "sent"],
        "later status first"
    );
    assert_eq!(
        emu.truth().values().next().unwrap().status.as_str(),
        "delivered"
    );
    let stored = api.get(&api.message_path(&sid)).await.json;
    assert_eq!(
        stored["status"], "delivered",
        "the resource itself is never reordered"
    );

    let (emu, api, rx) = start(6, fast().duplicate(1.0)).await;
    let sid = send(&api, &format!("{}/cb", rx.base)).await;
    emu.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        rx.statuses_by_sid()[&sid],
        ["sent", "sent", "delivered", "delivered"]
    );
    let log = emu.callback_log();
    assert_eq!(log.iter().filter(|a| a.duplicate).count(), 2);
    let tokens: HashSet<_> = rx
        .received()
        .iter()
        .map(|r| r.idempotency_token.clone())
        .collect();
    assert_eq!(tokens.len(), 4);

    let (emu, api, rx) = start(6, fast().drop(1.0)).await;
    let sid = send(&api, &format!("{}/cb", rx.base)).await;
    emu.wait_idle(IDLE).await.unwrap();
    assert!(rx.received().is_empty(), "dropped callbacks are never sent");
    let log = emu.callback_log();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|a| a.dropped
        && a.outcome == AttemptOutcome::Dropped
        && a.idempotency_token.is_none()
        && a.sid.as_str() == sid));
}

/// What a run looked like, independent of timing.
type Run = (
    Vec<(String, String, Option<u16>)>,
    Vec<(String, String, u32, String, bool, bool, Option<String>)>,
);

async fn run(seed: u64) -> Run {
    let chaos = fast()
        .outcomes(6, 2, 2)
        .reorder(0.3)
        .duplicate(0.3)
        .drop(0.2);
    let (emu, api, rx) = start(seed, chaos).await;
    for i in 0..8 {
        let cb = if i % 3 == 0 {
            format!("{}/status/503#rp=5xx&rc=1", rx.base)
        } else {
            format!("{}/cb", rx.base)
        };
        send(&api, &cb).await;
    }
    emu.wait_idle(IDLE).await.unwrap();
    let truth = emu
        .truth()
        .into_iter()
        .map(|(sid, t)| (sid.to_string(), t.status.to_string(), t.error_code))
        .collect();
    let mut log: Vec<_> = emu
        .callback_log()
        .into_iter()
        .map(|a| {
            (
                a.sid.to_string(),
                a.status.to_string(),
                a.attempt,
                a.outcome.to_string(),
                a.duplicate,
                a.dropped,
                a.idempotency_token,
            )
        })
        .collect();
    // Messages' callbacks run concurrently; within one message their order is fixed.
    log.sort_by(|a, b| a.0.cmp(&b.0));
    (truth, log)
}

#[tokio::test]
async fn the_same_seed_reproduces_the_run() {
    let a = run(42).await;
    let b = run(42).await;
    assert_eq!(a.0, b.0, "same SIDs, outcomes and codes");
    assert_eq!(
        a.1, b.1,
        "same callbacks, attempts, chaos decisions and tokens"
    );
    assert!(a.1.iter().any(|e| e.4), "the run exercises duplicates");
    assert!(a.1.iter().any(|e| e.5), "the run exercises drops");
    let c = run(43).await;
    assert_ne!(a.0, c.0, "another seed, another run");
}

#[tokio::test]
async fn scheduled_messages_fire_with_compressed_time_or_cancel() {
    // 20 minutes scaled by 0.0001 is 120 ms.
    let (emu, api, rx) = start(7, fast().time_scale(0.0001)).await;
    let callback = format!("{}/cb", rx.base);
    let send_at = support::send_at(20);
    let schedule = |api: &Api| {
        let api = api.clone();
        let (callback, send_at) = (callback.clone(), send_at.clone());
        async move {
            api.create(&[
                ("To", TO),
                ("MessagingServiceSid", SERVICE),
                ("Body", "later"),
                ("ScheduleType", "fixed"),
                ("SendAt", &send_at),
                ("StatusCallback", &callback),
            ])
            .await
        }
    };
    let fired = schedule(&api).await;
    assert_eq!(fired["status"], "scheduled");
    let fired = fired["sid"].as_str().unwrap().to_owned();
    let canceled = schedule(&api).await["sid"].as_str().unwrap().to_owned();
    let r = api
        .post(&api.message_path(&canceled), &[("Status", "canceled")])
        .await;
    assert_eq!(r.json["status"], "canceled");
    emu.wait_idle(IDLE).await.unwrap();
    let by_sid = rx.statuses_by_sid();
    assert_eq!(by_sid[&fired], ["queued", "sent", "delivered"]);
    assert_eq!(by_sid[&canceled], ["canceled"]);
    assert!(rx.received().iter().all(|r| r.signature_valid));
    let truth = emu.truth();
    let status_of = |sid: &str| {
        truth
            .iter()
            .find(|(s, _)| s.as_str() == sid)
            .map(|(_, t)| t.status.to_string())
    };
    assert_eq!(status_of(&fired).as_deref(), Some("delivered"));
    assert_eq!(status_of(&canceled).as_deref(), Some("canceled"));
    assert_eq!(
        api.get(&api.message_path(&canceled)).await.json["status"],
        "canceled"
    );
}

#[tokio::test]
async fn canceling_then_deleting_a_scheduled_message_sends_only_canceled() {
    let (emu, api, rx) = start(9, fast()).await;
    let sid = api
        .create_scheduled(TO, SERVICE, 30, &format!("{}/cb", rx.base))
        .await;
    // Both on one connection: the message is gone before its lifecycle wakes to the cancel.
    let path = api.message_path(&sid);
    let answers = api
        .pipelined(&[("POST", &path, "Status=canceled"), ("DELETE", &path, "")])
        .await;
    assert_eq!(answers, [200, 204]);
    emu.wait_idle(IDLE).await.unwrap();
    assert_eq!(rx.statuses_by_sid()[&sid], ["canceled"]);
    assert!(rx.received().iter().all(|r| r.signature_valid));
    let log = emu.callback_log();
    let logged: Vec<String> = attempts_for(&log, &sid)
        .iter()
        .map(|a| a.status.to_string())
        .collect();
    assert_eq!(logged, ["canceled"]);
    let truth = emu.truth();
    let (_, t) = truth.iter().find(|(s, _)| s.as_str() == sid).unwrap();
    assert_eq!(t.status.to_string(), "canceled");
}

/// The same under `max_messages` pressure: the canceled message, deleted, is the oldest stored
/// truth when a new message makes the emulator evict one. Its lifecycle still has the
/// `canceled` callback to send, so its truth is not evicted (it was, when "in flight" was
/// read from the stored message, which the delete had removed).
#[tokio::test]
async fn a_deleted_canceled_message_keeps_its_truth_until_its_callback() {
    let emu = Emulator::builder()
        .seed(10)
        .chaos(fast())
        .max_messages(2)
        .start()
        .await
        .unwrap();
    let api = Api::new(&emu);
    let rx = Receiver::start(emu.auth_token()).await;
    let callback = format!("{}/cb", rx.base);
    let scheduled = api.create_scheduled(TO, SERVICE, 30, &callback).await;
    let done = send(&api, &callback).await;
    // `done`'s lifecycle is over once its last callback arrived.
    let deadline = tokio::time::Instant::now() + IDLE;
    while !rx.statuses_by_sid().get(&done).is_some_and(|s| {
        s.last()
            .is_some_and(|s| ["delivered", "undelivered", "failed"].contains(&s.as_str()))
    }) {
        assert!(tokio::time::Instant::now() < deadline, "{done} not final");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let path = api.message_path(&scheduled);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("To", TO),
            ("From", FROM),
            ("Body", "x"),
            ("StatusCallback", callback.as_str()),
        ])
        .finish();
    let answers = api
        .pipelined(&[
            ("POST", &path, "Status=canceled"),
            ("DELETE", &path, ""),
            ("POST", &api.messages_path(), &body),
        ])
        .await;
    assert_eq!(answers, [200, 204, 201]);
    emu.wait_idle(IDLE).await.unwrap();
    assert_eq!(rx.statuses_by_sid()[&scheduled], ["canceled"]);
}

#[tokio::test]
async fn default_status_callback_and_shutdown() {
    let emu = Emulator::builder()
        .seed(8)
        .chaos(fast())
        .start()
        .await
        .unwrap();
    let rx = Receiver::start(emu.auth_token()).await;
    drop(emu);
    let emu = Emulator::builder()
        .seed(8)
        .chaos(fast())
        .default_status_callback(format!("{}/service-cb", rx.base))
        .start()
        .await
        .unwrap();
    let api = Api::new(&emu);
    let sid = api
        .create(&[("To", TO), ("From", FROM), ("Body", "x")])
        .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.wait_idle(IDLE).await.unwrap();
    assert_eq!(rx.statuses_by_sid()[&sid], ["sent", "delivered"]);
    assert!(
        rx.received()
            .iter()
            .all(|r| r.signature_valid && r.path_and_query == "/service-cb")
    );
    let base = emu.base_url();
    emu.shutdown().await;
    let after = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}/"))
        .send()
        .await;
    assert!(after.is_err(), "nothing listens after shutdown");
}
