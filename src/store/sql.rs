//! Shared by the SQL backends: the validated table prefix, the statements, row conversion.
//!
//! Both backends run the same statements (SQLite and PostgreSQL both take `$n` placeholders);
//! only a few fragments differ by [`Dialect`]. The prefix is the only text interpolated into
//! SQL, and only after [`TablePrefix::new`] has validated it; every value is a bind parameter.

use std::sync::Arc;

use time::OffsetDateTime;

use super::StoreError;
use crate::feed::FeedEntry;
use crate::ids::{AccountSid, MessageSid, MessagingServiceSid};
use crate::model::{EventSource, HistoryEntry, MessageRecord};
use crate::notify::StatusChange;
use crate::status::MessageStatus;

/// A table-name prefix for the SQL stores (default `twilio_`), validated so it cannot inject SQL:
/// 1 to 32 characters, ASCII letters, digits and `_`, not starting with a digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePrefix(String);

impl TablePrefix {
    /// Validates a prefix.
    ///
    /// # Errors
    /// [`super::StoreError::Config`] when the prefix is empty, too long or has other characters.
    pub fn new(prefix: impl Into<String>) -> Result<Self, super::StoreError> {
        let p = prefix.into();
        let ok = p.len() <= 32
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && p.bytes().next().is_some_and(|b| !b.is_ascii_digit());
        if ok {
            Ok(Self(p))
        } else {
            Err(super::StoreError::Config(
                "table prefix must be 1-32 ASCII letters, digits or '_', not starting with a digit"
                    .into(),
            ))
        }
    }

    /// The prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TablePrefix {
    fn default() -> Self {
        Self("twilio_".into())
    }
}

/// The SQL flavour a statement is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
}

/// One versioned schema step: its version number, a name, and its DDL with `{prefix}` holes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    ddl: &'static str,
}

impl Migration {
    /// The DDL with the validated prefix filled in.
    pub(crate) fn render(&self, prefix: &TablePrefix) -> String {
        self.ddl.replace("{prefix}", prefix.as_str())
    }
}

/// The SQLite schema steps, oldest first.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        ddl: include_str!("../../sql/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "feed",
        ddl: include_str!("../../sql/sqlite/0002_feed.sql"),
    },
    Migration {
        version: 3,
        name: "opt_outs",
        ddl: include_str!("../../sql/sqlite/0003_opt_outs.sql"),
    },
    Migration {
        version: 4,
        name: "write_path",
        ddl: include_str!("../../sql/sqlite/0004_write_path.sql"),
    },
    Migration {
        version: 5,
        name: "events_by_message_id",
        ddl: include_str!("../../sql/sqlite/0005_events_by_message_id.sql"),
    },
    Migration {
        version: 6,
        name: "opt_out_keywords",
        ddl: include_str!("../../sql/sqlite/0006_opt_out_keywords.sql"),
    },
];

/// The PostgreSQL schema steps, oldest first.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        ddl: include_str!("../../sql/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "feed",
        ddl: include_str!("../../sql/postgres/0002_feed.sql"),
    },
    Migration {
        version: 3,
        name: "opt_outs",
        ddl: include_str!("../../sql/postgres/0003_opt_outs.sql"),
    },
    Migration {
        version: 4,
        name: "write_path",
        ddl: include_str!("../../sql/postgres/0004_write_path.sql"),
    },
    Migration {
        version: 5,
        name: "history_cascade_trigger",
        ddl: include_str!("../../sql/postgres/0005_history_cascade_trigger.sql"),
    },
    Migration {
        version: 6,
        name: "feed_sequence",
        ddl: include_str!("../../sql/postgres/0006_feed_sequence.sql"),
    },
    Migration {
        version: 7,
        name: "batch_conflict",
        ddl: include_str!("../../sql/postgres/0007_batch_conflict.sql"),
    },
    Migration {
        version: 8,
        name: "pending_follows_deletes",
        ddl: include_str!("../../sql/postgres/0008_pending_follows_deletes.sql"),
    },
    Migration {
        version: 9,
        name: "opt_out_keywords",
        ddl: include_str!("../../sql/postgres/0009_opt_out_keywords.sql"),
    },
];

/// The lowest precedence of a final status. Every non-final status ranks below it (a law of
/// [`MessageStatus::precedence`], tested there), so "not final" is `status_rank < FINAL_RANK`
/// in SQL, which the DDL spells out as a literal (SQLite's partial pending index, the backfill
/// of PostgreSQL's pending table).
pub(crate) const FINAL_RANK: u8 = 7;

/// The most distinct statuses one [`super::ListQuery`] may filter on in a SQL store.
pub(crate) const MAX_LIST_STATUSES: usize = 256;

/// The columns of a message record, in the order [`RecordRow`] reads them.
const RECORD_COLUMNS: &str = "sid, account_sid, to_addr, from_addr, messaging_service_sid, body, \
     num_segments, status, error_code, error_message, sent_recorded, created_at, updated_at";

/// Every statement a SQL store runs, rendered once for its prefix and dialect.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) prefix: TablePrefix,
    /// `$1` sid → `status` (locks the row in PostgreSQL).
    pub(crate) select_status: Arc<str>,
    /// The upsert for `record_sent`; see [`Statements::new`] for its binds.
    pub(crate) upsert_sent: Arc<str>,
    /// `$1` sid → a record.
    pub(crate) get: Arc<str>,
    /// `$1` sid → its events, oldest first.
    pub(crate) history: Arc<str>,
    /// `$1` older than, `$2` limit, `$3` created from → non-final records, oldest first
    /// (PostgreSQL: also deletes the pending rows of final messages it passes; see [`pending`]).
    pub(crate) pending: Arc<str>,
    /// As `pending`, only records after `$4` created at, `$5` sid in that order.
    pub(crate) pending_after: Arc<str>,
    /// `SELECT <record columns> FROM messages WHERE TRUE`, for the list query builder.
    pub(crate) list_head: String,
    /// Creates the migrations table if missing.
    pub(crate) create_migrations: String,
    /// → every applied version.
    pub(crate) select_versions: Arc<str>,
    /// `$1` version, `$2` name, `$3` applied at: records an applied version.
    pub(crate) insert_version: Arc<str>,
    /// The change feed's statements.
    pub(crate) feed: FeedStatements,
}

/// The statements of the change feed and its consumers.
#[derive(Debug)]
pub(crate) struct FeedStatements {
    /// `$1` after, `$2` limit, `$3` up to (inclusive) → feed rows in position order.
    pub(crate) after: Arc<str>,
    /// → the head position.
    pub(crate) head: Arc<str>,
    /// `$1` consumer → its position.
    pub(crate) cursor: Arc<str>,
    /// `$1` consumer, `$2` position, `$3` now: moves a cursor forward (never back).
    pub(crate) advance: Arc<str>,
    /// `$1` consumer, `$2` position, `$3` error, `$4` attempts, `$5` parked at.
    pub(crate) park: Arc<str>,
    /// `$1` consumer, `$2` limit → dead letters joined with their feed rows.
    pub(crate) dead_letters: Arc<str>,
    /// `$1` consumer, `$2` position → its dead letter.
    pub(crate) dead_letter: Arc<str>,
    /// `$1` consumer, `$2` position: removes a dead letter.
    pub(crate) remove_dead_letter: Arc<str>,
}

/// The columns of a feed row, in the order [`FeedRow`] reads them.
const FEED_COLUMNS: &str = "f.position, f.sid, f.previous, f.current, f.error_code, f.source, f.at";

impl FeedStatements {
    fn new(p: &str, dialect: Dialect) -> Self {
        let head = format!("SELECT COALESCE(MAX(position), 0) FROM {p}feed");
        let max = match dialect {
            Dialect::Sqlite => "MAX",
            Dialect::Postgres => "GREATEST",
        };
        Self {
            after: format!(
                "SELECT {FEED_COLUMNS} FROM {p}feed AS f WHERE f.position > $1 \
                 AND f.position <= $3 ORDER BY f.position LIMIT $2"
            )
            .into(),
            head: head.into(),
            cursor: format!("SELECT position FROM {p}feed_cursors WHERE consumer = $1").into(),
            advance: format!(
                "INSERT INTO {p}feed_cursors AS c (consumer, position, updated_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (consumer) DO UPDATE SET \
                 position = {max}(c.position, excluded.position), updated_at = excluded.updated_at"
            )
            .into(),
            park: format!(
                "INSERT INTO {p}dead_letters (consumer, position, error, attempts, parked_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (consumer, position) DO UPDATE SET \
                 error = excluded.error, attempts = excluded.attempts, \
                 parked_at = excluded.parked_at"
            )
            .into(),
            dead_letters: format!(
                "SELECT d.consumer, d.error, d.attempts, d.parked_at, {FEED_COLUMNS} \
                 FROM {p}dead_letters AS d JOIN {p}feed AS f ON f.position = d.position \
                 WHERE d.consumer = $1 ORDER BY d.position LIMIT $2"
            )
            .into(),
            dead_letter: format!(
                "SELECT d.consumer, d.error, d.attempts, d.parked_at, {FEED_COLUMNS} \
                 FROM {p}dead_letters AS d JOIN {p}feed AS f ON f.position = d.position \
                 WHERE d.consumer = $1 AND d.position = $2"
            )
            .into(),
            remove_dead_letter: format!(
                "DELETE FROM {p}dead_letters WHERE consumer = $1 AND position = $2"
            )
            .into(),
        }
    }
}

/// A feed row as the database returns it, before validation.
#[derive(Debug)]
pub(crate) struct FeedRow {
    pub(crate) position: i64,
    pub(crate) sid: String,
    pub(crate) previous: Option<String>,
    pub(crate) current: String,
    pub(crate) error_code: Option<i64>,
    pub(crate) source: String,
    pub(crate) at: OffsetDateTime,
}

impl FeedRow {
    /// Validates the row into a feed entry.
    pub(crate) fn into_entry(self) -> Result<FeedEntry, StoreError> {
        let change = StatusChange {
            sid: MessageSid::new(self.sid).map_err(corrupt("feed sid"))?,
            previous: self.previous.map(MessageStatus::from),
            current: MessageStatus::from(self.current),
            error_code: to_u32(self.error_code, "feed error_code")?,
            source: EventSource::parse(&self.source),
            at: self.at,
        };
        Ok(FeedEntry::new(to_position(self.position)?, change))
    }
}

/// A stored position as a feed position (stored ones are never negative).
pub(crate) fn to_position(p: i64) -> Result<u64, StoreError> {
    u64::try_from(p).map_err(corrupt("position"))
}

/// A feed position as stored (positions beyond `i64::MAX` cannot exist; they saturate).
pub(crate) fn from_position(p: u64) -> i64 {
    i64::try_from(p).unwrap_or(i64::MAX)
}

/// The pending messages' query of `dialect` for the tables of prefix `p`, with `and` added to
/// its conditions.
fn pending(dialect: Dialect, p: &str, and: &str) -> String {
    match dialect {
        // The partial index of messages not final.
        Dialect::Sqlite => format!(
            "SELECT {RECORD_COLUMNS} FROM {p}messages WHERE status_rank < {FINAL_RANK} \
             AND created_at < $1 AND created_at >= $3{and} ORDER BY created_at, sid LIMIT $2"
        ),
        // The pending table (schema version 4) holds every message not final, and the
        // messages that became final since a pending read last passed them: the write path
        // leaves their rows for this read to delete, which keeps that delete out of the
        // webhook's writes. A row whose message is final or gone (deleted before schema
        // version 8) takes no place of the page. The read deletes the rows of final messages
        // it passed over: up to the page's last row, or through the window when the page is
        // not full, skipping rows another transaction holds, so it never waits.
        Dialect::Postgres => {
            let window = format!("created_at < $1 AND created_at >= $3{and}");
            format!(
                "WITH page AS (SELECT p.sid, p.created_at FROM {p}pending AS p \
                 WHERE {window} \
                 AND EXISTS (SELECT 1 FROM {p}messages AS m WHERE m.sid = p.sid \
                   AND m.status_rank < {FINAL_RANK}) \
                 ORDER BY created_at, sid LIMIT $2), \
               passed AS (SELECT p.sid FROM {p}pending AS p \
                 WHERE {window} \
                 AND ((SELECT count(*) FROM page) < $2 OR (created_at, sid) < (SELECT created_at, sid \
                   FROM page ORDER BY created_at DESC, sid DESC LIMIT 1)) \
                 AND EXISTS (SELECT 1 FROM {p}messages AS m WHERE m.sid = p.sid \
                   AND m.status_rank >= {FINAL_RANK}) \
                 FOR UPDATE OF p SKIP LOCKED), \
               pruned AS (DELETE FROM {p}pending WHERE sid IN (SELECT sid FROM passed)) \
               SELECT {RECORD_COLUMNS} FROM {p}messages WHERE sid IN (SELECT sid FROM page) \
               ORDER BY created_at, sid"
            )
        }
    }
}

impl Statements {
    /// Renders every statement for `prefix` in `dialect`.
    ///
    /// Binds of `upsert_sent`: `$1` sid, `$2` account_sid, `$3` to, `$4` from, `$5` service,
    /// `$6` body, `$7` num_segments, `$8` status, `$9` rank, `$10` created_at, `$11` now.
    pub(crate) fn new(prefix: TablePrefix, dialect: Dialect) -> Self {
        let p = prefix.as_str();
        let (collate, for_update, inserted) = match dialect {
            Dialect::Sqlite => ("BINARY", "", ""),
            // `xmax = 0` on a row returned by an upsert: this statement inserted it.
            Dialect::Postgres => ("\"C\"", " FOR UPDATE", ", (xmax = 0) AS inserted"),
        };
        // The max-register order of `MessageStatus::cmp_precedence`: rank, then byte-wise name
        // between two unknown statuses (rank 0).
        let adv = format!(
            "(excluded.status_rank > m.status_rank OR (excluded.status_rank = 0 \
             AND m.status_rank = 0 AND excluded.status COLLATE {collate} > m.status COLLATE {collate}))"
        );
        let upsert_sent = format!(
            "INSERT INTO {p}messages AS m (sid, account_sid, to_addr, from_addr, \
             messaging_service_sid, body, num_segments, status, status_rank, sent_recorded, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, TRUE, $10, $11) \
             ON CONFLICT (sid) DO UPDATE SET \
             status = CASE WHEN {adv} THEN excluded.status ELSE m.status END, \
             status_rank = CASE WHEN {adv} THEN excluded.status_rank ELSE m.status_rank END, \
             error_code = CASE WHEN {adv} THEN NULL ELSE m.error_code END, \
             error_message = CASE WHEN {adv} THEN NULL ELSE m.error_message END, \
             account_sid = COALESCE(m.account_sid, excluded.account_sid), \
             to_addr = excluded.to_addr, \
             from_addr = COALESCE(excluded.from_addr, m.from_addr), \
             messaging_service_sid = COALESCE(m.messaging_service_sid, excluded.messaging_service_sid), \
             body = COALESCE(m.body, excluded.body), \
             num_segments = COALESCE(m.num_segments, excluded.num_segments), \
             sent_recorded = TRUE, \
             created_at = excluded.created_at, \
             updated_at = excluded.updated_at \
             RETURNING status{inserted}"
        );
        let create_migrations = match dialect {
            Dialect::Sqlite => format!(
                "CREATE TABLE IF NOT EXISTS {p}migrations (version INTEGER NOT NULL PRIMARY KEY, \
                 name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT"
            ),
            Dialect::Postgres => format!(
                "CREATE TABLE IF NOT EXISTS {p}migrations (version BIGINT NOT NULL PRIMARY KEY, \
                 name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            ),
        };
        // SQLite's history is indexed by message number (schema version 5), PostgreSQL's by SID.
        let history_of = match dialect {
            Dialect::Sqlite => format!("message_id = (SELECT id FROM {p}messages WHERE sid = $1)"),
            Dialect::Postgres => "message_sid = $1".to_owned(),
        };
        Self {
            select_status: format!("SELECT status FROM {p}messages WHERE sid = $1{for_update}")
                .into(),
            upsert_sent: upsert_sent.into(),
            get: format!("SELECT {RECORD_COLUMNS} FROM {p}messages WHERE sid = $1").into(),
            history: format!(
                "SELECT status, error_code, received_at, source, idempotency_token, raw \
                 FROM {p}events WHERE {history_of} ORDER BY received_at, id"
            )
            .into(),
            pending: pending(dialect, p, "").into(),
            pending_after: pending(dialect, p, " AND (created_at, sid) > ($4, $5)").into(),
            list_head: format!("SELECT {RECORD_COLUMNS} FROM {p}messages WHERE TRUE"),
            create_migrations,
            select_versions: format!("SELECT version FROM {p}migrations").into(),
            insert_version: format!(
                "INSERT INTO {p}migrations (version, name, applied_at) VALUES ($1, $2, $3)"
            )
            .into(),
            feed: FeedStatements::new(p, dialect),
            prefix,
        }
    }
}

/// A message row as the database returns it, before validation.
#[derive(Debug)]
pub(crate) struct RecordRow<T> {
    pub(crate) sid: String,
    pub(crate) account_sid: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) messaging_service_sid: Option<String>,
    pub(crate) body: Option<String>,
    pub(crate) num_segments: Option<i64>,
    pub(crate) status: String,
    pub(crate) error_code: Option<i64>,
    pub(crate) error_message: Option<String>,
    pub(crate) sent_recorded: bool,
    pub(crate) created_at: T,
    pub(crate) updated_at: T,
}

impl RecordRow<OffsetDateTime> {
    /// Validates the row into a record; a bad SID or number is [`StoreError::Corrupt`].
    pub(crate) fn into_record(self) -> Result<MessageRecord, StoreError> {
        Ok(MessageRecord {
            sid: MessageSid::new(self.sid).map_err(corrupt("sid"))?,
            account_sid: self
                .account_sid
                .map(AccountSid::new)
                .transpose()
                .map_err(corrupt("account_sid"))?,
            to: self.to,
            from: self.from,
            messaging_service_sid: self
                .messaging_service_sid
                .map(MessagingServiceSid::new)
                .transpose()
                .map_err(corrupt("messaging_service_sid"))?,
            body: self.body,
            num_segments: to_u32(self.num_segments, "num_segments")?,
            status: MessageStatus::from(self.status),
            error_code: to_u32(self.error_code, "error_code")?,
            error_message: self.error_message,
            sent_recorded: self.sent_recorded,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl RecordRow<i64> {
    /// Converts stored microseconds into times, then validates like the timestamped row.
    #[cfg(feature = "sqlite")]
    pub(crate) fn into_record(self) -> Result<MessageRecord, StoreError> {
        let created_at = from_micros(self.created_at, "created_at")?;
        let updated_at = from_micros(self.updated_at, "updated_at")?;
        RecordRow {
            sid: self.sid,
            account_sid: self.account_sid,
            to: self.to,
            from: self.from,
            messaging_service_sid: self.messaging_service_sid,
            body: self.body,
            num_segments: self.num_segments,
            status: self.status,
            error_code: self.error_code,
            error_message: self.error_message,
            sent_recorded: self.sent_recorded,
            created_at,
            updated_at,
        }
        .into_record()
    }
}

/// An event row as the database returns it, before validation.
#[derive(Debug)]
pub(crate) struct EventRow {
    pub(crate) status: String,
    pub(crate) error_code: Option<i64>,
    pub(crate) received_at: OffsetDateTime,
    pub(crate) source: String,
    pub(crate) idempotency_token: Option<String>,
    pub(crate) raw: String,
}

impl EventRow {
    /// Validates the row into a history entry; bad raw JSON is [`StoreError::Corrupt`].
    pub(crate) fn into_entry(self) -> Result<HistoryEntry, StoreError> {
        Ok(HistoryEntry {
            status: MessageStatus::from(self.status),
            error_code: to_u32(self.error_code, "error_code")?,
            received_at: self.received_at,
            source: EventSource::parse(&self.source),
            idempotency_token: self.idempotency_token,
            raw: serde_json::from_str(&self.raw)
                .map_err(|e| StoreError::Corrupt(format!("raw pairs of an event: {e}")))?,
        })
    }
}

/// The raw pairs as stored: a JSON array of `[key, value]` arrays, in wire order.
pub(crate) fn raw_json(raw: &[(String, String)]) -> String {
    // Serializing strings into JSON cannot fail.
    serde_json::to_string(raw).unwrap_or_else(|_| "[]".to_owned())
}

/// The rank stored beside a status.
pub(crate) fn rank(status: &MessageStatus) -> i32 {
    i32::from(status.precedence())
}

/// Maps a database error: rows that cannot be decoded are corrupt, a value PostgreSQL cannot
/// hold is rejected (see [`refused_value`]), anything else is a failure of the database
/// (unreachable, pool closed, statement failed) that may pass.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
        other => match refused_value(&other) {
            Some(code) => StoreError::Rejected(format!(
                "the database refused a value of the write (SQLSTATE {code})"
            )),
            None => StoreError::Unavailable(Box::new(other)),
        },
    }
}

/// The SQLSTATE of a PostgreSQL error about a value of the statement, which the same statement
/// meets again: class 22 (data exception) or 54 (program limit exceeded, such as an index row
/// too large). Only the code is kept: some of these messages quote the value.
#[cfg(feature = "postgres")]
fn refused_value(e: &sqlx::Error) -> Option<String> {
    let pg = e
        .as_database_error()?
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    let code = pg.code();
    (code.starts_with("22") || code.starts_with("54")).then(|| code.to_owned())
}

/// Without PostgreSQL, no error is about a value (SQLite's limits are beyond what a write here
/// can reach).
#[cfg(not(feature = "postgres"))]
fn refused_value(_: &sqlx::Error) -> Option<String> {
    None
}

fn corrupt<E: std::fmt::Display>(column: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Corrupt(format!("{column}: {e}"))
}

fn to_u32(v: Option<i64>, column: &'static str) -> Result<Option<u32>, StoreError> {
    v.map(u32::try_from).transpose().map_err(corrupt(column))
}

/// Microseconds since the Unix epoch, rounded down (times are stored with microsecond
/// precision, as PostgreSQL keeps them).
pub(crate) fn micros_floor(t: OffsetDateTime) -> i64 {
    saturate(t.unix_timestamp_nanos().div_euclid(1000))
}

/// Microseconds since the Unix epoch, rounded up: a stored (rounded-down) time `s` is before
/// `t` exactly when `s < micros_ceil(t)`, and at or after `t` exactly when `s >= micros_ceil(t)`.
pub(crate) fn micros_ceil(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    saturate(n.div_euclid(1000) + i128::from(n.rem_euclid(1000) != 0))
}

/// The key to bind for "after `(at, sid)`" in the pending messages' order, at the stores'
/// microsecond precision: microseconds and SID as they are when `at` is a whole microsecond
/// (a stored time always is); otherwise every SID of `at`'s microsecond is before `at` and
/// every SID of the next one after it, which the next microsecond with an empty SID says.
pub(crate) fn after_key(at: OffsetDateTime, sid: &MessageSid) -> (i64, &str) {
    let (floor, ceil) = (micros_floor(at), micros_ceil(at));
    if floor == ceil {
        (floor, sid.as_str())
    } else {
        (ceil, "")
    }
}

fn saturate(n: i128) -> i64 {
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// The time for stored microseconds.
pub(crate) fn from_micros(us: i64, column: &'static str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).map_err(corrupt(column))
}

/// `t` rounded down to a whole microsecond (or `t` itself at the edge of the range).
#[cfg(feature = "postgres")]
pub(crate) fn floor_time(t: OffsetDateTime) -> OffsetDateTime {
    from_micros(micros_floor(t), "").unwrap_or(t)
}

/// `t` rounded up to a whole microsecond (or `t` itself at the edge of the range).
#[cfg(feature = "postgres")]
pub(crate) fn ceil_time(t: OffsetDateTime) -> OffsetDateTime {
    from_micros(micros_ceil(t), "").unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn final_rank_separates_final_from_non_final() {
        for s in MessageStatus::KNOWN {
            assert_eq!(s.is_final(), s.precedence() >= FINAL_RANK, "{s:?}");
        }
        assert!(MessageStatus::Unknown("x".into()).precedence() < FINAL_RANK);
    }

    #[test]
    fn pending_index_uses_the_final_rank() {
        let needle = format!("status_rank < {FINAL_RANK}");
        #[cfg(feature = "sqlite")]
        assert!(SQLITE_MIGRATIONS.iter().any(|m| m.ddl.contains(&needle)));
        #[cfg(feature = "postgres")]
        assert!(POSTGRES_MIGRATIONS.iter().any(|m| m.ddl.contains(&needle)));
    }

    #[test]
    fn prefixes_are_validated() {
        for ok in ["twilio_", "a", "A_1", "_x", &"p".repeat(32)] {
            assert!(TablePrefix::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "a;drop", "é", &"p".repeat(33)] {
            assert!(TablePrefix::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn microsecond_rounding() {
        let t = datetime!(2024-05-01 12:00:00.000_001_5 UTC);
        assert_eq!(micros_floor(t) + 1, micros_ceil(t));
        let whole = datetime!(2024-05-01 12:00:00.000_002 UTC);
        assert_eq!(micros_floor(whole), micros_ceil(whole));
        assert_eq!(from_micros(micros_floor(whole), "t").unwrap(), whole);
        let before = datetime!(1969-12-31 23:59:59.999_999_5 UTC);
        assert_eq!(micros_floor(before), -1);
        assert_eq!(micros_ceil(before), 0);
    }

    #[test]
    fn raw_pairs_round_trip_in_order() {
        let raw = vec![
            ("b".to_owned(), "1".to_owned()),
            ("a".to_owned(), "\0\"é".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ];
        let row = EventRow {
            status: "sent".into(),
            error_code: None,
            received_at: OffsetDateTime::UNIX_EPOCH,
            source: "callback".into(),
            idempotency_token: None,
            raw: raw_json(&raw),
        };
        assert_eq!(row.into_entry().unwrap().raw, raw);
    }
}
