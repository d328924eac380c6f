//! The parsers of what Twilio posts (status callbacks, incoming messages) never panic, whatever
//! the bytes, and what they return agrees with the pairs they were given: every pair kept in
//! wire order, each field read from the first pair of its name, a body parsed the same as its
//! pairs. Pairs are drawn over Twilio's documented parameter names with values both plausible
//! and hostile (huge numbers, `NaN`, multibyte text, empty values, repeats).

use proptest::prelude::*;
use twilio_delivery::callback::{StatusCallback, parse_raw_dlr_done_date};
use twilio_delivery::inbound::{InboundMessage, OptOut};

/// Parameter names of both webhooks, legacy twins included.
const NAMES: &[&str] = &[
    "MessageSid",
    "SmsSid",
    "SmsMessageSid",
    "MessageStatus",
    "SmsStatus",
    "AccountSid",
    "MessagingServiceSid",
    "ErrorCode",
    "RawDlrDoneDate",
    "From",
    "To",
    "Body",
    "NumMedia",
    "NumSegments",
    "MediaUrl0",
    "MediaUrl1",
    "MediaUrl10",
    "MediaContentType0",
    "Latitude",
    "Longitude",
    "OptOutType",
    "Forwarded",
    "ChannelPrefix",
];

/// A value for any parameter: well-formed for some, hostile for all.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "(SM|MM|AC|MG)[0-9a-f]{32}",
        "(SM|MM)[0-9a-fé]{31,33}",
        "(queued|sent|delivered|undelivered|failed|read|received|SENT|new_one)",
        "-?[0-9]{1,25}",
        "[0-9]{10}",
        "(NaN|inf|-inf|1e400|90|-180|37\\.7879|\\+1555)",
        "(STOP|start|Help|true|FALSE)",
        any::<String>(),
    ]
}

/// The pairs both webhooks require, well-formed.
const REQUIRED: &[(&str, &str)] = &[
    ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
    ("MessageStatus", "delivered"),
    ("From", "+15558675310"),
    ("To", "+15017122661"),
];

/// Pairs over the documented names (and a few unknown ones), in any order, repeats allowed;
/// in half of them the required pairs too, so that many are read rather than refused.
fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        4 => prop::sample::select(NAMES).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    let noise = prop::collection::vec((name, value()), 0..16);
    (any::<bool>(), noise)
        .prop_map(|(required, mut pairs)| {
            if required {
                let owned = REQUIRED
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
                pairs.extend(owned);
            }
            pairs
        })
        .prop_shuffle()
}

/// The first non-empty value among `names`, in the order of `names`, as the parsers read them.
fn first<'a>(pairs: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| {
        pairs
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    })
}

fn encode(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_are_read_or_refused(body in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = StatusCallback::from_form(&body, None);
        let _ = InboundMessage::from_form(&body);
    }

    #[test]
    fn a_callback_agrees_with_its_pairs(pairs in pairs()) {
        let from_body = StatusCallback::from_form(encode(&pairs).as_bytes(), Some("tok"));
        let parsed = StatusCallback::from_pairs(pairs.clone(), Some("tok"));
        prop_assert_eq!(from_body.is_ok(), parsed.is_ok());
        let Ok(cb) = parsed else { return Ok(()) };
        prop_assert_eq!(&cb.raw, &pairs);
        prop_assert_eq!(from_body.unwrap().raw, pairs.clone());
        let sid = first(&pairs, &["MessageSid", "SmsSid"]);
        prop_assert_eq!(Some(cb.message_sid.as_str()), sid);
        let status = first(&pairs, &["MessageStatus", "SmsStatus"]);
        prop_assert_eq!(Some(cb.status.as_str()), status);
        let code = first(&pairs, &["ErrorCode"]).map(|v| v.parse::<u32>().unwrap());
        prop_assert_eq!(cb.error_code, code);
        prop_assert_eq!(cb.idempotency_token.as_deref(), Some("tok"));
        // A date is read only when it is one: written back, it gives the raw value again.
        if let Some(at) = cb.dlr_done_at {
            let again = format!(
                "{:02}{:02}{:02}{:02}{:02}",
                at.year() - 2000, u8::from(at.month()), at.day(), at.hour(), at.minute()
            );
            prop_assert_eq!(cb.raw_dlr_done_date.as_deref(), Some(again.as_str()));
        }
    }

    #[test]
    fn an_incoming_message_agrees_with_its_pairs(pairs in pairs()) {
        let from_body = InboundMessage::from_form(encode(&pairs).as_bytes());
        let parsed = InboundMessage::from_pairs(pairs.clone());
        prop_assert_eq!(&from_body, &parsed);
        let Ok(m) = parsed else { return Ok(()) };
        prop_assert_eq!(&m.raw, &pairs);
        let sid = first(&pairs, &["MessageSid", "SmsMessageSid", "SmsSid"]);
        prop_assert_eq!(Some(m.sid.as_str()), sid);
        prop_assert_eq!(Some(m.from.as_str()), first(&pairs, &["From"]));
        prop_assert_eq!(Some(m.to.as_str()), first(&pairs, &["To"]));
        let media = first(&pairs, &["NumMedia"]).map_or(0, |v| v.parse::<usize>().unwrap());
        prop_assert_eq!(m.media.len(), media);
        if let Some(at) = &m.location {
            prop_assert!(at.latitude.is_finite() && at.latitude.abs() <= 90.0);
            prop_assert!(at.longitude.is_finite() && at.longitude.abs() <= 180.0);
        }
        if let Some(OptOut::Unknown(v)) = m.opt_out() {
            prop_assert_eq!(Some(v.as_str()), first(&pairs, &["OptOutType"]));
        }
    }

    #[test]
    fn a_done_date_is_ten_digits_that_name_a_minute(raw in "[0-9]{8,12}|\\PC{0,12}") {
        let parsed = parse_raw_dlr_done_date(&raw);
        let digits = raw.len() == 10 && raw.bytes().all(|b| b.is_ascii_digit());
        prop_assert!(parsed.is_none() || digits);
        if let Some(at) = parsed {
            prop_assert_eq!(at.offset(), time::UtcOffset::UTC);
            prop_assert_eq!(at.second(), 0);
        }
    }
}

/// `RawDlrDoneDate` as Twilio's changelog of 2023-02-14 defines it: `YYMMDDhhmm`, the year's
/// last two digits, month 01–12, day 01–31, hour 00–23, minute 00–59, no time zone (read as
/// UTC). Ten digits outside those ranges, or not ASCII, name no minute.
#[test]
fn done_dates_as_twilio_defines_them() {
    let at = parse_raw_dlr_done_date("2303151415");
    assert_eq!(at, Some(time::macros::datetime!(2023-03-15 14:15 UTC)));
    let last = parse_raw_dlr_done_date("9912312359");
    assert_eq!(last, Some(time::macros::datetime!(2099-12-31 23:59 UTC)));
    for not_a_minute in [
        "2313011200",
        "2300011200",
        "2302301200",
        "2301012400",
        "2301011260",
    ] {
        assert_eq!(
            parse_raw_dlr_done_date(not_a_minute),
            None,
            "{not_a_minute}"
        );
    }
    assert_eq!(parse_raw_dlr_done_date("２３03151415"), None);
    assert_eq!(parse_raw_dlr_done_date("230315141"), None);
}
