//! Sending signed status callbacks, with Twilio's connection overrides (`#ct #rt #tt #rc #rp`).
//!
//! Each callback is requested at exactly the configured `StatusCallback` (fragment removed) and
//! signed over that same string, as Twilio does.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::callback_url::CallbackUrl;
use super::model::API_VERSION;
use super::state::{Busy, Shared};
use super::transport::{self, Outgoing};
use super::truth::{AttemptOutcome, CallbackAttempt};
use twilio_delivery::ids::MessageSid;
use twilio_delivery::signature::sign;
use twilio_delivery::status::MessageStatus;

/// Which failures are retried (`#rp`); Twilio's default is connect failures only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    client_errors: bool,
    server_errors: bool,
    connect: bool,
    timeout: bool,
}

impl RetryPolicy {
    /// Retries nothing.
    const NONE: Self = Self {
        client_errors: false,
        server_errors: false,
        connect: false,
        timeout: false,
    };

    /// Adds one `#rp` token; `false` if it is not one Twilio defines.
    fn add(&mut self, token: &str) -> bool {
        match token {
            "4xx" => self.client_errors = true,
            "5xx" => self.server_errors = true,
            "ct" => self.connect = true,
            "rt" => self.timeout = true,
            "all" => {
                *self = Self {
                    client_errors: true,
                    server_errors: true,
                    connect: true,
                    timeout: true,
                }
            }
            _ => return false,
        }
        true
    }

    /// Whether an attempt that ended this way is retried.
    pub(crate) fn retries(self, outcome: &AttemptOutcome) -> bool {
        match outcome {
            AttemptOutcome::Response(s) if (400..500).contains(s) => self.client_errors,
            AttemptOutcome::Response(s) if (500..600).contains(s) => self.server_errors,
            AttemptOutcome::Response(_) | AttemptOutcome::Dropped => false,
            AttemptOutcome::ConnectFailed => self.connect,
            AttemptOutcome::Timeout | AttemptOutcome::Error(_) => self.timeout,
        }
    }
}

/// Twilio's per-URL connection overrides, parsed from the callback URL's fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overrides {
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) total_timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) policy: RetryPolicy,
}

impl Default for Overrides {
    /// Twilio's defaults: connect 5 s, read 15 s, total 15 s, one retry of connect failures.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_millis(5000),
            read_timeout: Duration::from_millis(15000),
            total_timeout: Duration::from_millis(15000),
            retries: 1,
            policy: RetryPolicy {
                connect: true,
                ..RetryPolicy::NONE
            },
        }
    }
}

/// Milliseconds clamped into `min..=max`, or `None` if not a number.
fn millis(value: &str, min: u64, max: u64) -> Option<Duration> {
    value
        .parse::<u64>()
        .ok()
        .map(|ms| Duration::from_millis(ms.clamp(min, max)))
}

impl Overrides {
    /// Parses `ct`, `rt`, `tt` (milliseconds), `rc` (0–5) and `rp` (`4xx`, `5xx`, `ct`, `rt`,
    /// `all`, comma-separated) from a fragment such as `ct=1000&rc=3&rp=5xx,ct`. Values out of
    /// range are clamped (ct 100–10000, rt 100–15000, tt 100–15000); unknown keys and
    /// unparsable values are ignored.
    pub(crate) fn parse(fragment: &str) -> Self {
        let mut o = Self::default();
        for (key, value) in form_urlencoded::parse(fragment.as_bytes()) {
            match key.as_ref() {
                "ct" => {
                    o.connect_timeout = millis(&value, 100, 10_000).unwrap_or(o.connect_timeout)
                }
                "rt" => o.read_timeout = millis(&value, 100, 15_000).unwrap_or(o.read_timeout),
                "tt" => o.total_timeout = millis(&value, 100, 15_000).unwrap_or(o.total_timeout),
                "rc" => o.retries = value.parse::<u32>().map_or(o.retries, |n| n.min(5)),
                "rp" => {
                    let mut p = RetryPolicy::NONE;
                    let mut recognized = false;
                    for token in value.split(',') {
                        recognized |= p.add(token.trim());
                    }
                    if recognized {
                        o.policy = p;
                    }
                }
                _ => {}
            }
        }
        o
    }
}

/// Where callbacks of one message go: the validated URL (requested and signed without its
/// fragment) and the overrides from the fragment.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) url: CallbackUrl,
    pub(crate) overrides: Overrides,
}

impl Target {
    /// Validates a `StatusCallback` and reads the connection overrides from its fragment;
    /// `None` when Twilio would refuse it (21609).
    pub(crate) fn parse(status_callback: &str) -> Option<Self> {
        let url = CallbackUrl::parse(status_callback)?;
        let overrides = url
            .fragment
            .as_deref()
            .map_or_else(Overrides::default, Overrides::parse);
        Some(Self { url, overrides })
    }
}

/// One status callback to send: the message, its status and the form parameters.
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    pub(crate) sid: MessageSid,
    pub(crate) status: MessageStatus,
    pub(crate) error_code: Option<u16>,
    pub(crate) params: Vec<(String, String)>,
}

/// What a callback says about a message.
#[derive(Debug, Clone)]
pub(crate) struct Facts<'a> {
    pub(crate) account_sid: &'a str,
    pub(crate) sid: &'a MessageSid,
    pub(crate) to: &'a str,
    pub(crate) from: Option<&'a str>,
    pub(crate) messaging_service_sid: Option<&'a str>,
    /// The `XE…` SID of the channel installation, for WhatsApp and RCS messages.
    pub(crate) channel_install_sid: &'a str,
}

/// The channel prefix (`whatsapp`, `rcs`) and the bare address of a channel address such as
/// `whatsapp:+15552229999`; `None` for a plain phone number.
pub(crate) fn channel(address: &str) -> Option<(&str, &str)> {
    let (prefix, rest) = address.split_once(':')?;
    matches!(prefix, "whatsapp" | "rcs").then_some((prefix, rest))
}

/// `RawDlrDoneDate`: `YYMMDDhhmm` in UTC.
fn raw_dlr_done_date(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year repr:last_two][month][day][hour][minute]"
    ))
    .unwrap_or_default()
}

impl Payload {
    /// The callback Twilio sends when a message reaches `status`, at `at`.
    pub(crate) fn new(
        facts: &Facts<'_>,
        status: &MessageStatus,
        error_code: Option<u16>,
        at: OffsetDateTime,
    ) -> Self {
        let mut params: Vec<(String, String)> = vec![
            ("SmsSid".into(), facts.sid.to_string()),
            ("SmsStatus".into(), status.as_str().into()),
            ("MessageStatus".into(), status.as_str().into()),
            ("To".into(), facts.to.into()),
        ];
        if let Some(ms) = facts.messaging_service_sid {
            params.push(("MessagingServiceSid".into(), ms.into()));
        }
        params.push(("MessageSid".into(), facts.sid.to_string()));
        params.push(("AccountSid".into(), facts.account_sid.into()));
        if let Some(from) = facts.from {
            params.push(("From".into(), from.into()));
        }
        params.push(("ApiVersion".into(), API_VERSION.into()));
        if matches!(status, MessageStatus::Failed | MessageStatus::Undelivered)
            && let Some(code) = error_code
        {
            params.push(("ErrorCode".into(), code.to_string()));
        }
        if matches!(
            status,
            MessageStatus::Delivered | MessageStatus::Undelivered
        ) {
            params.push(("RawDlrDoneDate".into(), raw_dlr_done_date(at)));
        }
        // WhatsApp and RCS callbacks carry the channel fields ("Outbound Message Status in
        // Status Callbacks", https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks).
        if let Some((prefix, address)) = channel(facts.to) {
            params.push(("ChannelPrefix".into(), prefix.into()));
            params.push(("ChannelInstallSid".into(), facts.channel_install_sid.into()));
            params.push(("ChannelToAddress".into(), address.into()));
        }
        Self {
            sid: facts.sid.clone(),
            status: status.clone(),
            error_code,
            params,
        }
    }
}

/// A callback queued for sending, with the chaos decisions made for it.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) payload: Payload,
    pub(crate) duplicate: bool,
    pub(crate) dropped: bool,
}

/// A fresh `I-Twilio-Idempotency-Token` for each attempt, derived from the seed so runs repeat.
pub(crate) fn idempotency_token(
    seed: u64,
    sid: &MessageSid,
    delivery: u32,
    attempt: u32,
) -> String {
    let mut h = Sha256::new();
    h.update(seed.to_be_bytes());
    h.update(sid.as_str().as_bytes());
    h.update(delivery.to_be_bytes());
    h.update(attempt.to_be_bytes());
    let hex: String = h
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    let part = |r: std::ops::Range<usize>| hex.get(r).unwrap_or_default().to_owned();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

/// Resolves once the emulator is shutting down (or its handle is gone).
pub(crate) async fn shutdown_signal(shared: &Shared) {
    let mut rx = shared.shutdown.clone();
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Sends a message's callbacks one after another, in the order they are queued, until the
/// queue closes or the emulator shuts down or is reset out of `epoch`.
pub(crate) async fn sender(
    shared: Arc<Shared>,
    target: Target,
    epoch: u64,
    mut queue: mpsc::UnboundedReceiver<Delivery>,
    _busy: Busy,
) {
    let mut index = 0u32;
    loop {
        let next = tokio::select! {
            d = queue.recv() => d,
            () = shared.halted(epoch) => None,
        };
        let Some(delivery) = next else { break };
        tokio::select! {
            () = deliver(&shared, &target, epoch, &delivery, index) => {}
            () = shared.halted(epoch) => break,
        }
        index = index.saturating_add(1);
    }
}

/// Sends one callback, retrying as its overrides say, and records every attempt.
async fn deliver(shared: &Shared, target: &Target, epoch: u64, delivery: &Delivery, index: u32) {
    let payload = &delivery.payload;
    let attempt_record =
        |attempt: u32, token: Option<String>, outcome: AttemptOutcome| CallbackAttempt {
            sid: payload.sid.clone(),
            status: payload.status.clone(),
            error_code: payload.error_code,
            url: target.url.signed.clone(),
            attempt,
            idempotency_token: token,
            outcome,
            duplicate: delivery.duplicate,
            dropped: delivery.dropped,
        };
    if delivery.dropped {
        shared.record(epoch, attempt_record(1, None, AttemptOutcome::Dropped));
        return;
    }
    let o = target.overrides;
    let signature = sign(
        &shared.credentials.auth_token,
        &target.url.signed,
        &payload.params,
    );
    let body: bytes::Bytes = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(payload.params.iter())
        .finish()
        .into();
    let deadline = Instant::now() + o.total_timeout;
    let attempts = o.retries.saturating_add(1);
    for attempt in 1..=attempts {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        let token = idempotency_token(shared.settings.seed, &payload.sid, index, attempt);
        let outgoing = Outgoing {
            url: &target.url,
            signature: &signature,
            idempotency_token: &token,
            body: body.clone(),
        };
        let outcome = transport::send(&outgoing, o.connect_timeout, o.read_timeout, deadline).await;
        let retry = attempt < attempts && o.policy.retries(&outcome);
        shared.record(epoch, attempt_record(attempt, Some(token), outcome));
        if !retry {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_overrides_retry_connect_failures_once() {
        let o = Overrides::default();
        assert_eq!(o.retries, 1);
        assert!(o.policy.retries(&AttemptOutcome::ConnectFailed));
        assert!(!o.policy.retries(&AttemptOutcome::Response(503)));
        assert!(!o.policy.retries(&AttemptOutcome::Timeout));
        assert_eq!(Target::parse("http://h/cb").unwrap().overrides, o);
    }

    #[test]
    fn fragment_overrides() {
        let t = Target::parse("https://example.com/cb?x=1#ct=1000&rt=5000&tt=9000&rc=3&rp=5xx,rt")
            .unwrap();
        assert_eq!(t.url.signed, "https://example.com/cb?x=1");
        let o = t.overrides;
        assert_eq!(o.connect_timeout, Duration::from_millis(1000));
        assert_eq!(o.read_timeout, Duration::from_millis(5000));
        assert_eq!(o.total_timeout, Duration::from_millis(9000));
        assert_eq!(o.retries, 3);
        assert!(o.policy.retries(&AttemptOutcome::Response(503)));
        assert!(o.policy.retries(&AttemptOutcome::Timeout));
        assert!(!o.policy.retries(&AttemptOutcome::ConnectFailed));
        assert!(!o.policy.retries(&AttemptOutcome::Response(404)));
        let all = Overrides::parse("rp=all&rc=99&ct=1&tt=999999");
        assert_eq!(all.retries, 5);
        assert_eq!(all.connect_timeout, Duration::from_millis(100));
        assert_eq!(all.total_timeout, Duration::from_millis(15000));
        assert!(all.policy.retries(&AttemptOutcome::Response(404)));
        assert_eq!(
            Overrides::parse("rc=x&rp=nonsense&zz=1"),
            Overrides::default()
        );
    }

    #[test]
    fn payload_params() {
        let sid = MessageSid::new("SM0123456789abcdef0123456789abcdef").unwrap();
        let facts = Facts {
            account_sid: "AC0123456789abcdef0123456789abcdef",
            sid: &sid,
            to: "+15558675310",
            from: Some("+15005550006"),
            messaging_service_sid: None,
            channel_install_sid: "XE0123456789abcdef0123456789abcdef",
        };
        let at = time::macros::datetime!(2024-03-05 07:08:09 UTC);
        let p = Payload::new(&facts, &MessageStatus::Undelivered, Some(30003), at);
        let get = |k: &str| {
            p.params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("ErrorCode"), Some("30003"));
        assert_eq!(get("RawDlrDoneDate"), Some("2403050708"));
        assert_eq!(get("ApiVersion"), Some("2010-04-01"));
        assert_eq!(get("MessagingServiceSid"), None);
        let sent = Payload::new(&facts, &MessageStatus::Sent, None, at);
        assert!(
            sent.params
                .iter()
                .all(|(k, _)| k != "ErrorCode" && k != "RawDlrDoneDate")
        );
    }

    #[test]
    fn tokens_differ_per_attempt_and_repeat_per_seed() {
        let sid = MessageSid::new("SM0123456789abcdef0123456789abcdef").unwrap();
        let a = idempotency_token(1, &sid, 0, 1);
        assert_eq!(a.len(), 36);
        assert_ne!(a, idempotency_token(1, &sid, 0, 2));
        assert_ne!(a, idempotency_token(1, &sid, 1, 1));
        assert_eq!(a, idempotency_token(1, &sid, 0, 1));
    }
}
