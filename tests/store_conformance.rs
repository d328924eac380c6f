//! One conformance suite for `StatusStore`, run against every backend: `MemoryStore`,
//! `SqliteStore` (in memory and in a temp file) and `PostgresStore` (`TEST_DATABASE_URL`).

#[cfg(feature = "postgres")]
mod pg_drop;
mod skip;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use twilio_delivery::model::{Applied, EventSource, MessageRecord, SentMessage, StatusEvent};
use twilio_delivery::status::Outcome;
use twilio_delivery::store::{ListQuery, StatusStore};
use twilio_delivery::{AccountSid, MessageSid, MessageStatus, MessagingServiceSid};

const T0: OffsetDateTime = datetime!(2024-05-01 12:00:00 UTC);

fn at(secs: i64) -> OffsetDateTime {
    T0 + Duration::seconds(secs)
}

fn sid(n: u32) -> MessageSid {
    MessageSid::new(format!("SM{n:032x}")).unwrap()
}

fn account() -> AccountSid {
    AccountSid::new(format!("AC{:032x}", 7)).unwrap()
}

fn service() -> MessagingServiceSid {
    MessagingServiceSid::new(format!("MG{:032x}", 9)).unwrap()
}

fn st(s: &str) -> MessageStatus {
    MessageStatus::parse(s)
}

fn event(n: u32, status: &str, secs: i64) -> StatusEvent {
    let mut e = StatusEvent::new(sid(n), st(status), EventSource::Callback);
    e.received_at = at(secs);
    e.raw = vec![
        ("MessageSid".into(), sid(n).to_string()),
        ("MessageStatus".into(), status.into()),
    ];
    e
}

fn failing(n: u32, status: &str, secs: i64, code: u32) -> StatusEvent {
    let mut e = event(n, status, secs);
    e.error_code = Some(code);
    e.error_message = Some(format!("error {code}"));
    e
}

fn sent(n: u32, status: &str, secs: i64) -> SentMessage {
    let mut s = SentMessage::new(sid(n), "+15550000001", st(status));
    s.created_at = at(secs);
    s
}

/// The fields of an [`Applied`] (a non-exhaustive struct), to compare with [`applied`].
type Shape = (Outcome, Option<MessageStatus>, MessageStatus, bool);

fn shape(a: &Applied) -> Shape {
    (
        a.outcome,
        a.previous.clone(),
        a.current.clone(),
        a.new_event,
    )
}

fn applied(outcome: Outcome, previous: Option<&str>, current: &str, new_event: bool) -> Shape {
    (outcome, previous.map(st), st(current), new_event)
}

async fn get(store: &dyn StatusStore, n: u32) -> MessageRecord {
    store.get(&sid(n)).await.unwrap().expect("record exists")
}

async fn history_statuses(store: &dyn StatusStore, n: u32) -> Vec<MessageStatus> {
    let h = store.history(&sid(n)).await.unwrap();
    h.into_iter().map(|e| e.status).collect()
}

// ---------------------------------------------------------------------------------------------
// The suite: every case takes a fresh, migrated store.
// ---------------------------------------------------------------------------------------------

async fn record_sent_then_callbacks(store: &dyn StatusStore) {
    let mut s = sent(1, "queued", 0);
    s.account_sid = Some(account());
    s.from = Some("+15559990000".into());
    s.messaging_service_sid = Some(service());
    s.body = Some("hello ☃".into());
    s.num_segments = Some(2);
    let a = store.record_sent(&s).await.unwrap();
    assert_eq!(shape(&a), applied(Outcome::Advanced, None, "queued", false));

    let r = get(store, 1).await;
    assert_eq!(r.sid, sid(1));
    assert_eq!(r.account_sid, Some(account()));
    assert_eq!(r.to.as_deref(), Some("+15550000001"));
    assert_eq!(r.from.as_deref(), Some("+15559990000"));
    assert_eq!(r.messaging_service_sid, Some(service()));
    assert_eq!(r.body.as_deref(), Some("hello ☃"));
    assert_eq!(r.num_segments, Some(2));
    assert_eq!(r.status, MessageStatus::Queued);
    assert_eq!((r.error_code, r.error_message), (None, None));
    assert!(r.sent_recorded);
    assert_eq!(r.created_at, at(0));
    assert!(store.history(&sid(1)).await.unwrap().is_empty());

    let a = store.apply(&event(1, "sent", 1)).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Advanced, Some("queued"), "sent", true)
    );
    assert!(a.changed());
    let mut d = event(1, "delivered", 2);
    d.idempotency_token = Some("tok-d".into());
    let a = store.apply(&d).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Advanced, Some("sent"), "delivered", true)
    );

    let r = get(store, 1).await;
    assert_eq!(r.status, MessageStatus::Delivered);
    assert_eq!(r.created_at, at(0), "created_at stays the send time");
    assert_eq!(r.body.as_deref(), Some("hello ☃"));
    let h = store.history(&sid(1)).await.unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].status, MessageStatus::Sent);
    assert_eq!(h[0].received_at, at(1));
    assert_eq!(h[0].source, EventSource::Callback);
    assert_eq!(h[0].idempotency_token, None);
    assert_eq!(h[1].status, MessageStatus::Delivered);
    assert_eq!(h[1].received_at, at(2));
    assert_eq!(h[1].idempotency_token.as_deref(), Some("tok-d"));
}

async fn callback_before_send(store: &dyn StatusStore) {
    let mut e = event(1, "delivered", 5);
    e.to = Some("+15550000001".into());
    e.from = Some("+15556660000".into());
    e.account_sid = Some(account());
    let a = store.apply(&e).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Advanced, None, "delivered", true)
    );
    let r = get(store, 1).await;
    assert!(!r.sent_recorded);
    assert_eq!(
        r.created_at,
        at(5),
        "created when the callback was received"
    );
    assert_eq!(r.to.as_deref(), Some("+15550000001"));
    assert_eq!((r.body.as_deref(), r.num_segments), (None, None));

    let mut s = sent(1, "queued", 0);
    s.from = Some("+15557770000".into());
    s.messaging_service_sid = Some(service());
    s.body = Some("hi".into());
    s.num_segments = Some(1);
    let a = store.record_sent(&s).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Stale, Some("delivered"), "delivered", false)
    );
    assert!(!a.changed());

    let r = get(store, 1).await;
    assert_eq!(
        r.status,
        MessageStatus::Delivered,
        "record_sent never lowers"
    );
    assert!(r.sent_recorded);
    assert_eq!(r.created_at, at(0), "created_at becomes the send time");
    assert_eq!(r.body.as_deref(), Some("hi"));
    assert_eq!(r.num_segments, Some(1));
    assert_eq!(r.from.as_deref(), Some("+15557770000"));
    assert_eq!(r.messaging_service_sid, Some(service()));
    assert_eq!(r.account_sid, Some(account()), "kept from the callback");
    assert_eq!(
        history_statuses(store, 1).await,
        vec![MessageStatus::Delivered]
    );
}

async fn duplicate_event_is_kept_once(store: &dyn StatusStore) {
    let mut first = event(1, "sent", 1);
    first.idempotency_token = Some("tok-1".into());
    first.raw.push(("SmsSid".into(), "first".into()));
    let mut again = event(1, "sent", 2);
    again.idempotency_token = Some("tok-2".into());
    again.raw.push(("SmsSid".into(), "again".into()));

    assert!(store.apply(&first).await.unwrap().new_event);
    let a = store.apply(&again).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Duplicate, Some("sent"), "sent", false)
    );
    let a = store.apply(&first).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Duplicate, Some("sent"), "sent", false)
    );

    let h = store.history(&sid(1)).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].received_at, at(1));
    assert_eq!(h[0].idempotency_token.as_deref(), Some("tok-1"));
    assert_eq!(h[0].raw, first.raw, "the first callback's pairs are kept");
}

async fn stale_event_changes_nothing_but_is_kept(store: &dyn StatusStore) {
    store.apply(&event(1, "delivered", 1)).await.unwrap();
    let before = get(store, 1).await;
    let a = store.apply(&event(1, "sent", 2)).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Stale, Some("delivered"), "delivered", true)
    );
    let a = store.apply(&event(1, "queued", 3)).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Stale, Some("delivered"), "delivered", true)
    );
    let a = store.apply(&event(1, "sent", 4)).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Stale, Some("delivered"), "delivered", false)
    );

    let after = get(store, 1).await;
    assert_eq!(after.status, MessageStatus::Delivered);
    assert_eq!(
        after.updated_at, before.updated_at,
        "a stale event changes nothing"
    );
    assert_eq!(
        history_statuses(store, 1).await,
        vec![st("delivered"), st("sent"), st("queued")]
    );
}

async fn unknown_statuses(store: &dyn StatusStore) {
    // An unknown status creates a record but never replaces a known one.
    let a = store.apply(&event(1, "teleported", 1)).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Advanced, None, "teleported", true)
    );
    assert_eq!(
        get(store, 1).await.status,
        MessageStatus::Unknown("teleported".into())
    );
    let a = store.apply(&event(1, "queued", 2)).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Advanced, Some("teleported"), "queued", true)
    );
    let a = store.apply(&event(1, "zzz_future", 3)).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Stale, Some("queued"), "queued", true)
    );
    assert_eq!(get(store, 1).await.status, MessageStatus::Queued);
    assert_eq!(history_statuses(store, 1).await.len(), 3);

    // Between unknowns, the byte-wise larger name wins (not a locale's order).
    for (status, outcome, current) in [
        ("b", Outcome::Advanced, "b"),
        ("a", Outcome::Stale, "b"),
        ("B", Outcome::Stale, "b"),
        ("c", Outcome::Advanced, "c"),
        ("c", Outcome::Duplicate, "c"),
        ("é", Outcome::Advanced, "é"),
        ("z", Outcome::Stale, "é"),
    ] {
        let a = store.apply(&event(2, status, 1)).await.unwrap();
        assert_eq!((a.outcome, a.current), (outcome, st(current)), "{status}");
    }
    assert_eq!(
        get(store, 2).await.status,
        MessageStatus::Unknown("é".into())
    );
    assert!(!get(store, 2).await.status.is_final());
}

async fn final_statuses_and_error_codes(store: &dyn StatusStore) {
    store.apply(&event(1, "sent", 1)).await.unwrap();
    let a = store.apply(&failing(1, "failed", 2, 30008)).await.unwrap();
    assert_eq!(a.outcome, Outcome::Advanced);
    let r = get(store, 1).await;
    assert_eq!(r.error_code, Some(30008));
    assert_eq!(r.error_message.as_deref(), Some("error 30008"));

    store
        .apply(&failing(1, "undelivered", 3, 30003))
        .await
        .unwrap();
    assert_eq!(get(store, 1).await.error_code, Some(30003));
    // Delivery evidence beats failure reports; its (absent) code replaces theirs.
    let a = store.apply(&event(1, "delivered", 4)).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Advanced, Some("undelivered"), "delivered", true)
    );
    let r = get(store, 1).await;
    assert_eq!((r.error_code, r.error_message), (None, None));
    // A late failure report is stale and brings no error code.
    let a = store.apply(&failing(1, "failed", 5, 30001)).await.unwrap();
    assert_eq!(a.outcome, Outcome::Stale);
    assert_eq!(get(store, 1).await.error_code, None);
    store.apply(&event(1, "read", 6)).await.unwrap();
    assert_eq!(get(store, 1).await.status, MessageStatus::Read);
    let h = store.history(&sid(1)).await.unwrap();
    let codes: Vec<_> = h
        .iter()
        .map(|e| (e.status.as_str(), e.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("sent", None),
            ("failed", Some(30008)),
            ("undelivered", Some(30003)),
            ("delivered", None),
            ("read", None)
        ]
    );

    // The code of the event that set the status stays when a lower one arrives.
    store
        .apply(&failing(2, "undelivered", 1, 30005))
        .await
        .unwrap();
    let a = store.apply(&failing(2, "failed", 2, 30001)).await.unwrap();
    assert_eq!(a.outcome, Outcome::Stale);
    assert_eq!(get(store, 2).await.error_code, Some(30005));
    // record_sent after a failure keeps the failure and its code.
    let a = store.record_sent(&sent(2, "queued", 0)).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Stale, Some("undelivered"), "undelivered", false)
    );
    let r = get(store, 2).await;
    assert_eq!(r.error_code, Some(30005));
    assert_eq!(r.error_message.as_deref(), Some("error 30005"));

    // canceled is final after scheduled.
    store.apply(&event(3, "scheduled", 1)).await.unwrap();
    store.apply(&event(3, "canceled", 2)).await.unwrap();
    let a = store.apply(&event(3, "queued", 3)).await.unwrap();
    assert_eq!(a.outcome, Outcome::Stale);
    assert!(get(store, 3).await.status.is_final());
}

async fn record_sent_twice_and_after_callbacks(store: &dyn StatusStore) {
    store.record_sent(&sent(1, "queued", 0)).await.unwrap();
    let a = store.record_sent(&sent(1, "queued", 0)).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Duplicate, Some("queued"), "queued", false)
    );
    store.apply(&event(1, "sent", 1)).await.unwrap();
    let a = store.record_sent(&sent(1, "accepted", 0)).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Stale, Some("sent"), "sent", false)
    );
    assert_eq!(get(store, 1).await.status, MessageStatus::Sent);

    // record_sent that raises the status clears the error of the status it replaces.
    store.apply(&failing(2, "mystery", 1, 123)).await.unwrap();
    assert_eq!(get(store, 2).await.error_code, Some(123));
    let a = store.record_sent(&sent(2, "queued", 0)).await.unwrap();
    assert_eq!(
        shape(&a),
        applied(Outcome::Advanced, Some("mystery"), "queued", false)
    );
    let r = get(store, 2).await;
    assert_eq!((r.error_code, r.error_message), (None, None));
}

async fn events_fill_missing_fields_only(store: &dyn StatusStore) {
    store.apply(&event(1, "sent", 1)).await.unwrap();
    let r = get(store, 1).await;
    assert_eq!((r.to, r.from, r.account_sid), (None, None, None));
    let before = r.updated_at;

    let mut e = event(1, "sent", 2);
    e.from = Some("+15556660000".into());
    e.to = Some("+15550000001".into());
    e.account_sid = Some(account());
    e.messaging_service_sid = Some(service());
    let a = store.apply(&e).await.unwrap();
    assert_eq!(a.outcome, Outcome::Duplicate);
    let r = get(store, 1).await;
    assert_eq!(
        r.from.as_deref(),
        Some("+15556660000"),
        "a duplicate still fills"
    );
    assert_eq!(r.to.as_deref(), Some("+15550000001"));
    assert_eq!(r.account_sid, Some(account()));
    assert_eq!(r.messaging_service_sid, Some(service()));
    assert!(r.updated_at >= before);

    let mut e = event(1, "delivered", 3);
    e.from = Some("+15559999999".into());
    e.to = Some("+15559999999".into());
    store.apply(&e).await.unwrap();
    let r = get(store, 1).await;
    assert_eq!(
        r.from.as_deref(),
        Some("+15556660000"),
        "events never overwrite"
    );
    assert_eq!(r.to.as_deref(), Some("+15550000001"));
}

async fn raw_pairs_kept_in_order(store: &dyn StatusStore) {
    let mut e = event(1, "delivered", 1);
    e.raw = vec![
        ("ZLast".into(), "first in wire order".into()),
        ("AccountSid".into(), account().to_string()),
        ("Repeated".into(), "1".into()),
        (
            "Body".into(),
            "quote \" backslash \\ newline \n tab \t".into(),
        ),
        ("Repeated".into(), "2".into()),
        ("Empty".into(), String::new()),
        ("Unicode".into(), "日本語 ☃ 🚀".into()),
        ("Nul".into(), "a\0b".into()),
        ("Json".into(), "[[\"k\",\"v\"]]".into()),
        (String::new(), "empty key".into()),
    ];
    for i in 0..40 {
        e.raw.push((format!("K{}", 40 - i), i.to_string()));
    }
    store.apply(&e).await.unwrap();
    let h = store.history(&sid(1)).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].raw, e.raw);
}

async fn hostile_text_is_stored(store: &dyn StatusStore) {
    let mut e = event(1, "failed", 1);
    e.to = Some("+1\u{0}555".into());
    e.from = Some("'; DROP TABLE messages; --".into());
    e.error_message = Some("bad\0message".into());
    e.idempotency_token = Some("tok\0en".into());
    e.error_code = Some(u32::MAX);
    let a = store.apply(&e).await.unwrap();
    assert_eq!(a.current, MessageStatus::Failed);
    let r = get(store, 1).await;
    assert_eq!(r.status, MessageStatus::Failed);
    assert_eq!(r.error_code, Some(u32::MAX));
    assert_eq!(r.from.as_deref(), Some("'; DROP TABLE messages; --"));
    assert!(r.to.is_some());
    let mut s = sent(1, "queued", 0);
    s.body = Some("body with \0 nul".into());
    s.num_segments = Some(u32::MAX);
    store.record_sent(&s).await.unwrap();
    assert_eq!(get(store, 1).await.num_segments, Some(u32::MAX));
    assert_eq!(store.history(&sid(1)).await.unwrap()[0].raw, e.raw);
}

/// A row whose text JSON must escape (quotes, backslashes, control characters, U+0000, astral
/// and line-separator characters) is planned from exactly as stored when a later batch reads
/// it (SQLite's batch read returns its rows as one JSON array).
async fn hostile_text_survives_a_later_batch(store: &dyn StatusStore) {
    let hostile = "we\"ird \\ \n\t\u{7}\u{0} \u{1F680} \u{FFFF} \u{2028} [\"]\\u0041";
    store.apply(&event(1, hostile, 1)).await.unwrap();
    let stored = get(store, 1).await;
    let MessageStatus::Unknown(text) = &stored.status else {
        panic!("{:?}", stored.status)
    };
    assert!(text.starts_with("we\"ird \\ \n\t\u{7}"), "{text:?}");
    assert!(
        text.ends_with("\u{1F680} \u{FFFF} \u{2028} [\"]\\u0041"),
        "{text:?}"
    );
    let a = store.apply(&event(1, "queued", 2)).await.unwrap();
    assert_eq!(
        shape(&a),
        (Outcome::Advanced, Some(stored.status), st("queued"), true)
    );
    assert_eq!(a.created_at, Some(stored.created_at));
}

async fn missing_message_reads_empty(store: &dyn StatusStore) {
    assert_eq!(store.get(&sid(42)).await.unwrap(), None);
    assert!(store.history(&sid(42)).await.unwrap().is_empty());
    assert!(store.pending(at(1000), 10).await.unwrap().is_empty());
    let page = store.list(&ListQuery::new()).await.unwrap();
    assert!(page.records.is_empty());
    assert_eq!(page.next, None);
}

async fn pending_lists_old_non_final_messages(store: &dyn StatusStore) {
    store.record_sent(&sent(1, "queued", 0)).await.unwrap(); // pending
    store.record_sent(&sent(2, "queued", 10)).await.unwrap();
    store.apply(&event(2, "delivered", 11)).await.unwrap(); // final
    store.apply(&event(3, "mystery", 20)).await.unwrap(); // unknown: pending
    store.record_sent(&sent(4, "queued", 30)).await.unwrap();
    store.apply(&event(4, "sent", 31)).await.unwrap(); // sent: pending
    store.record_sent(&sent(5, "queued", 100)).await.unwrap(); // too recent
    store.apply(&failing(6, "failed", 5, 30008)).await.unwrap(); // final
    store.record_sent(&sent(7, "scheduled", 0)).await.unwrap();
    store.apply(&event(7, "canceled", 1)).await.unwrap(); // final

    let sids = |v: Vec<MessageRecord>| v.into_iter().map(|r| r.sid).collect::<Vec<_>>();
    assert_eq!(
        sids(store.pending(at(50), 10).await.unwrap()),
        vec![sid(1), sid(3), sid(4)]
    );
    assert_eq!(
        sids(store.pending(at(50), 2).await.unwrap()),
        vec![sid(1), sid(3)]
    );
    assert_eq!(
        sids(store.pending(at(50), 0).await.unwrap()),
        Vec::<MessageSid>::new()
    );
    assert_eq!(
        sids(store.pending(at(30), 10).await.unwrap()),
        vec![sid(1), sid(3)]
    );
    let just_after = at(30) + Duration::nanoseconds(1);
    assert_eq!(
        sids(store.pending(just_after, 10).await.unwrap()),
        vec![sid(1), sid(3), sid(4)]
    );
    let all = store.pending(at(1000), 10).await.unwrap();
    assert_eq!(sids(all.clone()), vec![sid(1), sid(3), sid(4), sid(5)]);
    assert!(all.iter().all(|r| !r.status.is_final()));
    // A window: created at or after `created_from`, with the same rounding at the edge.
    assert_eq!(
        sids(store.pending_since(at(20), at(1000), 10).await.unwrap()),
        vec![sid(3), sid(4), sid(5)]
    );
    assert_eq!(
        sids(
            store
                .pending_since(at(20) + Duration::nanoseconds(1), at(1000), 10)
                .await
                .unwrap()
        ),
        vec![sid(4), sid(5)]
    );
    assert_eq!(
        sids(store.pending_since(at(1), at(50), 10).await.unwrap()),
        vec![sid(3), sid(4)]
    );
}

/// Pending messages for the walk cases: five created in one second (as Twilio's
/// `date_created` would give a bulk send), one a microsecond later, others before and after,
/// some final, one too recent; and the order a walk must visit them in.
async fn pending_for_a_walk(store: &dyn StatusStore) -> Vec<MessageSid> {
    for n in [14, 11, 15, 12, 13] {
        store.record_sent(&sent(n, "sent", 20)).await.unwrap();
    }
    let mut later = sent(16, "queued", 20);
    later.created_at += Duration::microseconds(1);
    store.record_sent(&later).await.unwrap();
    store.record_sent(&sent(10, "queued", 5)).await.unwrap();
    store.record_sent(&sent(17, "sent", 30)).await.unwrap();
    store.record_sent(&sent(18, "sent", 20)).await.unwrap();
    store.apply(&event(18, "delivered", 40)).await.unwrap(); // final
    store.record_sent(&sent(19, "sent", 500)).await.unwrap(); // too recent
    [10, 11, 12, 13, 14, 15, 16, 17].map(sid).to_vec()
}

/// Walks the window `at(1)..at(100)` in pages of `size`, each after the last one's last message.
async fn walk(store: &dyn StatusStore, size: u32) -> Vec<MessageSid> {
    let mut seen = Vec::new();
    let mut after: Option<MessageRecord> = None;
    loop {
        let key = after.as_ref().map(|r| (r.created_at, &r.sid));
        let page = store.pending_page(at(1), at(100), key, size).await.unwrap();
        assert!(page.len() <= size as usize);
        seen.extend(page.iter().map(|r| r.sid.clone()));
        if page.len() < size as usize {
            return seen;
        }
        after = page.last().cloned();
    }
}

async fn pending_pages_walk_the_window_once(store: &dyn StatusStore) {
    let expected = pending_for_a_walk(store).await;
    let whole = store.pending_since(at(1), at(100), 100).await.unwrap();
    let whole: Vec<MessageSid> = whole.into_iter().map(|r| r.sid).collect();
    assert_eq!(whole, expected);
    for size in [1, 2, 3, 5, 8, 9] {
        assert_eq!(walk(store, size).await, expected, "pages of {size}");
    }
    // After a time between two microseconds: every message of the microsecond before is
    // behind it, whatever its SID.
    let between = at(20) + Duration::nanoseconds(500);
    let page = store
        .pending_page(at(1), at(100), Some((between, &sid(0))), 10)
        .await
        .unwrap();
    let page: Vec<MessageSid> = page.into_iter().map(|r| r.sid).collect();
    assert_eq!(page, vec![sid(16), sid(17)]);
    // The key's own message is not repeated; the window's start still applies.
    let page = store
        .pending_page(at(25), at(100), Some((at(20), &sid(13))), 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].sid, sid(17));
}

/// An incoming message recorded once: its first delivery creates the record (a change), a
/// repeat later changes nothing, not even its times.
async fn repeat_inbound_deliveries_change_nothing(store: &dyn StatusStore) {
    use twilio_delivery::inbound::InboundMessage;
    let form = format!(
        "MessageSid={}&From=%2B15550000002&To=%2B15550000001&Body=hi",
        sid(30)
    );
    let message = InboundMessage::from_form(form.as_bytes()).unwrap();
    let first = store.record_inbound(&message).await.unwrap();
    assert!(first.changed());
    let before = get(store, 30).await;
    assert_eq!(before.status, MessageStatus::Received);
    let history = history_statuses(store, 30).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let again = store.record_inbound(&message).await.unwrap();
    assert!(!again.changed());
    assert_eq!(again.current, MessageStatus::Received);
    let after = get(store, 30).await;
    assert_eq!(
        (after.created_at, after.updated_at),
        (before.created_at, before.updated_at)
    );
    assert_eq!(history_statuses(store, 30).await, history);
}

async fn list_filters_and_pages(store: &dyn StatusStore) {
    // (n, created, to, final status); messages 3 and 4 share a creation time.
    type Row = (u32, i64, &'static str, &'static str);
    let rows: [Row; 7] = [
        (1, 10, "+1", "delivered"),
        (2, 20, "+2", "failed"),
        (3, 30, "+1", "delivered"),
        (4, 30, "+2", "sent"),
        (5, 40, "+1", "undelivered"),
        (6, 50, "+2", "delivered"),
        (7, 60, "+1", "queued"),
    ];
    for (n, created, to, status) in rows {
        let mut s = sent(n, "queued", created);
        s.to = to.into();
        store.record_sent(&s).await.unwrap();
        store.apply(&event(n, status, created + 1)).await.unwrap();
    }
    // The expected order, newest first, ties by SID descending.
    let expect = |keep: &dyn Fn(&Row) -> bool| -> Vec<MessageSid> {
        let mut v: Vec<_> = rows.iter().filter(|r| keep(r)).collect();
        v.sort_by_key(|r| std::cmp::Reverse((r.1, sid(r.0))));
        v.into_iter().map(|r| sid(r.0)).collect()
    };
    async fn all_pages(store: &dyn StatusStore, mut q: ListQuery) -> (Vec<MessageSid>, usize) {
        let mut out = Vec::new();
        let mut pages = 0;
        loop {
            let page = store.list(&q).await.unwrap();
            pages += 1;
            assert!(page.records.len() <= q.page_size() as usize);
            out.extend(page.records.into_iter().map(|r| r.sid));
            match page.next {
                Some(c) => q = q.after(c),
                None => return (out, pages),
            }
            assert!(pages < 20, "paging does not end");
        }
    }

    let first = store.list(&ListQuery::new()).await.unwrap();
    assert_eq!(first.next, None);
    assert_eq!(
        first
            .records
            .iter()
            .map(|r| r.sid.clone())
            .collect::<Vec<_>>(),
        expect(&|_| true)
    );
    assert_eq!(first.records[0].status, MessageStatus::Queued);
    assert_eq!(first.records[0].created_at, at(60));

    let (got, pages) = all_pages(store, ListQuery::new().limit(3)).await;
    assert_eq!(got, expect(&|_| true));
    assert_eq!(pages, 3);
    let (got, pages) = all_pages(store, ListQuery::new().limit(1)).await;
    assert_eq!((got, pages), (expect(&|_| true), 7));
    let (got, _) = all_pages(store, ListQuery::new().to("+1").limit(2)).await;
    assert_eq!(got, expect(&|r| r.2 == "+1"));
    let q = ListQuery::new()
        .status(MessageStatus::Delivered)
        .status(MessageStatus::Failed)
        .status(MessageStatus::Delivered);
    let (got, _) = all_pages(store, q.limit(2)).await;
    assert_eq!(got, expect(&|r| r.3 == "delivered" || r.3 == "failed"));
    let q = ListQuery::new().created_between(at(20), at(50));
    let (got, _) = all_pages(store, q.limit(2)).await;
    assert_eq!(got, expect(&|r| (20..50).contains(&r.1)));
    let q = ListQuery::new()
        .to("+1")
        .status(MessageStatus::Delivered)
        .created_between(at(0), at(100));
    let (got, _) = all_pages(store, q).await;
    assert_eq!(got, expect(&|r| r.2 == "+1" && r.3 == "delivered"));
    let q = ListQuery::new().status(MessageStatus::Unknown("nothing".into()));
    assert!(store.list(&q).await.unwrap().records.is_empty());
}

async fn reconcile_lock_is_granted(store: &dyn StatusStore) {
    let lock = store.try_reconcile_lock().await.unwrap();
    assert!(lock.is_some(), "nobody else holds it");
}

/// A store of its own that leaves `pending_page` to the trait's default.
mod default_pending_page {
    use twilio_delivery::MessageSid;
    use twilio_delivery::async_trait;
    use twilio_delivery::model::{Applied, HistoryEntry, MessageRecord, SentMessage, StatusEvent};
    use twilio_delivery::store::{ListQuery, MemoryStore, Page, StatusStore, StoreError};

    #[derive(Debug, Default)]
    struct Plain(MemoryStore);

    #[async_trait]
    impl StatusStore for Plain {
        async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError> {
            self.0.record_sent(sent).await
        }
        async fn apply(&self, event: &StatusEvent) -> Result<Applied, StoreError> {
            self.0.apply(event).await
        }
        async fn get(&self, sid: &MessageSid) -> Result<Option<MessageRecord>, StoreError> {
            self.0.get(sid).await
        }
        async fn history(&self, sid: &MessageSid) -> Result<Vec<HistoryEntry>, StoreError> {
            self.0.history(sid).await
        }
        async fn pending_since(
            &self,
            created_from: time::OffsetDateTime,
            older_than: time::OffsetDateTime,
            limit: u32,
        ) -> Result<Vec<MessageRecord>, StoreError> {
            self.0.pending_since(created_from, older_than, limit).await
        }
        async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
            self.0.list(query).await
        }
    }

    /// Five messages share a second, so pages of 1 and 2 make the default ask again.
    #[tokio::test]
    async fn walks_the_window_once() {
        super::pending_pages_walk_the_window_once(&Plain::default()).await;
    }
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&twilio_delivery::store::MemoryStore::new()).await;
                }
            )*
        }

        #[cfg(feature = "sqlite")]
        mod sqlite_memory {
            $(
                #[tokio::test]
                async fn $case() {
                    let store = super::sqlite::in_memory().await;
                    super::$case(&store).await;
                }
            )*
        }

        #[cfg(feature = "sqlite")]
        mod sqlite_file {
            $(
                #[tokio::test]
                async fn $case() {
                    let (store, _dir) = super::sqlite::in_file().await;
                    super::$case(&store).await;
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(db) = super::pg::TestDb::open().await else { return };
                    let store = db.store().await;
                    super::$case(&store).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

suite!(
    record_sent_then_callbacks,
    callback_before_send,
    duplicate_event_is_kept_once,
    stale_event_changes_nothing_but_is_kept,
    unknown_statuses,
    final_statuses_and_error_codes,
    record_sent_twice_and_after_callbacks,
    events_fill_missing_fields_only,
    raw_pairs_kept_in_order,
    hostile_text_is_stored,
    hostile_text_survives_a_later_batch,
    missing_message_reads_empty,
    pending_lists_old_non_final_messages,
    pending_pages_walk_the_window_once,
    repeat_inbound_deliveries_change_nothing,
    list_filters_and_pages,
    reconcile_lock_is_granted,
);

// ---------------------------------------------------------------------------------------------
// SQL-only cases, shared by both SQL backends.
// ---------------------------------------------------------------------------------------------

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use twilio_delivery::store::StoreError;

/// Two stores with different prefixes in one database see nothing of each other.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn prefixes_isolate(a: &dyn StatusStore, b: &dyn StatusStore) {
    a.apply(&event(1, "delivered", 1)).await.unwrap();
    assert_eq!(b.get(&sid(1)).await.unwrap(), None);
    assert!(b.history(&sid(1)).await.unwrap().is_empty());
    assert!(b.list(&ListQuery::new()).await.unwrap().records.is_empty());
    let x = b.apply(&event(1, "sent", 2)).await.unwrap();
    assert_eq!(x.previous, None, "b has its own record");
    assert_eq!(get(a, 1).await.status, MessageStatus::Delivered);
    assert_eq!(get(b, 1).await.status, MessageStatus::Sent);
    assert_eq!(history_statuses(a, 1).await, vec![MessageStatus::Delivered]);
}

/// Data written before a second `migrate` is still there and the store still works.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn survives_remigration_before(store: &dyn StatusStore) {
    store.apply(&event(1, "sent", 1)).await.unwrap();
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn survives_remigration_after(store: &dyn StatusStore) {
    assert_eq!(get(store, 1).await.status, MessageStatus::Sent);
    store.apply(&event(1, "delivered", 2)).await.unwrap();
    assert_eq!(history_statuses(store, 1).await.len(), 2);
}

/// With a trigger that makes inserting a `boom` event fail, nothing of the write survives.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn failed_write_leaves_nothing(store: &dyn StatusStore) {
    let err = store.apply(&event(1, "boom", 1)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_eq!(
        store.get(&sid(1)).await.unwrap(),
        None,
        "the record was rolled back"
    );

    store.apply(&event(2, "apple", 1)).await.unwrap();
    let before = get(store, 2).await;
    // `boom` ranks above `apple`, so the upsert raised the status before the insert failed.
    let err = store.apply(&event(2, "boom", 2)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_eq!(get(store, 2).await, before);
    assert_eq!(history_statuses(store, 2).await, vec![st("apple")]);
    // The store keeps working after the failure.
    store.apply(&event(2, "queued", 3)).await.unwrap();
    assert_eq!(get(store, 2).await.status, MessageStatus::Queued);
}

/// A row another program wrote badly reads as `Corrupt`, not as a panic.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn corrupt_rows_are_reported(store: &dyn StatusStore) {
    match store.get(&sid(1)).await {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("account_sid"), "{msg}"),
        other => panic!("expected corrupt, got {other:?}"),
    }
    assert!(matches!(
        store.list(&ListQuery::new()).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.history(&sid(2)).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[test]
fn invalid_prefixes_are_rejected() {
    use twilio_delivery::store::TablePrefix;
    let long = "p".repeat(33);
    for bad in [
        "",
        "9lives",
        "a-b",
        "x; DROP TABLE y; --",
        "a\"b",
        "ü",
        &long,
    ] {
        assert!(
            matches!(TablePrefix::new(bad), Err(StoreError::Config(_))),
            "{bad:?} accepted"
        );
    }
    assert_eq!(TablePrefix::new("sms_2").unwrap().as_str(), "sms_2");
    assert_eq!(TablePrefix::default().as_str(), "twilio_");
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use tempfile::TempDir;
    use twilio_delivery::store::sqlx::{self, AssertSqlSafe};
    use twilio_delivery::store::{SqliteStore, StatusStore, StoreError, TablePrefix};

    pub(super) async fn in_memory() -> SqliteStore {
        let store = SqliteStore::connect(":memory:").await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    pub(super) async fn in_file() -> (SqliteStore, TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested-name.db");
        let store = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
        store.migrate().await.unwrap();
        (store, dir)
    }

    async fn exec(store: &SqliteStore, sql: String) {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn prefixes_isolate_in_one_file() {
        let (a, _dir) = in_file().await;
        let b = a.clone().with_prefix(TablePrefix::new("other_").unwrap());
        b.migrate().await.unwrap();
        assert_eq!(b.prefix().as_str(), "other_");
        super::prefixes_isolate(&a, &b).await;
    }

    /// A change under one prefix wakes that prefix's readers, not another's (whose readers
    /// would otherwise read again at once and find nothing, over and over); a clone with the
    /// same prefix shares the wake-ups.
    #[tokio::test]
    async fn prefixes_wake_only_their_own_readers() {
        let (a, _dir) = in_file().await;
        let other = TablePrefix::new("other_").unwrap();
        let b = a.clone().with_prefix(other.clone());
        b.migrate().await.unwrap();
        let b_again = a.clone().with_prefix(other);
        a.apply(&super::event(1, "sent", 1)).await.unwrap();
        let wait = std::time::Duration::from_secs(60);
        tokio::time::pause();
        // B's feed is empty: its reader waits its whole timeout (virtual time here).
        let started = tokio::time::Instant::now();
        b.feed().unwrap().wait_for_change(0, wait).await;
        assert!(
            started.elapsed() >= wait,
            "woken by another prefix's change"
        );
        // A's reader, after A's change, returns at once.
        let started = tokio::time::Instant::now();
        a.feed().unwrap().wait_for_change(0, wait).await;
        assert!(started.elapsed() < wait);
        tokio::time::resume();
        // A change through one store of B's prefix wakes a reader on another.
        let reader = tokio::spawn(async move {
            b_again.feed().unwrap().wait_for_change(0, wait).await;
        });
        tokio::task::yield_now().await;
        b.apply(&super::event(2, "sent", 1)).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(30), reader)
            .await
            .expect("the reader on B's clone was woken")
            .unwrap();
    }

    #[tokio::test]
    async fn migrate_twice_is_fine() {
        let (store, dir) = in_file().await;
        super::survives_remigration_before(&store).await;
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        // A second process opening the same file migrates again.
        let again = SqliteStore::connect(dir.path().join("nested-name.db").to_str().unwrap())
            .await
            .unwrap();
        again.migrate().await.unwrap();
        super::survives_remigration_after(&again).await;
        let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM twilio_migrations")
            .fetch_all(again.pool())
            .await
            .unwrap();
        assert_eq!(versions, vec![1, 2, 3, 4, 5, 6]);
    }

    /// Schema version 5 rebuilds `messages` (a stable number per message) and `events` (unique
    /// on that number and the status): a database written by version 4 keeps its records,
    /// histories and pending list, and takes callbacks afterwards.
    #[tokio::test]
    async fn version_5_keeps_the_histories_of_version_4() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::connect(dir.path().join("v4.db").to_str().unwrap())
            .await
            .unwrap();
        // A database as version 4 left it, from the DDL files of versions 1 to 4.
        let mut v4 = String::from(
            "CREATE TABLE twilio_migrations (version INTEGER NOT NULL PRIMARY KEY, \
             name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT; \
             INSERT INTO twilio_migrations VALUES (1, 'init', 0), (2, 'feed', 0), \
             (3, 'opt_outs', 0), (4, 'write_path', 0);",
        );
        for ddl in [
            include_str!("../sql/sqlite/0001_init.sql"),
            include_str!("../sql/sqlite/0002_feed.sql"),
            include_str!("../sql/sqlite/0003_opt_outs.sql"),
            include_str!("../sql/sqlite/0004_write_path.sql"),
        ] {
            v4.push_str(&ddl.replace("{prefix}", "twilio_"));
            v4.push(';');
        }
        exec(&store, v4).await;
        // Written as version 4 wrote: history rows keyed by SID; SID 2 recorded first.
        let (s1, s2) = (super::sid(1), super::sid(2));
        exec(
            &store,
            format!(
                "INSERT INTO twilio_messages (sid, status, status_rank, created_at, updated_at) \
                 VALUES ('{s2}', 'sent', 3, 2000000, 2000000), \
                 ('{s1}', 'delivered', 7, 1000000, 3000000); \
                 INSERT INTO twilio_events (message_sid, status, received_at, source, raw) \
                 VALUES ('{s2}', 'sent', 2000000, 'callback', '[]'), \
                 ('{s1}', 'sent', 1000000, 'callback', '[]'), \
                 ('{s1}', 'delivered', 3000000, 'callback', '[]')"
            ),
        )
        .await;
        store.migrate().await.unwrap();
        let (sent, delivered) = (super::st("sent"), super::st("delivered"));
        let history = |n| super::history_statuses(&store, n);
        assert_eq!(history(1).await, [sent.clone(), delivered.clone()]);
        assert_eq!(history(2).await, std::slice::from_ref(&sent));
        let pending = store.pending(super::at(10), 10).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].sid, s2);
        // Callbacks after the upgrade: applied once, in the history, out of the pending list.
        let first = store.apply(&super::event(2, "delivered", 4)).await.unwrap();
        assert_eq!(first.previous.as_ref().map(|s| s.as_str()), Some("sent"));
        let again = store.apply(&super::event(2, "delivered", 5)).await.unwrap();
        assert!(!again.new_event, "{again:?}");
        assert_eq!(history(2).await, [sent, delivered]);
        assert!(store.pending(super::at(10), 10).await.unwrap().is_empty());
        // Each history row belongs to its message: deleting one deletes its history only.
        exec(
            &store,
            format!("DELETE FROM twilio_messages WHERE sid = '{s1}'"),
        )
        .await;
        assert!(history(1).await.is_empty());
        assert_eq!(history(2).await.len(), 2);
        let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM twilio_migrations")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(versions, vec![1, 2, 3, 4, 5, 6]);
    }

    #[tokio::test]
    async fn failed_write_leaves_nothing() {
        let store = in_memory().await;
        exec(
            &store,
            "CREATE TRIGGER twilio_boom BEFORE INSERT ON twilio_events WHEN NEW.status = 'boom' \
             BEGIN SELECT RAISE(ABORT, 'boom'); END"
                .into(),
        )
        .await;
        super::failed_write_leaves_nothing(&store).await;
    }

    #[tokio::test]
    async fn corrupt_rows_are_reported() {
        let store = in_memory().await;
        exec(
            &store,
            format!(
                "INSERT INTO twilio_messages (sid, account_sid, status, status_rank, created_at, \
                 updated_at) VALUES ('{}', 'ACnot-a-sid', 'sent', 6, 0, 0); \
                 INSERT INTO twilio_messages (sid, status, status_rank, created_at, updated_at) \
                 VALUES ('{}', 'sent', 6, 0, 0); \
                 INSERT INTO twilio_events (message_id, message_sid, status, received_at, \
                 source, raw) SELECT id, sid, 'sent', 0, 'callback', '{{not json' \
                 FROM twilio_messages WHERE sid = '{}';",
                super::sid(1),
                super::sid(2),
                super::sid(2)
            ),
        )
        .await;
        super::corrupt_rows_are_reported(&store).await;
    }

    #[tokio::test]
    async fn closed_pool_is_unavailable() {
        let store = in_memory().await;
        store.pool().close().await;
        let err = store.apply(&super::event(1, "sent", 1)).await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(
            std::error::Error::source(&err).is_some(),
            "the cause is kept"
        );
        assert!(matches!(
            store.get(&super::sid(1)).await,
            Err(StoreError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn unmigrated_store_is_unavailable_not_a_panic() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let err = store.apply(&super::event(1, "sent", 1)).await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
    }

    #[tokio::test]
    async fn connect_accepts_urls_and_creates_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("by-url.db");
        let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        assert!(path.exists());
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert!(matches!(
            SqliteStore::connect("sqlite://?mode=bogus").await,
            Err(StoreError::Config(_))
        ));
    }
}

#[cfg(feature = "postgres")]
mod pg {
    use twilio_delivery::store::sqlx::postgres::{PgPool, PgPoolOptions};
    use twilio_delivery::store::sqlx::{self, AssertSqlSafe};
    use twilio_delivery::store::{PostgresStore, StatusStore, StoreError, TablePrefix};

    /// A connection to `TEST_DATABASE_URL` and the random prefixes a test created tables under.
    pub(super) struct TestDb {
        pool: PgPool,
        prefixes: std::sync::Mutex<Vec<TablePrefix>>,
    }

    impl TestDb {
        pub(super) async fn open() -> Option<Self> {
            let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
                crate::skip::service_missing("TEST_DATABASE_URL not set");
                return None;
            };
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .connect(&url)
                .await
                .expect("TEST_DATABASE_URL is set but the database cannot be reached");
            Some(Self {
                pool,
                prefixes: Default::default(),
            })
        }

        /// A migrated store under a fresh random prefix.
        pub(super) async fn store(&self) -> PostgresStore {
            let prefix = TablePrefix::new(format!("t{:016x}_", fastrand::u64(..))).unwrap();
            self.prefixes.lock().unwrap().push(prefix.clone());
            let store = PostgresStore::new(self.pool.clone()).with_prefix(prefix);
            store.migrate().await.unwrap();
            store
        }

        pub(super) async fn exec(&self, sql: String) {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&self.pool)
                .await
                .unwrap();
        }

        /// Drops the test's tables (left behind only when the test failed before this).
        pub(super) async fn cleanup(self) {
            let prefixes = std::mem::take(&mut *self.prefixes.lock().unwrap());
            for p in prefixes {
                self.exec(crate::pg_drop::drop_prefix_sql(p.as_str())).await;
            }
        }
    }

    /// A deleted message leaves the pending list with its history (schema version 8), and a
    /// pending row whose message is gone (left by an older version) takes no place of a page.
    #[tokio::test]
    async fn deleted_messages_leave_the_pending_pages() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let store = db.store().await;
        for n in 1..=5 {
            store
                .record_sent(&super::sent(n, "sent", 10))
                .await
                .unwrap();
        }
        let p = store.prefix().as_str();
        db.exec(format!(
            "DELETE FROM {p}messages WHERE sid = '{}'",
            super::sid(1)
        ))
        .await;
        assert!(
            !pending_rows(&store)
                .await
                .contains(&super::sid(1).to_string()),
            "the trigger took it off the list"
        );
        // As an older version left it: a pending row without its message.
        db.exec(format!(
            "INSERT INTO {p}pending (sid, created_at) VALUES ('{}', '{}')",
            super::sid(0),
            "2024-05-01 12:00:05+00" // at(5): before every message of the page
        ))
        .await;
        let first = store
            .pending_page(super::at(-100_000), super::at(100), None, 2)
            .await
            .unwrap();
        let first: Vec<_> = first.into_iter().map(|r| r.sid).collect();
        assert_eq!(first, vec![super::sid(2), super::sid(3)]);
        assert_eq!(
            super::walk(&store, 2).await,
            [2, 3, 4, 5].map(super::sid).to_vec()
        );
        db.cleanup().await;
    }

    /// The SIDs in the pending table of `store`, in SID order.
    async fn pending_rows(store: &PostgresStore) -> Vec<String> {
        let p = store.prefix().as_str();
        sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT sid FROM {p}pending ORDER BY sid"
        )))
        .fetch_all(store.pool())
        .await
        .unwrap()
    }

    /// A message that becomes final keeps its pending row until a pending read passes it, which
    /// deletes it: through the page's last row, or the whole window when the page is not full.
    /// Such a row takes no place of a page, and the read skips a row another transaction holds
    /// instead of waiting for it.
    /// A value PostgreSQL cannot hold (here a `To` of 4 000 bytes that do not compress, too
    /// long for `messages_to_idx`) rejects the write: `StoreError::Rejected`, which names the
    /// SQLSTATE and not the value, nothing of the batch written, and the same batch without
    /// it written. Both statements (distinct messages; one message twice) say so.
    #[tokio::test]
    async fn a_value_the_database_cannot_hold_rejects_the_write_and_writes_nothing() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let store = db.store().await;
        let long: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(4000)
            .collect();
        let mut poison = super::event(2, "sent", 2);
        poison.to = Some(long.clone());
        let distinct = [super::event(1, "sent", 1), poison.clone()];
        let repeated = [
            super::event(1, "sent", 1),
            super::event(2, "queued", 1),
            poison,
        ];
        for batch in [&distinct[..], &repeated[..]] {
            match store.apply_batch(batch).await {
                Err(StoreError::Rejected(m)) => {
                    assert!(m.contains("54000") && !m.contains(&long[..40]), "{m}")
                }
                other => panic!("{other:?}"),
            }
            for n in [1, 2] {
                assert_eq!(store.get(&super::sid(n)).await.unwrap(), None, "{n}");
            }
        }
        store.apply_batch(&distinct[..1]).await.unwrap();
        assert!(store.get(&super::sid(1)).await.unwrap().is_some());
        db.cleanup().await;
    }

    #[tokio::test]
    async fn final_messages_leave_the_pending_list_when_a_read_passes_them() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let store = db.store().await;
        for n in 1..=7 {
            store
                .record_sent(&super::sent(n, "sent", i64::from(n)))
                .await
                .unwrap();
        }
        // Distinct messages (one statement), then one message twice (the planned batch).
        store
            .apply_batch(&[
                super::event(5, "delivered", 50),
                super::event(2, "undelivered", 50),
                super::event(3, "read", 50),
            ])
            .await
            .unwrap();
        store
            .apply_batch(&[
                super::event(6, "delivered", 60),
                super::event(6, "read", 61),
            ])
            .await
            .unwrap();
        let left = |ns: &[u32]| {
            ns.iter()
                .map(|&n| super::sid(n).to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pending_rows(&store).await,
            left(&[1, 2, 3, 4, 5, 6, 7]),
            "the writes deleted none"
        );
        let sids = |v: Vec<super::MessageRecord>| v.into_iter().map(|r| r.sid).collect::<Vec<_>>();

        // A page of two: 1 and 4; the final 2 and 3 passed over and deleted, 5 and 6 beyond it.
        let first = store
            .pending_page(super::at(0), super::at(100), None, 2)
            .await
            .unwrap();
        let last = first.last().cloned().unwrap();
        assert_eq!(sids(first), vec![super::sid(1), super::sid(4)]);
        assert_eq!(pending_rows(&store).await, left(&[1, 4, 5, 6, 7]));

        // Another transaction holds 5's row: the next page does not wait for it and leaves it.
        let mut holder = store.pool().begin().await.unwrap();
        let p = store.prefix().as_str();
        sqlx::query(AssertSqlSafe(format!(
            "SELECT sid FROM {p}pending WHERE sid = $1 FOR UPDATE"
        )))
        .bind(super::sid(5).as_str())
        .fetch_one(&mut *holder)
        .await
        .unwrap();
        let key = Some((last.created_at, &last.sid));
        let read = store.pending_page(super::at(0), super::at(100), key, 2);
        let second = tokio::time::timeout(std::time::Duration::from_secs(60), read)
            .await
            .expect("the read waited for a row another transaction holds")
            .unwrap();
        assert_eq!(sids(second), vec![super::sid(7)]);
        assert_eq!(pending_rows(&store).await, left(&[1, 4, 5, 7]));
        holder.commit().await.unwrap();

        // Once free, the row goes with the next read that passes it; the pages stay the same.
        assert_eq!(
            super::walk(&store, 1).await,
            vec![super::sid(1), super::sid(4), super::sid(7)]
        );
        assert_eq!(pending_rows(&store).await, left(&[1, 4, 7]));
        // A message that turns final after the read passed it waits for the next pass.
        store.apply(&super::event(7, "failed", 70)).await.unwrap();
        assert_eq!(
            super::walk(&store, 5).await,
            vec![super::sid(1), super::sid(4)]
        );
        assert_eq!(pending_rows(&store).await, left(&[1, 4]));
        db.cleanup().await;
    }

    /// Timeouts of 0 (off) and beyond what PostgreSQL takes (about 24.8 days) still let every
    /// write through: 0 is off on both sides, a long one is the server's longest.
    #[tokio::test]
    async fn writes_pass_with_timeouts_off_or_very_long() {
        use std::time::Duration;
        use twilio_delivery::store::PostgresOptions;
        let Some(db) = TestDb::open().await else {
            return;
        };
        let store = db.store().await;
        let month = Duration::from_secs(30 * 24 * 3600);
        for (statement, lock) in [(Duration::ZERO, Duration::ZERO), (month, month)] {
            let store = store.clone().with_options(
                PostgresOptions::new()
                    .statement_timeout(statement)
                    .lock_timeout(lock),
            );
            store
                .record_sent(&super::sent(1, "queued", 1))
                .await
                .unwrap_or_else(|e| panic!("{statement:?}: {e}"));
            store
                .apply(&super::event(1, "sent", 2))
                .await
                .unwrap_or_else(|e| panic!("{statement:?}: {e}"));
            store
                .apply_batch(&[super::event(2, "sent", 2), super::event(3, "sent", 2)])
                .await
                .unwrap_or_else(|e| panic!("{statement:?}: {e}"));
        }
        db.cleanup().await;
    }

    /// Schema version 4 lists the messages not final in a table of their own instead of a
    /// partial index: a database written under version 3 keeps them listed, and only them.
    #[tokio::test]
    async fn version_4_keeps_the_pending_messages_of_version_3() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let store = db.store().await;
        // Back to version 3: no pending table, the partial and the status index.
        let p = store.prefix().as_str();
        db.exec(format!(
            "DROP TABLE {p}pending; ALTER TABLE {p}messages RESET (fillfactor); \
             CREATE INDEX {p}messages_pending_idx ON {p}messages (created_at, sid) \
             WHERE status_rank < 7; \
             CREATE INDEX {p}messages_status_idx ON {p}messages (status, created_at DESC, sid DESC); \
             DELETE FROM {p}migrations WHERE version = 4"
        ))
        .await;
        // Written as version 3 wrote: no pending rows.
        db.exec(format!(
            "INSERT INTO {p}messages (sid, status, status_rank, created_at, updated_at) VALUES \
             ('{}', 'queued', 2, now() - interval '1 hour', now()), \
             ('{}', 'delivered', 7, now() - interval '1 hour', now()), \
             ('{}', 'sent', 3, now() - interval '2 hours', now())",
            super::sid(1),
            super::sid(2),
            super::sid(3)
        ))
        .await;
        store.migrate().await.unwrap();
        let pending = store
            .pending(time::OffsetDateTime::now_utc(), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.sid)
            .collect::<Vec<_>>();
        assert_eq!(pending, vec![super::sid(3), super::sid(1)]);
        // And the write path keeps the table in step from there.
        store.apply(&super::event(3, "delivered", 1)).await.unwrap();
        let pending = store
            .pending(time::OffsetDateTime::now_utc(), 10)
            .await
            .unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].sid, super::sid(1));
        db.cleanup().await;
    }

    /// Schema version 5 replaces the foreign key from the history to its message by a trigger:
    /// no foreign key is left, and deleting messages still deletes their history (and only
    /// theirs), one message or several in one statement.
    #[tokio::test]
    async fn version_5_deletes_the_history_with_its_message() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let store = db.store().await;
        let p = store.prefix().as_str();
        let events = [
            (1, "sent", 1),
            (1, "delivered", 2),
            (2, "sent", 3),
            (3, "sent", 4),
            (4, "sent", 5),
        ];
        for (n, status, secs) in events {
            store.apply(&super::event(n, status, secs)).await.unwrap();
        }
        // No foreign key is left on the history.
        let keys: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = '{p}events'::regclass \
             AND contype = 'f'"
        )))
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(keys, 0);
        let store = &store;
        let count = |n| async move { super::history_statuses(store, n).await.len() };
        assert_eq!(count(1).await, 2);
        db.exec(format!(
            "DELETE FROM {p}messages WHERE sid = '{}'",
            super::sid(1)
        ))
        .await;
        assert_eq!(count(1).await, 0);
        assert_eq!(count(2).await, 1, "another message's history stays");
        db.exec(format!(
            "DELETE FROM {p}messages WHERE sid IN ('{}', '{}')",
            super::sid(2),
            super::sid(3)
        ))
        .await;
        assert_eq!((count(2).await, count(3).await, count(4).await), (0, 0, 1));
        let left: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {p}events")))
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(left, 1);
        db.cleanup().await;
    }

    #[tokio::test]
    async fn prefixes_isolate_in_one_database() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let a = db.store().await;
        let b = db.store().await;
        super::prefixes_isolate(&a, &b).await;
        db.cleanup().await;
    }

    #[tokio::test]
    async fn migrate_twice_is_fine() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let store = db.store().await;
        super::survives_remigration_before(&store).await;
        store.migrate().await.unwrap();
        // Several instances migrating at once wait for each other.
        let others: Vec<_> = (0..4)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move { s.migrate().await })
            })
            .collect();
        for o in others {
            o.await.unwrap().unwrap();
        }
        super::survives_remigration_after(&store).await;
        let versions: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT version FROM {}migrations",
            store.prefix().as_str()
        )))
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
        db.cleanup().await;
    }

    /// A database at schema 5 (positions from the `feed_head` counter, here 3 changes) goes on
    /// from position 4 after the upgrade to the sequence of schema 6.
    #[tokio::test]
    async fn the_feed_goes_on_from_its_counter_after_the_upgrade() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let store = db.store().await;
        let p = store.prefix().as_str();
        for n in 1..=3 {
            store.apply(&super::event(n, "sent", 1)).await.unwrap();
        }
        // Back to schema 5 as it was: the counter at the last position, no sequence.
        db.exec(format!(
            "DROP SEQUENCE {p}feed_position; \
             CREATE TABLE {p}feed_head (id BOOLEAN NOT NULL PRIMARY KEY DEFAULT TRUE CHECK (id), \
               position BIGINT NOT NULL); \
             INSERT INTO {p}feed_head (id, position) VALUES (TRUE, 3); \
             DELETE FROM {p}migrations WHERE version = 6;"
        ))
        .await;
        store.migrate().await.unwrap();
        store.apply(&super::event(4, "sent", 1)).await.unwrap();
        let feed = store.feed().unwrap();
        let positions: Vec<u64> = feed
            .changes_after(0, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(positions, vec![1, 2, 3, 4]);
        db.cleanup().await;
    }

    #[tokio::test]
    async fn fresh_prefixes_migrate_concurrently() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let prefix = TablePrefix::new(format!("t{:016x}_", fastrand::u64(..))).unwrap();
        db.prefixes.lock().unwrap().push(prefix.clone());
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let s = PostgresStore::new(db.pool.clone()).with_prefix(prefix.clone());
                tokio::spawn(async move { s.migrate().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let store = PostgresStore::new(db.pool.clone()).with_prefix(prefix);
        store.apply(&super::event(1, "sent", 1)).await.unwrap();
        db.cleanup().await;
    }

    #[tokio::test]
    async fn failed_write_leaves_nothing() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let store = db.store().await;
        let p = store.prefix().as_str();
        db.exec(format!(
            "CREATE FUNCTION {p}boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.status = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER {p}boom BEFORE INSERT ON {p}events \
             FOR EACH ROW EXECUTE FUNCTION {p}boom();"
        ))
        .await;
        super::failed_write_leaves_nothing(&store).await;
        db.cleanup().await;
    }

    #[tokio::test]
    async fn corrupt_rows_are_reported() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let store = db.store().await;
        let p = store.prefix().as_str();
        db.exec(format!(
            "INSERT INTO {p}messages (sid, account_sid, status, status_rank, created_at, \
             updated_at) VALUES ('{s1}', 'ACnot-a-sid', 'sent', 6, now(), now()); \
             INSERT INTO {p}messages (sid, status, status_rank, created_at, updated_at) \
             VALUES ('{s2}', 'sent', 6, now(), now()); \
             INSERT INTO {p}events (message_sid, status, received_at, source, raw) \
             VALUES ('{s2}', 'sent', now(), 'callback', '{{not json');",
            s1 = super::sid(1),
            s2 = super::sid(2),
        ))
        .await;
        super::corrupt_rows_are_reported(&store).await;
        db.cleanup().await;
    }

    /// Times outside the years -9999 to 9999 (`infinity`, a row edited by hand) read as
    /// `Corrupt`: sqlx's own decoding of such a time panics.
    #[tokio::test]
    async fn times_out_of_range_are_reported() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let store = db.store().await;
        let p = store.prefix().as_str();
        db.exec(format!(
            "INSERT INTO {p}messages (sid, status, status_rank, created_at, updated_at) \
             VALUES ('{s1}', 'sent', 6, 'infinity', now()); \
             INSERT INTO {p}messages (sid, status, status_rank, created_at, updated_at) \
             VALUES ('{s2}', 'sent', 6, now(), '10000-01-01 00:00:00+00'); \
             INSERT INTO {p}events (message_sid, status, received_at, source, raw) \
             VALUES ('{s2}', 'sent', '-infinity', 'callback', '[]');",
            s1 = super::sid(1),
            s2 = super::sid(2),
        ))
        .await;
        for n in [1, 2] {
            match store.get(&super::sid(n)).await {
                Err(StoreError::Corrupt(msg)) => {
                    assert!(msg.contains("_at"), "names the column: {msg}")
                }
                other => panic!("expected corrupt, got {other:?}"),
            }
        }
        assert!(matches!(
            store.history(&super::sid(2)).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.list(&twilio_delivery::store::ListQuery::new()).await,
            Err(StoreError::Corrupt(_))
        ));

        // The feed's and the opt-out list's times.
        use twilio_delivery::optout::{OptOutList, OptOutSource};
        store.apply(&super::event(3, "sent", 1)).await.unwrap();
        store
            .opt_out("+15005550006", OptOutSource::Keyword)
            .await
            .unwrap();
        db.exec(format!(
            "UPDATE {p}feed SET at = 'infinity'; UPDATE {p}opt_outs SET since = 'infinity';"
        ))
        .await;
        let feed = store.feed().unwrap();
        assert!(matches!(
            feed.changes_after(0, 10).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(store.opt_outs().await.is_err());
        db.cleanup().await;
    }

    #[tokio::test]
    async fn closed_pool_is_unavailable() {
        let Some(db) = TestDb::open().await else {
            return;
        };
        let store = db.store().await;
        let closed = PostgresStore::new(
            PgPoolOptions::new().connect_lazy_with((*store.pool().connect_options()).clone()),
        )
        .with_prefix(store.prefix().clone());
        closed.pool().close().await;
        let err = closed.apply(&super::event(1, "sent", 1)).await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(matches!(
            closed.get(&super::sid(1)).await,
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(store.get(&super::sid(1)).await.unwrap(), None);
        db.cleanup().await;
    }

    #[tokio::test]
    async fn unreachable_server_is_unavailable() {
        // Nothing listens on port 1 of the loopback address.
        let store = PostgresStore::new(
            PgPoolOptions::new()
                .acquire_timeout(std::time::Duration::from_secs(2))
                .connect_lazy("postgres://nobody@127.0.0.1:1/none")
                .unwrap(),
        );
        let err = store.apply(&super::event(1, "sent", 1)).await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(
            store
                .try_reconcile_lock()
                .await
                .unwrap_err()
                .is_unavailable()
        );
        match PostgresStore::connect("postgres://u:secret@127.0.0.1:notaport/db").await {
            Err(StoreError::Config(msg)) => assert!(!msg.contains("secret"), "{msg}"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }
}
