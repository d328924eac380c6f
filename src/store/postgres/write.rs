//! The writes of a `PostgresStore`: a batch of events in one transaction of three round trips
//! (begin and lock the rows in SID order, write everything with `unnest`, commit), and
//! `record_sent`.
//!
//! A status change touches no index of `messages` (schema version 4), so PostgreSQL updates
//! the row in place (HOT); the `pending` table, which lists the messages not final, loses the
//! row of a message that became final in the same statement.
//!
//! Rows are locked in SID order and created in SID order, so two transactions never wait for
//! each other in a cycle: any number of instances write concurrently without deadlocks. A
//! transaction that has changes takes their feed positions from a sequence once its rows are
//! locked, holding the feed writers' shared lock (see `feed.rs`) to its end; a batch of
//! duplicates takes neither.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Connection as _, Row};
use time::OffsetDateTime;

use super::super::batch::{Plan, RowState};
use super::super::sql::{FINAL_RANK, Statements, floor_time, rank, raw_json};
use super::feed::Gaps;
use super::{clean, clean_status, lock_status, settle};
use crate::model::{Applied, EventSource, SentMessage, StatusEvent};
use crate::notify::StatusChange;
use crate::status::{MessageStatus, transition};

/// The PostgreSQL-only write statements, rendered for a prefix.
#[derive(Debug)]
pub(super) struct Writes {
    /// The locking `SELECT` of a batch's rows, up to its SID list (see [`begin_and_lock`]).
    lock_rows: String,
    /// The whole batch; see [`Writes::new`].
    batch: String,
    /// `$1` sid, `$2` previous, `$3` current, `$4` error code, `$5` source, `$6` at,
    /// `$7` channel → the position of one change.
    feed_one: String,
    /// `$1` sid, `$2` created_at, `$3` whether the message is pending (not final): puts the
    /// message in the pending table or takes it out.
    set_pending: String,
    /// The `NOTIFY` channel of the feed.
    pub(super) channel: String,
}

impl Writes {
    /// The statements for the prefix of `sql`. The batch statement runs its parts in the
    /// order of its final `SELECT` (PostgreSQL runs a data-modifying `WITH` part when the query
    /// first reads it, and the parts no one reads after the query): the messages, the pending
    /// list and the history, then the feed. Positions are numbered in the order of the
    /// batch's changes (`row_number` over the values taken, whatever order PostgreSQL takes
    /// them in), so one message's changes keep their order.
    pub(super) fn new(sql: &Statements, gaps: &Gaps) -> Self {
        let p = sql.prefix.as_str();
        let lock = &gaps.take;
        let channel = format!("{p}feed");
        Self {
            lock_rows: format!(
                "SELECT sid, status, error_code, error_message, account_sid, to_addr, from_addr, \
                 messaging_service_sid, \
                 (EXTRACT(EPOCH FROM created_at) * 1000000)::int8 AS created_us \
                 FROM {p}messages WHERE sid IN "
            ),
            batch: format!(
                "WITH ins AS ( \
                   INSERT INTO {p}messages (sid, account_sid, to_addr, from_addr, \
                     messaging_service_sid, status, status_rank, error_code, error_message, \
                     sent_recorded, created_at, updated_at) \
                   SELECT u.sid, u.account_sid, u.to_addr, u.from_addr, u.service, u.status, \
                     u.rank, u.error_code, u.error_message, FALSE, u.created_at, $33 \
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                     $6::text[], $7::int4[], $8::int8[], $9::text[], $10::timestamptz[]) \
                     WITH ORDINALITY AS u(sid, account_sid, to_addr, from_addr, service, status, \
                     rank, error_code, error_message, created_at, ord) \
                   ORDER BY u.ord \
                   ON CONFLICT (sid) DO NOTHING RETURNING sid, created_at, status_rank), \
                 pend_ins AS ( \
                   INSERT INTO {p}pending (sid, created_at) \
                   SELECT sid, created_at FROM ins WHERE status_rank < {FINAL_RANK} \
                   ON CONFLICT (sid) DO NOTHING RETURNING 1), \
                 upd AS ( \
                   UPDATE {p}messages AS m SET status = u.status, status_rank = u.rank, \
                     error_code = u.error_code, error_message = u.error_message, \
                     account_sid = u.account_sid, to_addr = u.to_addr, from_addr = u.from_addr, \
                     messaging_service_sid = u.service, updated_at = $33 \
                   FROM unnest($11::text[], $12::text[], $13::int4[], $14::int8[], $15::text[], \
                     $16::text[], $17::text[], $18::text[], $19::text[]) \
                     AS u(sid, status, rank, error_code, error_message, account_sid, to_addr, \
                     from_addr, service) \
                   WHERE m.sid = u.sid RETURNING m.sid, m.status_rank), \
                 pend_del AS ( \
                   DELETE FROM {p}pending WHERE sid = ANY(ARRAY( \
                     SELECT sid FROM upd WHERE status_rank >= {FINAL_RANK})) RETURNING 1), \
                 ev AS ( \
                   INSERT INTO {p}events (message_sid, status, error_code, received_at, source, \
                     idempotency_token, raw) \
                   SELECT u.sid, u.status, u.error_code, u.received_at, u.source, u.token, u.raw \
                   FROM unnest($20::text[], $21::text[], $22::int8[], $23::timestamptz[], \
                     $24::text[], $25::text[], $26::text[]) WITH ORDINALITY \
                     AS u(sid, status, error_code, received_at, source, token, raw, ord) \
                   ORDER BY u.ord \
                   ON CONFLICT (message_sid, status) DO NOTHING RETURNING message_sid, status), \
                 lk AS (SELECT {lock} AS l WHERE $32 > 0), \
                 pos AS ( \
                   SELECT row_number() OVER (ORDER BY v) AS ord, v AS position FROM ( \
                     SELECT nextval('{p}feed_position') AS v \
                     FROM lk, generate_series(1, $32) AS g) AS taken), \
                 feed AS ( \
                   INSERT INTO {p}feed (position, sid, previous, current, error_code, source, at) \
                   SELECT pos.position, u.sid, u.previous, u.current, u.error_code, u.source, $33 \
                   FROM pos JOIN unnest($27::text[], $28::text[], $29::text[], $30::int8[], \
                     $31::text[]) WITH ORDINALITY AS u(sid, previous, current, error_code, source, ord) \
                     ON u.ord = pos.ord \
                   RETURNING position), \
                 wake AS (SELECT pg_notify($34, '') AS n FROM lk) \
                 SELECT (SELECT count(*) FROM ins) AS inserted, \
                   (SELECT count(*) FROM pend_ins) AS pended, (SELECT count(*) FROM upd) AS updated, \
                   (SELECT count(*) FROM pend_del) AS unpended, \
                   ARRAY(SELECT message_sid FROM ev ORDER BY message_sid, status) AS kept_sids, \
                   ARRAY(SELECT status FROM ev ORDER BY message_sid, status) AS kept_statuses, \
                   (SELECT count(*) FROM feed) AS fed, (SELECT count(*) FROM wake) AS woke, \
                   (SELECT max(position) FROM feed) AS head"
            ),
            feed_one: format!(
                "WITH lk AS (SELECT {lock} AS l), \
                 ins AS (INSERT INTO {p}feed (position, sid, previous, current, error_code, \
                   source, at) SELECT nextval('{p}feed_position'), $1, $2, $3, $4, $5, $6 \
                   FROM lk RETURNING position) \
                 SELECT ins.position FROM ins, (SELECT pg_notify($7, '') AS n) AS wake"
            ),
            set_pending: format!(
                "WITH out AS (DELETE FROM {p}pending WHERE sid = $1 AND NOT $3) \
                 INSERT INTO {p}pending (sid, created_at) SELECT $1, $2 WHERE $3 \
                 ON CONFLICT (sid) DO UPDATE SET created_at = excluded.created_at"
            ),
            channel,
        }
    }
}

/// An event with its text made storable (U+0000 replaced), borrowed when it already is.
fn cleaned(e: &StatusEvent) -> Cow<'_, StatusEvent> {
    let nul = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains('\0'));
    let status_nul = matches!(&e.status, MessageStatus::Unknown(n) if n.contains('\0'));
    if !(status_nul
        || nul(&e.to)
        || nul(&e.from)
        || nul(&e.error_message)
        || nul(&e.idempotency_token))
    {
        return Cow::Borrowed(e);
    }
    let mut c = e.clone();
    c.status = clean_status(&e.status);
    let fix = |s: &Option<String>| s.as_deref().map(|s| clean(s).into_owned());
    c.to = fix(&e.to);
    c.from = fix(&e.from);
    c.error_message = fix(&e.error_message);
    c.idempotency_token = fix(&e.idempotency_token);
    Cow::Owned(c)
}

/// What a batch did: the answers and the new feed head, if it wrote changes. `None` when a
/// message the batch meant to create was created by another transaction first: retry.
pub(super) type BatchOutcome = Option<(Vec<Applied>, Option<u64>)>;

/// Writes `events` in one transaction on `conn`, begun with `begin`.
pub(super) async fn apply_batch(
    w: &Writes,
    begin: &str,
    conn: &mut PoolConnection<Postgres>,
    events: &[StatusEvent],
) -> Result<BatchOutcome, sqlx::Error> {
    let cleaned: Vec<Cow<'_, StatusEvent>> = events.iter().map(cleaned).collect();
    let refs: Vec<&StatusEvent> = cleaned.iter().map(|c| &**c).collect();
    let mut sids: Vec<String> = refs.iter().map(|e| e.sid.as_str().to_owned()).collect();
    sids.sort_unstable();
    sids.dedup();
    let now = floor_time(OffsetDateTime::now_utc());

    let (mut tx, rows) = begin_and_lock(conn, begin, &w.lock_rows, &sids).await?;
    let mut existing = HashMap::with_capacity(rows.len());
    for row in &rows {
        let (sid, state) = RowState::read(row, "created_us")?;
        existing.insert(sid, state);
    }
    let plan = Plan::new(&refs, existing, now);

    let ins = &plan.inserts;
    let upd = &plan.updates;
    let hist: Vec<&StatusEvent> = plan.history.iter().map(|&i| refs[i]).collect();
    let ch = &plan.changes;
    let text = |v: Option<&String>| v.cloned();
    let row = sqlx::query(AssertSqlSafe(w.batch.clone()))
        .bind(ins.iter().map(|r| r.sid.clone()).collect::<Vec<_>>())
        .bind(
            ins.iter()
                .map(|r| text(r.row.account_sid.as_ref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            ins.iter()
                .map(|r| text(r.row.to.as_ref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            ins.iter()
                .map(|r| text(r.row.from.as_ref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            ins.iter()
                .map(|r| text(r.row.service.as_ref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            ins.iter()
                .map(|r| r.row.status.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(ins.iter().map(|r| rank(&r.row.status)).collect::<Vec<_>>())
        .bind(ins.iter().map(|r| r.row.error_code).collect::<Vec<_>>())
        .bind(
            ins.iter()
                .map(|r| text(r.row.error_message.as_ref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            ins.iter()
                .map(|r| floor_time(r.row.created_at))
                .collect::<Vec<_>>(),
        )
        .bind(upd.iter().map(|r| r.sid.clone()).collect::<Vec<_>>())
        .bind(
            upd.iter()
                .map(|r| r.row.status.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(upd.iter().map(|r| rank(&r.row.status)).collect::<Vec<_>>())
        .bind(upd.iter().map(|r| r.row.error_code).collect::<Vec<_>>())
        .bind(
            upd.iter()
                .map(|r| text(r.row.error_message.as_ref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            upd.iter()
                .map(|r| text(r.row.account_sid.as_ref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            upd.iter()
                .map(|r| text(r.row.to.as_ref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            upd.iter()
                .map(|r| text(r.row.from.as_ref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            upd.iter()
                .map(|r| text(r.row.service.as_ref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            hist.iter()
                .map(|e| e.sid.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(
            hist.iter()
                .map(|e| e.status.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(
            hist.iter()
                .map(|e| e.error_code.map(i64::from))
                .collect::<Vec<_>>(),
        )
        .bind(
            hist.iter()
                .map(|e| floor_time(e.received_at))
                .collect::<Vec<_>>(),
        )
        .bind(hist.iter().map(|e| e.source.as_str()).collect::<Vec<_>>())
        .bind(
            hist.iter()
                .map(|e| e.idempotency_token.clone())
                .collect::<Vec<_>>(),
        )
        .bind(hist.iter().map(|e| raw_json(&e.raw)).collect::<Vec<_>>())
        .bind(
            ch.iter()
                .map(|c| c.sid.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(
            ch.iter()
                .map(|c| c.previous.as_ref().map(|s| s.as_str().to_owned()))
                .collect::<Vec<_>>(),
        )
        .bind(
            ch.iter()
                .map(|c| c.current.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(
            ch.iter()
                .map(|c| c.error_code.map(i64::from))
                .collect::<Vec<_>>(),
        )
        .bind(ch.iter().map(|c| c.source.as_str()).collect::<Vec<_>>())
        .bind(i64::try_from(ch.len()).unwrap_or(i64::MAX))
        .bind(now)
        .bind(w.channel.as_str())
        .fetch_one(tx.conn())
        .await?;
    let inserted: i64 = row.try_get("inserted")?;
    if usize::try_from(inserted).ok() != Some(ins.len()) {
        // Another transaction created one of "our" new messages after we looked: our plan
        // is void. Roll back and plan again on the rows as they are now.
        tx.finish("ROLLBACK").await?;
        return Ok(None);
    }
    let head: Option<i64> = row.try_get("head")?;
    let kept_sids: Vec<String> = row.try_get("kept_sids")?;
    let kept_statuses: Vec<String> = row.try_get("kept_statuses")?;
    tx.finish("COMMIT").await?;
    let kept: HashSet<(String, String)> = kept_sids.into_iter().zip(kept_statuses).collect();
    let head = head.and_then(|h| u64::try_from(h).ok());
    Ok(Some((plan.answers(&refs, &kept), head)))
}

/// A transaction begun by hand (see [`begin_and_lock`]). [`finish`](Self::finish) ends it;
/// dropped unfinished (an error, a cancelled write), it closes its connection, which ends the
/// transaction on the server, instead of returning the connection to the pool inside it.
struct HandTx<'c> {
    conn: &'c mut PoolConnection<Postgres>,
    open: bool,
}

impl HandTx<'_> {
    /// The connection, for the statements of the transaction.
    fn conn(&mut self) -> &mut PgConnection {
        self.conn
    }

    /// Ends the transaction with `COMMIT` or `ROLLBACK`.
    async fn finish(mut self, end: &'static str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(end))
            .execute(self.conn())
            .await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for HandTx<'_> {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

/// Opens the write transaction and locks the batch's existing rows, in SID order, in one
/// round trip: `begin` (with its timeouts) and the locking `SELECT` sent as one simple query.
/// A simple query takes no binds, so the SIDs are written into it as literals: they are
/// validated SIDs (two letters and 32 hex digits), which is checked again here.
async fn begin_and_lock<'c>(
    conn: &'c mut PoolConnection<Postgres>,
    begin: &str,
    lock_rows: &str,
    sids: &[String],
) -> Result<(HandTx<'c>, Vec<PgRow>), sqlx::Error> {
    if sids.is_empty()
        || !sids
            .iter()
            .all(|s| s.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(sqlx::Error::Protocol("a batch without valid SIDs".into()));
    }
    let mut sql = format!("{begin}; {lock_rows}(");
    for (i, sid) in sids.iter().enumerate() {
        sql.push_str(if i == 0 { "'" } else { ", '" });
        sql.push_str(sid);
        sql.push('\'');
    }
    sql.push_str(") ORDER BY sid FOR UPDATE");
    let mut tx = HandTx { conn, open: true };
    let rows = sqlx::raw_sql(AssertSqlSafe(sql))
        .fetch_all(tx.conn())
        .await?;
    Ok((tx, rows))
}

/// `record_sent` in one transaction on `conn`; `None` when it lost a creation race (retry).
pub(super) async fn record_sent(
    sql: &Statements,
    w: &Writes,
    begin: &str,
    conn: &mut PgConnection,
    sent: &SentMessage,
) -> Result<Option<(Applied, Option<u64>)>, sqlx::Error> {
    let status = clean_status(&sent.status);
    let now = floor_time(OffsetDateTime::now_utc());
    let mut tx = conn.begin_with(AssertSqlSafe(begin.to_owned())).await?;
    let previous = lock_status(&mut tx, &sql.select_status, sent.sid.as_str()).await?;
    let row = sqlx::query(AssertSqlSafe(sql.upsert_sent.clone()))
        .bind(sent.sid.as_str())
        .bind(sent.account_sid.as_ref().map(|s| s.as_str()))
        .bind(clean(&sent.to))
        .bind(sent.from.as_deref().map(clean))
        .bind(sent.messaging_service_sid.as_ref().map(|s| s.as_str()))
        .bind(sent.body.as_deref().map(clean))
        .bind(sent.num_segments.map(i64::from))
        .bind(status.as_str())
        .bind(rank(&status))
        .bind(floor_time(sent.created_at))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(current) = settle(&previous, row)? else {
        tx.rollback().await?;
        return Ok(None);
    };
    sqlx::query(AssertSqlSafe(w.set_pending.clone()))
        .bind(sent.sid.as_str())
        .bind(floor_time(sent.created_at))
        .bind(rank(&current) < i32::from(FINAL_RANK))
        .execute(&mut *tx)
        .await?;
    let applied = Applied::new(
        transition(previous.as_ref(), &status),
        previous,
        current,
        false,
    );
    let mut head = None;
    if let Some(c) = StatusChange::from_applied(&sent.sid, &applied, None, EventSource::Send) {
        let position: i64 = sqlx::query_scalar(AssertSqlSafe(w.feed_one.clone()))
            .bind(c.sid.as_str())
            .bind(c.previous.as_ref().map(MessageStatus::as_str))
            .bind(c.current.as_str())
            .bind(None::<i64>)
            .bind(c.source.as_str())
            .bind(now)
            .bind(w.channel.as_str())
            .fetch_one(&mut *tx)
            .await?;
        head = u64::try_from(position).ok();
    }
    tx.commit().await?;
    Ok(Some((applied, head)))
}
