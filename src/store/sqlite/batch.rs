//! The writes of an `SqliteStore`, inside the writer's transaction: a batch of events as two
//! scripts of multi-row statements, `record_sent`, and the feed rows of their changes.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite};
use time::OffsetDateTime;

use super::super::StoreError;
use super::super::batch::{Plan, RowState, RowWrite};
use super::super::sql::{
    Statements, db_error, from_micros, micros_floor, rank, raw_json, to_position,
};
use super::writer::WriteTx;
use crate::model::{Applied, EventSource, SentMessage, StatusEvent};
use crate::notify::StatusChange;
use crate::status::{MessageStatus, transition};

/// Rows per multi-row statement: SQLite binds at most 32 766 values per statement.
const ROWS_PER_STATEMENT: usize = 500;

/// Applies `events` in order, in the writer's transaction; the answers and, when there were
/// changes, the new feed head.
///
/// Two round trips to the connection's thread whatever the batch: one script opens the
/// transaction and reads the batch's rows (as one JSON array) and the history pairs it has
/// already, the other writes everything and commits, returning one row at most (the feed head).
/// Few rows, because every row crosses to the async side on its own, a wake-up each. Each
/// statement of a script has as many rows as the batch needs, so a batch size's scripts are
/// prepared once and then found in the connection's statement cache.
pub(super) async fn apply(
    sql: &Statements,
    tx: &mut WriteTx<'_>,
    events: &[StatusEvent],
) -> Result<(Vec<Applied>, Option<u64>), StoreError> {
    let p = sql.prefix.as_str();
    let now = OffsetDateTime::now_utc();
    let refs: Vec<&StatusEvent> = events.iter().collect();
    let mut sids: Vec<&str> = events.iter().map(|e| e.sid.as_str()).collect();
    sids.sort_unstable();
    sids.dedup();

    let mut read = Script::default();
    read.statement("BEGIN IMMEDIATE".to_owned());
    // Each statement walks its list of values and looks each row up through an index (`CROSS
    // JOIN` keeps that order): an `IN` list or a joined list SQLite would copy into a
    // temporary table first, one more B-tree opened and freed per statement. The rows found
    // come back as one row: a JSON array of arrays, each a `MessageRow`.
    for chunk in sids.chunks(ROWS_PER_STATEMENT) {
        let qb = read.statement(
            "SELECT json_group_array(json_array(m.sid, m.status, m.error_code, \
             m.error_message, m.account_sid, m.to_addr, m.from_addr, \
             m.messaging_service_sid, m.created_at)) AS messages FROM ("
                .to_owned(),
        );
        qb.push_values(chunk, |mut b, sid| {
            b.push_bind(*sid);
        });
        qb.push(format!(
            ") AS v CROSS JOIN {p}messages AS m ON m.sid = v.column1"
        ));
    }
    // The batch's (SID, status) pairs the history already has: usually none. The writer holds
    // the write lock from here to the commit, so the rest of the pairs are new.
    let mut pairs: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.sid.as_str(), e.status.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    for chunk in pairs.chunks(ROWS_PER_STATEMENT) {
        let qb = read.statement("SELECT m.sid AS sid, e.status AS status FROM (".to_owned());
        qb.push_values(chunk, |mut b, (sid, status)| {
            b.push_bind(*sid).push_bind(*status);
        });
        qb.push(format!(
            ") AS v CROSS JOIN {p}messages AS m ON m.sid = v.column1 \
             CROSS JOIN {p}events AS e ON e.message_id = m.id AND e.status = v.column2"
        ));
    }
    tx.opening();
    let rows = read.run(tx.conn()).await?;
    let mut existing = HashMap::with_capacity(sids.len());
    let mut stored = HashSet::new();
    for row in rows {
        // The messages found (one column) or a stored history pair (two).
        if row.len() == 2 {
            let sid: String = row.try_get("sid").map_err(db_error)?;
            let status: String = row.try_get("status").map_err(db_error)?;
            stored.insert((sid, status));
        } else {
            let messages: String = row.try_get("messages").map_err(db_error)?;
            for message in serde_json::from_str::<Vec<MessageRow>>(&messages)
                .map_err(|e| StoreError::Corrupt(format!("messages read: {e}")))?
            {
                let (sid, state) = message.into_state()?;
                existing.insert(sid, state);
            }
        }
    }

    let plan = Plan::new(&refs, existing, now);
    let now_us = micros_floor(now);
    let mut write = Script::default();
    // Most updates change only the status columns: written apart, they leave the index on
    // the recipient untouched.
    let (details, status_only): (Vec<&RowWrite>, Vec<&RowWrite>) =
        plan.updates.iter().partition(|w| w.details);
    for chunk in status_only.chunks(ROWS_PER_STATEMENT) {
        update_rows(&mut write, p, chunk, now_us, false);
    }
    for chunk in details.chunks(ROWS_PER_STATEMENT) {
        update_rows(&mut write, p, chunk, now_us, true);
    }
    for chunk in plan.inserts.chunks(ROWS_PER_STATEMENT) {
        insert_rows(&mut write, p, chunk, now_us);
    }
    for chunk in plan.history.chunks(ROWS_PER_STATEMENT) {
        // Each row finds its message's number (schema version 5) through the SID index.
        let qb = write.statement(format!(
            "INSERT INTO {p}events (message_id, message_sid, status, error_code, received_at, \
             source, idempotency_token, raw) \
             SELECT (SELECT id FROM {p}messages WHERE sid = v.column1), v.* FROM ("
        ));
        qb.push_values(chunk, |mut b, &i| {
            let e = &events[i];
            b.push_bind(e.sid.as_str().to_owned())
                .push_bind(e.status.as_str().to_owned())
                .push_bind(e.error_code.map(i64::from))
                .push_bind(micros_floor(e.received_at))
                .push_bind(e.source.as_str())
                .push_bind(e.idempotency_token.clone())
                .push_bind(raw_json(&e.raw));
        });
        // `WHERE true` tells SQLite's parser that `ON CONFLICT` is the upsert's (a pair
        // stored already, read above, is skipped).
        qb.push(") AS v WHERE true ON CONFLICT (message_id, status) DO NOTHING");
    }
    push_changes(&mut write, p, &plan.changes);
    write.statement("COMMIT".to_owned());
    let rows = write.run(tx.conn()).await?;
    tx.committed();
    let head = read_head(rows)?;
    let kept: HashSet<(String, String)> = plan
        .history
        .iter()
        .map(|&i| {
            (
                events[i].sid.as_str().to_owned(),
                events[i].status.as_str().to_owned(),
            )
        })
        .filter(|pair| !stored.contains(pair))
        .collect();
    Ok((plan.answers(&refs, &kept), head))
}

/// A message row as the read script's JSON array holds it, the columns in the script's order
/// (SQLite writes text as JSON strings, escaped as JSON needs, so every string comes back
/// exactly, and integers as JSON numbers).
#[derive(Deserialize)]
struct MessageRow {
    sid: String,
    status: String,
    error_code: Option<i64>,
    error_message: Option<String>,
    account_sid: Option<String>,
    to: Option<String>,
    from: Option<String>,
    service: Option<String>,
    created_us: i64,
}

impl MessageRow {
    /// The row's SID and the state a batch plans from.
    fn into_state(self) -> Result<(String, RowState), StoreError> {
        let created_at = from_micros(self.created_us, "created_at")?;
        let state = RowState {
            status: MessageStatus::from(self.status),
            error_code: self.error_code,
            error_message: self.error_message,
            account_sid: self.account_sid,
            to: self.to,
            from: self.from,
            service: self.service,
            created_at,
        };
        Ok((self.sid, state))
    }
}

/// The feed head that [`push_changes`] selected, if it wrote changes.
fn read_head(rows: Vec<SqliteRow>) -> Result<Option<u64>, StoreError> {
    match rows.first() {
        Some(row) => Ok(Some(to_position(
            row.try_get("position").map_err(db_error)?,
        )?)),
        None => Ok(None),
    }
}

/// Statements separated by `;`, with the binds of all of them in order (sqlx binds a
/// script's `?` parameters statement after statement).
struct Script {
    qb: QueryBuilder<Sqlite>,
    empty: bool,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            qb: QueryBuilder::new(""),
            empty: true,
        }
    }
}

impl Script {
    /// Starts the next statement with `sql`; the builder, to add its values and binds.
    fn statement(&mut self, sql: String) -> &mut QueryBuilder<Sqlite> {
        if !self.empty {
            self.qb.push("; ");
        }
        self.empty = false;
        self.qb.push(sql);
        &mut self.qb
    }

    /// Runs the script; the rows its statements returned, in order.
    async fn run(mut self, conn: &mut SqliteConnection) -> Result<Vec<SqliteRow>, StoreError> {
        self.qb.build().fetch_all(conn).await.map_err(db_error)
    }
}

/// Adds the insert of the rows of new messages to a script.
fn insert_rows<'r>(
    script: &mut Script,
    p: &str,
    rows: impl IntoIterator<Item = &'r RowWrite>,
    now_us: i64,
) {
    let qb = script.statement(format!(
        "INSERT INTO {p}messages (sid, account_sid, to_addr, from_addr, \
         messaging_service_sid, status, status_rank, error_code, error_message, sent_recorded, \
         created_at, updated_at) "
    ));
    qb.push_values(rows, |mut b, w| {
        let r = &w.row;
        b.push_bind(w.sid.clone())
            .push_bind(r.account_sid.clone())
            .push_bind(r.to.clone())
            .push_bind(r.from.clone())
            .push_bind(r.service.clone())
            .push_bind(r.status.as_str().to_owned())
            .push_bind(rank(&r.status))
            .push_bind(r.error_code)
            .push_bind(r.error_message.clone())
            .push_bind(false)
            .push_bind(micros_floor(r.created_at))
            .push_bind(now_us);
    });
}

/// Adds the update of `rows` to a script: their status columns, and with `details` their
/// account, recipient, sender and service too. It is the insert of the rows as planned, whose
/// conflict on the SID (the rows exist: they were read under the write lock) writes only the
/// columns named, so a status change leaves the index on the recipient alone. Each row is found
/// through the SID index, with no temporary table (an `UPDATE ... FROM` join copies the list
/// into one, and `SET (...) = (SELECT ... WHERE sid = ...)` scans the list for every row).
fn update_rows(script: &mut Script, p: &str, rows: &[&RowWrite], now_us: i64, details: bool) {
    let mut columns = vec!["status", "status_rank", "error_code", "error_message"];
    if details {
        columns.extend([
            "account_sid",
            "to_addr",
            "from_addr",
            "messaging_service_sid",
        ]);
    }
    columns.push("updated_at");
    let set: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    insert_rows(script, p, rows.iter().copied(), now_us);
    script.qb.push(format!(
        " ON CONFLICT (sid) DO UPDATE SET {}",
        set.join(", ")
    ));
}

/// Adds the feed rows of `changes`, in order, to a script, then (when there are any) the
/// selection of the new head: one row, however many changes.
fn push_changes(script: &mut Script, p: &str, changes: &[StatusChange]) {
    for chunk in changes.chunks(ROWS_PER_STATEMENT) {
        let qb = script.statement(format!(
            "INSERT INTO {p}feed (sid, previous, current, error_code, source, at) "
        ));
        qb.push_values(chunk, |mut b, c| {
            b.push_bind(c.sid.as_str().to_owned())
                .push_bind(c.previous.as_ref().map(|s| s.as_str().to_owned()))
                .push_bind(c.current.as_str().to_owned())
                .push_bind(c.error_code.map(i64::from))
                .push_bind(c.source.as_str())
                .push_bind(micros_floor(c.at));
        });
    }
    if !changes.is_empty() {
        script.statement(format!("SELECT max(position) AS position FROM {p}feed"));
    }
}

/// Writes the feed rows of `changes`, in order; the new head when there were any.
async fn insert_changes(
    conn: &mut SqliteConnection,
    p: &str,
    changes: &[StatusChange],
) -> Result<Option<u64>, StoreError> {
    if changes.is_empty() {
        return Ok(None);
    }
    let mut script = Script::default();
    push_changes(&mut script, p, changes);
    read_head(script.run(conn).await?)
}

/// `record_sent` inside the writer's transaction; the answer and the new feed head.
pub(super) async fn record_sent(
    sql: &Statements,
    conn: &mut SqliteConnection,
    sent: &SentMessage,
) -> Result<(Applied, Option<u64>), StoreError> {
    let previous: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql.select_status.clone()))
        .bind(sent.sid.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
    let previous = previous.map(MessageStatus::from);
    let now = OffsetDateTime::now_utc();
    let returned: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql.upsert_sent.clone()))
        .bind(sent.sid.as_str())
        .bind(sent.account_sid.as_ref().map(|s| s.as_str()))
        .bind(sent.to.as_str())
        .bind(sent.from.as_deref())
        .bind(sent.messaging_service_sid.as_ref().map(|s| s.as_str()))
        .bind(sent.body.as_deref())
        .bind(sent.num_segments.map(i64::from))
        .bind(sent.status.as_str())
        .bind(rank(&sent.status))
        .bind(micros_floor(sent.created_at))
        .bind(micros_floor(now))
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
    let current = match (returned, &previous) {
        (Some(s), _) => MessageStatus::from(s),
        (None, Some(p)) => p.clone(),
        (None, None) => {
            return Err(StoreError::Corrupt(
                "the upsert of a new message returned no row".into(),
            ));
        }
    };
    let applied = Applied::new(
        transition(previous.as_ref(), &sent.status),
        previous,
        current,
        false,
    );
    let changes: Vec<StatusChange> =
        StatusChange::from_applied(&sent.sid, &applied, None, EventSource::Send)
            .map(|mut c| {
                c.at = now;
                c
            })
            .into_iter()
            .collect();
    let head = insert_changes(conn, sql.prefix.as_str(), &changes).await?;
    Ok((applied, head))
}
