//! `MemoryStore`: an in-process store for tests, demos and single-run tools.

use std::collections::{HashMap, hash_map};
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{ListQuery, Page, StatusStore, StoreError};
use crate::ids::MessageSid;
use crate::model::{Applied, HistoryEntry, MessageRecord, SentMessage, StatusEvent};
use crate::status::{Outcome, transition};

/// A store kept in memory; everything is lost when it is dropped.
///
/// One mutex guards all messages, so every operation is atomic.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<HashMap<MessageSid, Entry>>,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MessageSid, Entry>> {
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

#[async_trait]
impl StatusStore for MemoryStore {
    async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError> {
        let mut map = self.lock();
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
                Ok(Applied {
                    outcome,
                    previous: Some(previous),
                    current: r.status.clone(),
                    new_event: false,
                })
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
                Ok(Applied {
                    outcome: Outcome::Advanced,
                    previous: None,
                    current: sent.status.clone(),
                    new_event: false,
                })
            }
        }
    }

    async fn apply(&self, event: &StatusEvent) -> Result<Applied, StoreError> {
        let mut map = self.lock();
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
        Ok(Applied {
            outcome,
            previous,
            current: r.status.clone(),
            new_event,
        })
    }

    async fn get(&self, sid: &MessageSid) -> Result<Option<MessageRecord>, StoreError> {
        Ok(self.lock().get(sid).map(|e| e.record.clone()))
    }

    async fn history(&self, sid: &MessageSid) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut history = self
            .lock()
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
        let map = self.lock();
        let mut out: Vec<MessageRecord> = map
            .values()
            .map(|e| &e.record)
            .filter(|r| {
                !r.status.is_final() && r.created_at >= created_from && r.created_at < older_than
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
        let map = self.lock();
        let mut out: Vec<MessageRecord> = map
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
}
