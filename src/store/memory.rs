//! `MemoryStore`: an in-process store for tests, demos and single-run tools.

use std::collections::{BTreeMap, HashMap, hash_map};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{ListQuery, Page, StatusStore, StoreError};
use crate::feed::{DeadLetter, FeedEntry, FeedStore, LocalWake};
use crate::ids::MessageSid;
use crate::model::{Applied, EventSource, HistoryEntry, MessageRecord, SentMessage, StatusEvent};
use crate::notify::StatusChange;
use crate::status::{Outcome, transition};

/// A store kept in memory; everything is lost when it is dropped.
///
/// One mutex guards all messages and the change feed, so every operation is atomic and feed
/// positions follow the order of writes. The feed is kept whole (it grows with every change):
/// this store is for tests, demos and short-lived tools.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<State>,
    wake: LocalWake,
    opt_outs: crate::optout::MemoryOptOuts,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            inner: Mutex::new(State::default()),
            wake: LocalWake::new(),
            opt_outs: crate::optout::MemoryOptOuts::new(),
        }
    }
}

/// Everything the store holds, behind its one lock.
#[derive(Debug, Default)]
struct State {
    messages: HashMap<MessageSid, Entry>,
    feed: Vec<FeedEntry>,
    cursors: HashMap<String, u64>,
    dead: BTreeMap<(String, u64), DeadLetter>,
}

impl State {
    /// Appends a change to the feed if `applied` is one; the new head position.
    fn record_change(
        &mut self,
        sid: &MessageSid,
        applied: &Applied,
        error_code: Option<u32>,
        source: EventSource,
    ) -> Option<u64> {
        let change = StatusChange::from_applied(sid, applied, error_code, source)?;
        let position = self.feed.len() as u64 + 1;
        self.feed.push(FeedEntry::new(position, change));
        Some(position)
    }
}

#[derive(Debug)]
struct Entry {
    record: MessageRecord,
    history: Vec<HistoryEntry>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave an entry half-written (every mutation is
        // a few field assignments), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Fills an empty `slot` from `value`; whether that changed it.
fn fill<T: Clone>(slot: &mut Option<T>, value: &Option<T>) -> bool {
    let fills = slot.is_none() && value.is_some();
    if fills {
        slot.clone_from(value);
    }
    fills
}

/// `record_sent` under the store's lock.
fn record_sent(map: &mut HashMap<MessageSid, Entry>, sent: &SentMessage) -> Applied {
    let now = OffsetDateTime::now_utc();
    match map.get_mut(&sent.sid) {
        Some(entry) => {
            let r = &mut entry.record;
            let previous = r.status.clone();
            let outcome = transition(Some(&r.status), &sent.status);
            if outcome.changed() {
                r.status = sent.status.clone();
                r.error_code = None;
                r.error_message = None;
            }
            fill(&mut r.account_sid, &sent.account_sid);
            r.to = Some(sent.to.clone());
            if sent.from.is_some() {
                r.from.clone_from(&sent.from);
            }
            fill(&mut r.messaging_service_sid, &sent.messaging_service_sid);
            fill(&mut r.body, &sent.body);
            fill(&mut r.num_segments, &sent.num_segments);
            r.sent_recorded = true;
            r.created_at = sent.created_at;
            r.updated_at = now;
            Applied {
                outcome,
                previous: Some(previous),
                current: r.status.clone(),
                new_event: false,
                created_at: Some(r.created_at),
            }
        }
        None => {
            let record = MessageRecord {
                sid: sent.sid.clone(),
                account_sid: sent.account_sid.clone(),
                to: Some(sent.to.clone()),
                from: sent.from.clone(),
                messaging_service_sid: sent.messaging_service_sid.clone(),
                body: sent.body.clone(),
                num_segments: sent.num_segments,
                status: sent.status.clone(),
                error_code: None,
                error_message: None,
                sent_recorded: true,
                created_at: sent.created_at,
                updated_at: now,
            };
            map.insert(
                sent.sid.clone(),
                Entry {
                    record,
                    history: Vec::new(),
                },
            );
            Applied {
                outcome: Outcome::Advanced,
                previous: None,
                current: sent.status.clone(),
                new_event: false,
                created_at: Some(sent.created_at),
            }
        }
    }
}

/// One event under the store's lock.
fn apply(map: &mut HashMap<MessageSid, Entry>, event: &StatusEvent) -> Applied {
    let now = OffsetDateTime::now_utc();
    let (entry, previous) = match map.entry(event.sid.clone()) {
        hash_map::Entry::Occupied(o) => {
            let previous = o.get().record.status.clone();
            (o.into_mut(), Some(previous))
        }
        hash_map::Entry::Vacant(v) => {
            // Status, error and update time are set below: a new record always advances.
            let record =
                MessageRecord::new(event.sid.clone(), event.status.clone(), event.received_at);
            (
                v.insert(Entry {
                    record,
                    history: Vec::new(),
                }),
                None,
            )
        }
    };
    let new_event = !entry.history.iter().any(|h| h.status == event.status);
    if new_event {
        entry.history.push(HistoryEntry {
            status: event.status.clone(),
            error_code: event.error_code,
            received_at: event.received_at,
            source: event.source,
            idempotency_token: event.idempotency_token.clone(),
            raw: event.raw.clone(),
        });
    }
    let r = &mut entry.record;
    let outcome = transition(previous.as_ref(), &event.status);
    if outcome.changed() {
        r.status = event.status.clone();
        r.error_code = event.error_code;
        r.error_message.clone_from(&event.error_message);
        r.updated_at = now;
    }
    // Fill what the record lacks; `|` (not `||`) so that every field is filled.
    let filled = fill(&mut r.account_sid, &event.account_sid)
        | fill(&mut r.to, &event.to)
        | fill(&mut r.from, &event.from)
        | fill(&mut r.messaging_service_sid, &event.messaging_service_sid);
    if filled {
        r.updated_at = now;
    }
    Applied {
        outcome,
        previous,
        current: r.status.clone(),
        new_event,
        created_at: Some(r.created_at),
    }
}

#[async_trait]
impl StatusStore for MemoryStore {
    async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError> {
        let mut state = self.lock();
        let applied = record_sent(&mut state.messages, sent);
        let head = state.record_change(&sent.sid, &applied, None, EventSource::Send);
        drop(state);
        if let Some(head) = head {
            self.wake.committed(head);
        }
        Ok(applied)
    }

    async fn apply(&self, event: &StatusEvent) -> Result<Applied, StoreError> {
        self.apply_batch(std::slice::from_ref(event))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("a batch of one gave no answer".into()))
    }

    async fn apply_batch(&self, events: &[StatusEvent]) -> Result<Vec<Applied>, StoreError> {
        let mut state = self.lock();
        let mut head = None;
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let applied = apply(&mut state.messages, event);
            head = state
                .record_change(&event.sid, &applied, event.error_code, event.source)
                .or(head);
            out.push(applied);
        }
        drop(state);
        if let Some(head) = head {
            self.wake.committed(head);
        }
        Ok(out)
    }

    /// `false`: a write here is a lock and a few map operations, cheaper than queueing it.
    fn group_commit(&self) -> bool {
        false
    }

    async fn get(&self, sid: &MessageSid) -> Result<Option<MessageRecord>, StoreError> {
        Ok(self.lock().messages.get(sid).map(|e| e.record.clone()))
    }

    async fn history(&self, sid: &MessageSid) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut history = self
            .lock()
            .messages
            .get(sid)
            .map(|e| e.history.clone())
            .unwrap_or_default();
        // Oldest first by the time received; a stable sort keeps arrival order for equal times,
        // as the SQL stores do with their insertion ids.
        history.sort_by_key(|h| h.received_at);
        Ok(history)
    }

    async fn pending_since(
        &self,
        created_from: OffsetDateTime,
        older_than: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.pending_page(created_from, older_than, None, limit)
            .await
    }

    async fn pending_page(
        &self,
        created_from: OffsetDateTime,
        older_than: OffsetDateTime,
        after: Option<(OffsetDateTime, &MessageSid)>,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let state = self.lock();
        let mut out: Vec<MessageRecord> = state
            .messages
            .values()
            .map(|e| &e.record)
            .filter(|r| {
                !r.status.is_final()
                    && r.created_at >= created_from
                    && r.created_at < older_than
                    && after.is_none_or(|key| (r.created_at, &r.sid) > key)
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.sid.cmp(&b.sid))
        });
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let state = self.lock();
        let mut out: Vec<MessageRecord> = state
            .messages
            .values()
            .map(|e| &e.record)
            .filter(|r| query.to.as_ref().is_none_or(|to| r.to.as_ref() == Some(to)))
            .filter(|r| query.statuses.is_empty() || query.statuses.contains(&r.status))
            .filter(|r| query.created_from.is_none_or(|t| r.created_at >= t))
            .filter(|r| query.created_until.is_none_or(|t| r.created_at < t))
            .filter(|r| {
                query
                    .after
                    .as_ref()
                    .is_none_or(|c| (r.created_at, &r.sid) < (c.created_at, &c.sid))
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| (b.created_at, &b.sid).cmp(&(a.created_at, &a.sid)));
        Ok(Page::from_overfetch(out, query.page_size() as usize))
    }

    fn feed(&self) -> Option<&dyn FeedStore> {
        Some(self)
    }
}

#[async_trait]
impl FeedStore for MemoryStore {
    async fn changes_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        let state = self.lock();
        let start = usize::try_from(after).unwrap_or(usize::MAX);
        Ok(state
            .feed
            .iter()
            .skip(start)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.lock().feed.len() as u64)
    }

    async fn cursor(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.lock().cursors.get(consumer).copied())
    }

    async fn advance(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        let mut state = self.lock();
        let at = state.cursors.entry(consumer.to_owned()).or_insert(position);
        *at = (*at).max(position);
        Ok(())
    }

    async fn park(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let mut state = self.lock();
        let position = letter.entry.position;
        state
            .dead
            .insert((letter.consumer.clone(), position), letter.clone());
        let at = state
            .cursors
            .entry(letter.consumer.clone())
            .or_insert(position);
        *at = (*at).max(position);
        Ok(())
    }

    async fn dead_letters(
        &self,
        consumer: &str,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let state = self.lock();
        Ok(state
            .dead
            .range((consumer.to_owned(), 0)..=(consumer.to_owned(), u64::MAX))
            .map(|(_, l)| l.clone())
            .take(limit as usize)
            .collect())
    }

    async fn dead_letter(
        &self,
        consumer: &str,
        position: u64,
    ) -> Result<Option<DeadLetter>, StoreError> {
        let state = self.lock();
        Ok(state.dead.get(&(consumer.to_owned(), position)).cloned())
    }

    async fn remove_dead_letter(&self, consumer: &str, position: u64) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .dead
            .remove(&(consumer.to_owned(), position))
            .is_some())
    }

    async fn wait_for_change(&self, after: u64, timeout: Duration) {
        self.wake.wait(after, timeout).await;
    }
}

#[async_trait]
impl crate::optout::OptOutList for MemoryStore {
    async fn is_opted_out(&self, number: &str) -> Result<bool, crate::optout::OptOutError> {
        self.opt_outs.is_opted_out(number).await
    }

    async fn opt_out(
        &self,
        number: &str,
        source: crate::optout::OptOutSource,
    ) -> Result<bool, crate::optout::OptOutError> {
        self.opt_outs.opt_out(number, source).await
    }

    async fn opt_in(&self, number: &str) -> Result<bool, crate::optout::OptOutError> {
        self.opt_outs.opt_in(number).await
    }

    async fn opt_outs(
        &self,
    ) -> Result<Vec<crate::optout::Suppression>, crate::optout::OptOutError> {
        self.opt_outs.opt_outs().await
    }

    async fn apply_inbound(
        &self,
        message: &crate::inbound::InboundMessage,
    ) -> Result<Option<crate::inbound::OptOut>, crate::optout::OptOutError> {
        self.opt_outs.apply_inbound(message).await
    }
}
