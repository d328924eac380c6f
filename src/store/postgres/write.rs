//! The writes of a `PostgresStore`: a batch of events in one or two round trips, and
//! `record_sent`.
//!
//! A batch whose events are all for different messages (the common case: callbacks of one
//! message come seconds apart) is one statement that commits on its own: it locks the rows of
//! its messages in SID order, compares each event with the row it locked by the max-register
//! rule (`status_rank`, then the name between unknown statuses, byte-wise), and writes the
//! changes, the history and the feed. The store checks each of the statement's decisions
//! against [`transition`], the crate's own rule, and answers from that rule.
//!
//! A batch with two events or more for one message needs them applied in order, one over the
//! other: it reads its messages' rows without locking them, with each row's version (`xmin`,
//! which every update of the row changes), plans its writes from them in memory (`Plan`),
//! then writes everything with `unnest` in one statement that commits on its own: no
//! transaction stays open between the round trips. That statement first locks the rows it
//! read, in SID order, and checks that each is still the version the plan was made from; when
//! one changed in between (another instance wrote it), the statement fails whole with a
//! serialization failure (`<prefix>batch_conflict()`, schema version 7), nothing written, and
//! the store reads and plans again.
//!
//! Either statement fails the same way when a message it meant to create was created by
//! another transaction first: it then retries on the row that exists. (A batch that keeps
//! losing is written one event at a time: `PostgresStore::write_one_by_one`.)
//!
//! A status change touches no index of `messages` (schema version 4), so PostgreSQL updates
//! the row in place (HOT). A message enters the `pending` table, which the reconciler reads,
//! in the statement that creates it; a message that becomes final keeps its row there until
//! the pending read passes it and deletes it (see `Statements`' `pending`), so the write of a
//! burst of final callbacks does no delete. Leaving that delete to the pending read gave
//! about a tenth more callbacks/s (docs/PERFORMANCE.md).
//!
//! Rows are locked in SID order and created in SID order, so two statements never wait for
//! each other in a cycle: any number of instances write concurrently without deadlocks. A
//! statement that has changes takes their feed positions from a sequence once its rows are
//! locked, holding the feed writers' shared lock (see `feed.rs`) to its end; a batch of
//! duplicates takes neither.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Connection as _, Row};
use time::OffsetDateTime;

use super::super::batch::{Plan, RowState};
use super::super::sql::{FINAL_RANK, Statements, floor_time, rank, raw_json};
use super::feed::Gaps;
use super::{clean, clean_status, lock_status, micros_time, settle};
use crate::model::{Applied, EventSource, SentMessage, StatusEvent};
use crate::notify::StatusChange;
use crate::status::{MessageStatus, transition};

/// The columns a batch inserts into `messages`, in order.
const MESSAGE_COLUMNS: &str = "sid, account_sid, to_addr, from_addr, messaging_service_sid, \
    status, status_rank, error_code, error_message, sent_recorded, created_at, updated_at";

/// The PostgreSQL-only write statements, rendered for a prefix.
#[derive(Debug)]
pub(super) struct Writes {
    /// `$1` the batch's SIDs → their rows as [`read_row`] reads them, and `version`.
    read_rows: String,
    /// The whole batch; see [`Writes::new`].
    batch: String,
    /// A batch of distinct messages in one round trip; see [`Writes::new`].
    locked_batch: String,
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
    /// first reads it, and the parts no one reads after the query): its check first, then the
    /// messages, the pending list's new rows and the history, then the feed. The check (`gate`)
    /// sets the lock timeout for the statement (`$37`), locks the rows read (`$35` SIDs in
    /// order, `$36` their versions) and tells whether all are unchanged. The parts that write messages read
    /// it too, so nothing is written before the rows are locked in SID order; when it fails,
    /// or fewer messages were created or updated than planned, the final `SELECT`'s first
    /// column calls `batch_conflict()`, which fails the statement before the rest runs. Positions
    /// are numbered in the order of the batch's changes (`row_number` over the values taken,
    /// whatever order PostgreSQL takes them in), so one message's changes keep their order.
    ///
    /// The statement of a batch of distinct messages (`locked_batch`, one row per event in
    /// `$1`..`$13`, sorted by SID, `$17` each event's place in the batch) locks the rows of its
    /// messages in SID order (`locked`, which also sets the lock timeout, `$16`) and joins each
    /// event to its row (`j`): whether the message existed, its status before, its creation
    /// time, and whether the event advances it. Its first reader, the insert of new messages,
    /// sorts all of `j`, so every lock is held before anything is written. It answers with one
    /// array per column, in batch order; when a message it meant to create was created by
    /// another transaction first, its first column calls `batch_conflict()`.
    pub(super) fn new(sql: &Statements, gaps: &Gaps) -> Self {
        let p = sql.prefix.as_str();
        let lock = &gaps.take;
        let channel = format!("{p}feed");
        // A message created not final enters the pending list: both statements. One that
        // becomes final leaves it only when the pending read passes it (module documentation).
        let pending_in = format!(
            "pend_ins AS (INSERT INTO {p}pending (sid, created_at) \
             SELECT sid, created_at FROM ins WHERE status_rank < {FINAL_RANK} \
             ON CONFLICT (sid) DO NOTHING RETURNING 1),"
        );
        Self {
            read_rows: format!(
                "SELECT sid, status, error_code, error_message, account_sid, to_addr, from_addr, \
                 messaging_service_sid, \
                 (EXTRACT(EPOCH FROM created_at) * 1000000)::int8 AS created_us, \
                 xmin::text::int8 AS version \
                 FROM {p}messages WHERE sid = ANY($1::text[])"
            ),
            batch: format!(
                "WITH gate AS ( \
                   SELECT count(*) = cardinality($35::text[]) AS ok \
                   FROM (SELECT set_config('lock_timeout', $37, true) AS t) AS cfg, \
                   LATERAL (SELECT m.sid, m.xmin::text::int8 AS version FROM {p}messages AS m \
                     WHERE m.sid = ANY($35::text[]) AND cfg.t IS NOT NULL \
                     ORDER BY m.sid FOR UPDATE OF m) AS l \
                   JOIN unnest($35::text[], $36::int8[]) AS e(sid, version) \
                     ON e.sid = l.sid AND e.version = l.version), \
                 ins AS ( \
                   INSERT INTO {p}messages ({MESSAGE_COLUMNS}) \
                   SELECT u.sid, u.account_sid, u.to_addr, u.from_addr, u.service, u.status, \
                     u.rank, u.error_code, u.error_message, FALSE, u.created_at, $33 \
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                     $6::text[], $7::int4[], $8::int8[], $9::text[], $10::timestamptz[]) \
                     WITH ORDINALITY AS u(sid, account_sid, to_addr, from_addr, service, status, \
                     rank, error_code, error_message, created_at, ord) \
                   WHERE (SELECT ok FROM gate) \
                   ORDER BY u.ord \
                   ON CONFLICT (sid) DO NOTHING RETURNING sid, created_at, status_rank), \
                 {pending_in} \
                 upd AS ( \
                   UPDATE {p}messages AS m SET status = u.status, status_rank = u.rank, \
                     error_code = u.error_code, error_message = u.error_message, \
                     account_sid = u.account_sid, to_addr = u.to_addr, from_addr = u.from_addr, \
                     messaging_service_sid = u.service, updated_at = $33 \
                   FROM unnest($11::text[], $12::text[], $13::int4[], $14::int8[], $15::text[], \
                     $16::text[], $17::text[], $18::text[], $19::text[]) \
                     AS u(sid, status, rank, error_code, error_message, account_sid, to_addr, \
                     from_addr, service) \
                   WHERE m.sid = u.sid AND (SELECT ok FROM gate) RETURNING m.sid), \
                 ev AS ( \
                   INSERT INTO {p}events (message_sid, status, error_code, received_at, source, \
                     idempotency_token, raw) \
                   SELECT u.sid, u.status, u.error_code, u.received_at, u.source, u.token, u.raw \
                   FROM unnest($20::text[], $21::text[], $22::int8[], $23::timestamptz[], \
                     $24::text[], $25::text[], $26::text[]) WITH ORDINALITY \
                     AS u(sid, status, error_code, received_at, source, token, raw, ord) \
                   ORDER BY u.ord \
                   ON CONFLICT (message_sid, status) DO NOTHING RETURNING message_sid, status), \
                 lk AS (SELECT {lock} AS l WHERE $32 > 0 AND (SELECT ok FROM gate)), \
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
                 SELECT CASE WHEN (SELECT ok FROM gate) \
                     AND (SELECT count(*) FROM ins) = cardinality($1::text[]) \
                     AND (SELECT count(*) FROM upd) = cardinality($11::text[]) THEN 0 \
                     ELSE {p}batch_conflict() END AS checked, \
                   (SELECT count(*) FROM pend_ins) AS pended, \
                   ARRAY(SELECT message_sid FROM ev ORDER BY message_sid, status) AS kept_sids, \
                   ARRAY(SELECT status FROM ev ORDER BY message_sid, status) AS kept_statuses, \
                   (SELECT count(*) FROM feed) AS fed, (SELECT count(*) FROM wake) AS woke, \
                   (SELECT max(position) FROM feed) AS head"
            ),
            locked_batch: format!(
                "WITH locked AS ( \
                   SELECT l.* FROM (SELECT set_config('lock_timeout', $16, true) AS t) AS cfg, \
                   LATERAL (SELECT m.sid, m.status, m.status_rank, m.account_sid, m.to_addr, \
                     m.from_addr, m.messaging_service_sid, m.created_at FROM {p}messages AS m \
                     WHERE m.sid = ANY($1::text[]) AND cfg.t IS NOT NULL \
                     ORDER BY m.sid FOR UPDATE OF m) AS l), \
                 j AS ( \
                   SELECT e.*, l.sid IS NOT NULL AS existed, l.status AS previous, \
                     l.account_sid AS had_account, l.to_addr AS had_to, l.from_addr AS had_from, \
                     l.messaging_service_sid AS had_service, \
                     COALESCE(l.created_at, e.received_at) AS created_at, \
                     l.sid IS NULL OR e.rank > l.status_rank OR (e.rank = l.status_rank \
                       AND e.rank = 0 AND e.status COLLATE \"C\" > l.status COLLATE \"C\") \
                       AS advanced \
                   FROM unnest($1::text[], $2::text[], $3::int4[], $4::int8[], $5::text[], \
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[], \
                     $11::text[], $12::text[], $13::text[], $17::int4[]) \
                     AS e(sid, status, rank, error_code, error_message, account_sid, to_addr, \
                     from_addr, service, received_at, source, token, raw, idx) \
                   LEFT JOIN locked AS l ON l.sid = e.sid), \
                 ins AS ( \
                   INSERT INTO {p}messages ({MESSAGE_COLUMNS}) \
                   SELECT sid, account_sid, to_addr, from_addr, service, status, rank, \
                     error_code, error_message, FALSE, received_at, $14 \
                   FROM j WHERE NOT existed ORDER BY sid \
                   ON CONFLICT (sid) DO NOTHING RETURNING sid, created_at, status_rank), \
                 {pending_in} \
                 upd AS ( \
                   UPDATE {p}messages AS m SET \
                     status = CASE WHEN j.advanced THEN j.status ELSE m.status END, \
                     status_rank = CASE WHEN j.advanced THEN j.rank ELSE m.status_rank END, \
                     error_code = CASE WHEN j.advanced THEN j.error_code ELSE m.error_code END, \
                     error_message = CASE WHEN j.advanced THEN j.error_message \
                       ELSE m.error_message END, \
                     account_sid = COALESCE(m.account_sid, j.account_sid), \
                     to_addr = COALESCE(m.to_addr, j.to_addr), \
                     from_addr = COALESCE(m.from_addr, j.from_addr), \
                     messaging_service_sid = COALESCE(m.messaging_service_sid, j.service), \
                     updated_at = $14 \
                   FROM j WHERE m.sid = j.sid AND j.existed AND (j.advanced \
                     OR (j.had_account IS NULL AND j.account_sid IS NOT NULL) \
                     OR (j.had_to IS NULL AND j.to_addr IS NOT NULL) \
                     OR (j.had_from IS NULL AND j.from_addr IS NOT NULL) \
                     OR (j.had_service IS NULL AND j.service IS NOT NULL)) \
                   RETURNING m.sid), \
                 ev AS ( \
                   INSERT INTO {p}events (message_sid, status, error_code, received_at, source, \
                     idempotency_token, raw) \
                   SELECT sid, status, error_code, received_at, source, token, raw FROM j \
                   ORDER BY idx \
                   ON CONFLICT (message_sid, status) DO NOTHING RETURNING message_sid), \
                 ch AS (SELECT idx, sid, previous, status, error_code, source FROM j \
                   WHERE advanced), \
                 lk AS (SELECT {lock} AS l WHERE EXISTS (SELECT 1 FROM ch)), \
                 pos AS ( \
                   SELECT row_number() OVER (ORDER BY v) AS n, v AS position FROM ( \
                     SELECT nextval('{p}feed_position') AS v FROM lk, ch) AS taken), \
                 feed AS ( \
                   INSERT INTO {p}feed (position, sid, previous, current, error_code, source, at) \
                   SELECT pos.position, c.sid, c.previous, c.status, c.error_code, c.source, $14 \
                   FROM pos JOIN (SELECT row_number() OVER (ORDER BY idx) AS n, * FROM ch) AS c \
                     ON c.n = pos.n \
                   RETURNING position), \
                 wake AS (SELECT pg_notify($15, '') AS n FROM lk) \
                 SELECT CASE WHEN (SELECT count(*) FROM ins) \
                     = (SELECT count(*) FROM j WHERE NOT existed) THEN 0 \
                     ELSE {p}batch_conflict() END AS checked, \
                   ARRAY(SELECT idx FROM j ORDER BY idx) AS idx, \
                   ARRAY(SELECT previous FROM j ORDER BY idx) AS previous, \
                   ARRAY(SELECT advanced FROM j ORDER BY idx) AS advanced, \
                   ARRAY(SELECT (EXTRACT(EPOCH FROM created_at) * 1000000)::int8 FROM j \
                     ORDER BY idx) AS created_us, \
                   ARRAY(SELECT sid FROM j WHERE sid IN (SELECT message_sid FROM ev) \
                     ORDER BY idx) AS kept_sids, \
                   (SELECT count(*) FROM pend_ins) AS pended, \
                   (SELECT count(*) FROM wake) AS woke, \
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

/// A row of `read_rows`: its SID, and the columns an event can change with the creation time
/// (in microseconds, `created_us`).
fn read_row(row: &PgRow) -> Result<(String, RowState), sqlx::Error> {
    let created_at = micros_time(row.try_get("created_us")?, "created_us")?;
    let state = RowState {
        status: MessageStatus::from(row.try_get::<String, _>("status")?),
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
        account_sid: row.try_get("account_sid")?,
        to: row.try_get("to_addr")?,
        from: row.try_get("from_addr")?,
        service: row.try_get("messaging_service_sid")?,
        created_at,
    };
    Ok((row.try_get("sid")?, state))
}

/// What a batch did: the answers and the new feed head, if it wrote changes.
pub(super) type BatchOutcome = (Vec<Applied>, Option<u64>);

/// Writes `events` on `conn`, waiting `lock_timeout` (milliseconds, as text) at most for each
/// row lock: in one round trip when no two of them are for the same message, else in two (see
/// the module documentation). A batch of two round trips whose rows changed after it read them
/// fails with a serialization failure (SQLSTATE `40001`), nothing written.
pub(super) async fn apply_batch(
    w: &Writes,
    lock_timeout: &str,
    conn: &mut PgConnection,
    events: &[StatusEvent],
) -> Result<BatchOutcome, sqlx::Error> {
    // The events' places, in SID order.
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_unstable_by_key(|&i| events[i].sid.as_str());
    let sid = |i: usize| events[i].sid.as_str();
    if order.windows(2).all(|pair| sid(pair[0]) != sid(pair[1])) {
        apply_distinct(w, lock_timeout, conn, events, &order).await
    } else {
        apply_planned(w, lock_timeout, conn, events).await
    }
}

/// Writes `events` in two round trips: reads their rows, plans in memory, writes.
async fn apply_planned(
    w: &Writes,
    lock_timeout: &str,
    conn: &mut PgConnection,
    events: &[StatusEvent],
) -> Result<BatchOutcome, sqlx::Error> {
    let cleaned: Vec<Cow<'_, StatusEvent>> = events.iter().map(cleaned).collect();
    let refs: Vec<&StatusEvent> = cleaned.iter().map(|c| &**c).collect();
    let mut sids: Vec<String> = refs.iter().map(|e| e.sid.as_str().to_owned()).collect();
    sids.sort_unstable();
    sids.dedup();
    let now = floor_time(OffsetDateTime::now_utc());

    let rows = sqlx::query(AssertSqlSafe(w.read_rows.clone()))
        .bind(&sids)
        .fetch_all(&mut *conn)
        .await?;
    let mut existing = HashMap::with_capacity(rows.len());
    let mut versions: Vec<(String, i64)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let (sid, state) = read_row(row)?;
        versions.push((sid.clone(), row.try_get("version")?));
        existing.insert(sid, state);
    }
    versions.sort_unstable();
    let (read_sids, read_versions): (Vec<String>, Vec<i64>) = versions.into_iter().unzip();
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
        .bind(read_sids)
        .bind(read_versions)
        .bind(lock_timeout)
        // All of the answer, up to the server's "ready": the statement has then committed.
        .fetch_all(&mut *conn)
        .await?
        .pop()
        .ok_or(sqlx::Error::RowNotFound)?;
    let head: Option<i64> = row.try_get("head")?;
    let kept_sids: Vec<String> = row.try_get("kept_sids")?;
    let kept_statuses: Vec<String> = row.try_get("kept_statuses")?;
    let kept: HashSet<(String, String)> = kept_sids.into_iter().zip(kept_statuses).collect();
    let head = head.and_then(|h| u64::try_from(h).ok());
    Ok((plan.answers(&refs, &kept), head))
}

/// Writes `events`, whose SIDs are all different, in one round trip: the statement locks their
/// rows and applies the max-register rule itself (see [`Writes::new`]). `order` lists the
/// events' places in SID order.
async fn apply_distinct(
    w: &Writes,
    lock_timeout: &str,
    conn: &mut PgConnection,
    events: &[StatusEvent],
    order: &[usize],
) -> Result<BatchOutcome, sqlx::Error> {
    let cleaned: Vec<Cow<'_, StatusEvent>> = events.iter().map(cleaned).collect();
    let sorted: Vec<&StatusEvent> = order.iter().map(|&i| &*cleaned[i]).collect();
    let now = floor_time(OffsetDateTime::now_utc());
    let texts = |f: fn(&StatusEvent) -> Option<&str>| {
        sorted.iter().map(|e| f(e)).collect::<Vec<Option<&str>>>()
    };
    let row = sqlx::query(AssertSqlSafe(w.locked_batch.clone()))
        .bind(sorted.iter().map(|e| e.sid.as_str()).collect::<Vec<_>>())
        .bind(sorted.iter().map(|e| e.status.as_str()).collect::<Vec<_>>())
        .bind(sorted.iter().map(|e| rank(&e.status)).collect::<Vec<_>>())
        .bind(
            sorted
                .iter()
                .map(|e| e.error_code.map(i64::from))
                .collect::<Vec<_>>(),
        )
        .bind(texts(|e| e.error_message.as_deref()))
        .bind(texts(|e| e.account_sid.as_ref().map(|a| a.as_str())))
        .bind(texts(|e| e.to.as_deref()))
        .bind(texts(|e| e.from.as_deref()))
        .bind(texts(|e| {
            e.messaging_service_sid.as_ref().map(|s| s.as_str())
        }))
        .bind(
            sorted
                .iter()
                .map(|e| floor_time(e.received_at))
                .collect::<Vec<_>>(),
        )
        .bind(sorted.iter().map(|e| e.source.as_str()).collect::<Vec<_>>())
        .bind(texts(|e| e.idempotency_token.as_deref()))
        .bind(sorted.iter().map(|e| raw_json(&e.raw)).collect::<Vec<_>>())
        .bind(now)
        .bind(w.channel.as_str())
        .bind(lock_timeout)
        .bind(
            order
                .iter()
                .map(|&i| i32::try_from(i).unwrap_or(i32::MAX))
                .collect::<Vec<_>>(),
        )
        // All of the answer, up to the server's "ready": the statement has then committed.
        .fetch_all(&mut *conn)
        .await?
        .pop()
        .ok_or(sqlx::Error::RowNotFound)?;
    let idx: Vec<i32> = row.try_get("idx")?;
    let previous: Vec<Option<String>> = row.try_get("previous")?;
    let advanced: Vec<bool> = row.try_get("advanced")?;
    let created_us: Vec<i64> = row.try_get("created_us")?;
    let kept: HashSet<String> = row
        .try_get::<Vec<String>, _>("kept_sids")?
        .into_iter()
        .collect();
    let head: Option<i64> = row.try_get("head")?;
    let expected = (0..cleaned.len()).filter_map(|i| i32::try_from(i).ok());
    let n = cleaned.len();
    let lengths = [previous.len(), advanced.len(), created_us.len()];
    if !idx.iter().copied().eq(expected) || lengths.iter().any(|&l| l != n) {
        return Err(answer_error(
            "idx",
            "the batch's answer is for other events",
        ));
    }
    let mut applied = Vec::with_capacity(n);
    let answers = previous.into_iter().zip(advanced).zip(created_us);
    for (event, ((previous, advanced), created_us)) in cleaned.iter().zip(answers) {
        let previous = previous.map(MessageStatus::from);
        let outcome = transition(previous.as_ref(), &event.status);
        if outcome.changed() != advanced {
            return Err(answer_error(
                "advanced",
                "the database ranked a status differently from the crate",
            ));
        }
        let current = match &previous {
            Some(p) if !outcome.changed() => p.clone(),
            _ => event.status.clone(),
        };
        let mut a = Applied::new(outcome, previous, current, false)
            .created_at(micros_time(created_us, "created_us")?);
        a.new_event = kept.contains(event.sid.as_str());
        applied.push(a);
    }
    Ok((applied, head.and_then(|h| u64::try_from(h).ok())))
}

/// An answer of the database that does not fit the batch: the store reports it as corrupt.
fn answer_error(column: &str, message: &'static str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: message.into(),
    }
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
