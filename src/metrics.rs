//! The crate's metrics, through the [`metrics`](https://docs.rs/metrics) facade: install any
//! recorder (Prometheus, StatsD, OpenTelemetry) in your app and they appear; without one they
//! cost nothing. Labels are few and bounded: never a phone number, a SID or a URL.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `twilio_delivery_callbacks_total` | counter | `status` (HTTP code) | status callbacks answered, by answer (204, 400, 403, 405, 408, 413, 415, 500, 503) |
//! | `twilio_delivery_status_transitions_total` | counter | `from`, `to`, `source` | real changes of a message's current status made by the webhook or the reconciler (`from` is `new` for a first sight; `source` is `callback` or `reconciler`) |
//! | `twilio_delivery_send_to_final_seconds` | histogram | `status` | from a message's creation to the change that made it final |
//! | `twilio_delivery_store_write_seconds` | histogram | `operation` | store write latency of the webhook's and the reconciler's writes (`apply`, `apply_batch`) |
//! | `twilio_delivery_batch_size` | histogram | | events per group commit of the webhook's write queue |
//! | `twilio_delivery_reconciler_stuck_messages` | gauge | | messages a reconciliation pass found not final past the minimum age |
//! | `twilio_delivery_reconciler_repairs_total` | counter | | statuses the reconciler repaired (a callback was missed) |
//! | `twilio_delivery_reconciler_errors_total` | counter | `kind` | fetches that failed (`api`, `rate_limited`, `not_found`, `unknown_account`, `store`) |
//! | `twilio_delivery_feed_lag` | gauge | `consumer` (the name you gave it) | positions a change-feed consumer is behind the newest change |
//!
//! Status labels are Twilio's status names (`delivered`, ...), or `unknown` for statuses this
//! crate does not know, so a misbehaving peer cannot create new series.

use std::time::Duration;

use time::OffsetDateTime;

use crate::model::EventSource;
use crate::status::MessageStatus;

/// `twilio_delivery_callbacks_total`.
pub const CALLBACKS: &str = "twilio_delivery_callbacks_total";
/// `twilio_delivery_status_transitions_total`.
pub const TRANSITIONS: &str = "twilio_delivery_status_transitions_total";
/// `twilio_delivery_send_to_final_seconds`.
pub const SEND_TO_FINAL: &str = "twilio_delivery_send_to_final_seconds";
/// `twilio_delivery_store_write_seconds`.
pub const STORE_WRITE: &str = "twilio_delivery_store_write_seconds";
/// `twilio_delivery_batch_size`.
pub const BATCH_SIZE: &str = "twilio_delivery_batch_size";
/// `twilio_delivery_reconciler_stuck_messages`.
pub const STUCK: &str = "twilio_delivery_reconciler_stuck_messages";
/// `twilio_delivery_reconciler_repairs_total`.
pub const REPAIRS: &str = "twilio_delivery_reconciler_repairs_total";
/// `twilio_delivery_reconciler_errors_total`.
pub const RECONCILER_ERRORS: &str = "twilio_delivery_reconciler_errors_total";
/// `twilio_delivery_feed_lag`.
pub const FEED_LAG: &str = "twilio_delivery_feed_lag";

/// Counts one answered status callback.
pub(crate) fn callback_answered(status: u16) {
    let label = match status {
        204 => "204",
        400 => "400",
        403 => "403",
        405 => "405",
        408 => "408",
        413 => "413",
        415 => "415",
        500 => "500",
        503 => "503",
        _ => "other",
    };
    metrics::counter!(CALLBACKS, "status" => label).increment(1);
}

/// Counts one real change of a message's status and, when it became final, how long it took
/// from the message's creation.
pub(crate) fn transition(
    previous: Option<&MessageStatus>,
    current: &MessageStatus,
    source: EventSource,
    created_at: Option<OffsetDateTime>,
) {
    let from = previous.map_or("new", MessageStatus::label);
    let to = current.label();
    let source = match source {
        EventSource::Callback => "callback",
        EventSource::Reconciler => "reconciler",
        _ => "send",
    };
    metrics::counter!(TRANSITIONS, "from" => from, "to" => to, "source" => source).increment(1);
    if current.is_final()
        && let Some(created_at) = created_at
    {
        let took = (OffsetDateTime::now_utc() - created_at)
            .as_seconds_f64()
            .max(0.0);
        metrics::histogram!(SEND_TO_FINAL, "status" => to).record(took);
    }
}

/// Records how long a store write took.
pub(crate) fn store_write(operation: &'static str, took: Duration) {
    metrics::histogram!(STORE_WRITE, "operation" => operation).record(took.as_secs_f64());
}

/// Records the size of one group commit.
pub(crate) fn batch_size(events: usize) {
    metrics::histogram!(BATCH_SIZE).record(events as f64);
}

/// What one reconciliation pass found and did.
pub(crate) fn reconciler_pass(stuck: usize, repairs: usize) {
    metrics::gauge!(STUCK).set(stuck as f64);
    metrics::counter!(REPAIRS).increment(repairs as u64);
}

/// Counts one failed reconciliation fetch.
pub(crate) fn reconciler_error(kind: &'static str) {
    metrics::counter!(RECONCILER_ERRORS, "kind" => kind).increment(1);
}

/// How far behind a change-feed consumer is.
pub(crate) fn feed_lag(consumer: &str, positions: u64) {
    metrics::gauge!(FEED_LAG, "consumer" => consumer.to_owned()).set(positions as f64);
}
