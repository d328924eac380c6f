//! The plan of a batch write for the SQL stores: what one-by-one application of the events, in
//! order, would do to the rows read (and locked) at the start of the transaction, computed in
//! memory so that the database sees a few set-based statements.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;

use crate::model::{Applied, StatusEvent};
use crate::notify::StatusChange;
use crate::status::{MessageStatus, transition};

/// The columns of a message row that an event can change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowState {
    pub(crate) status: MessageStatus,
    pub(crate) error_code: Option<i64>,
    pub(crate) error_message: Option<String>,
    pub(crate) account_sid: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) service: Option<String>,
    /// The creation time: the stored one for an existing row, the time to store for a new one.
    pub(crate) created_at: OffsetDateTime,
}

/// A row to insert or update, with its SID.
#[derive(Debug)]
pub(crate) struct RowWrite {
    pub(crate) sid: String,
    pub(crate) row: RowState,
    /// For an update: whether an event filled in a detail (account, recipient, sender,
    /// service) that the row lacked. Most updates change only the status columns, which a
    /// store can write without touching the indexes on the details (SQLite does; PostgreSQL
    /// writes every column of an updated row).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) details: bool,
}

/// What a batch does.
#[derive(Debug)]
pub(crate) struct Plan {
    /// One answer per event; `new_event` is settled by [`Plan::answers`].
    applied: Vec<Applied>,
    /// Rows that did not exist, sorted by SID.
    pub(crate) inserts: Vec<RowWrite>,
    /// Existing rows that change, sorted by SID.
    pub(crate) updates: Vec<RowWrite>,
    /// The index of the first event of each distinct (SID, status), in batch order: the
    /// history rows to insert (the database keeps those it has not seen).
    pub(crate) history: Vec<usize>,
    /// The real changes, in batch order: the feed entries to write.
    pub(crate) changes: Vec<StatusChange>,
}

fn fill(slot: &mut Option<String>, value: Option<&str>) -> bool {
    let fills = slot.is_none() && value.is_some();
    if fills {
        *slot = value.map(str::to_owned);
    }
    fills
}

impl Plan {
    /// Plans `events` over `existing`, the rows of their SIDs that exist (keyed by SID).
    pub(crate) fn new(
        events: &[&StatusEvent],
        mut existing: HashMap<String, RowState>,
        now: OffsetDateTime,
    ) -> Self {
        let mut created: HashMap<String, RowState> = HashMap::new();
        let mut touched: HashSet<String> = HashSet::new();
        let mut filled: HashSet<String> = HashSet::new();
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let mut applied = Vec::with_capacity(events.len());
        let mut history = Vec::new();
        let mut changes = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let sid = event.sid.as_str();
            if seen.insert((sid, event.status.as_str())) {
                history.push(i);
            }
            let (row, previous) = match existing.get_mut(sid) {
                Some(row) => {
                    let previous = row.status.clone();
                    (row, Some(previous))
                }
                None => match created.get_mut(sid) {
                    Some(row) => {
                        let previous = row.status.clone();
                        (row, Some(previous))
                    }
                    None => {
                        let row = RowState {
                            status: event.status.clone(),
                            error_code: event.error_code.map(i64::from),
                            error_message: event.error_message.clone(),
                            account_sid: None,
                            to: None,
                            from: None,
                            service: None,
                            created_at: event.received_at,
                        };
                        (created.entry(sid.to_owned()).or_insert(row), None)
                    }
                },
            };
            let outcome = transition(previous.as_ref(), &event.status);
            let changed = outcome.changed();
            if changed {
                row.status = event.status.clone();
                row.error_code = event.error_code.map(i64::from);
                row.error_message.clone_from(&event.error_message);
            }
            let details = fill(
                &mut row.account_sid,
                event.account_sid.as_ref().map(|a| a.as_str()),
            ) | fill(&mut row.to, event.to.as_deref())
                | fill(&mut row.from, event.from.as_deref())
                | fill(
                    &mut row.service,
                    event.messaging_service_sid.as_ref().map(|s| s.as_str()),
                );
            if (changed || details) && previous.is_some() && !touched.contains(sid) {
                touched.insert(sid.to_owned());
            }
            if details && previous.is_some() && !filled.contains(sid) {
                filled.insert(sid.to_owned());
            }
            let a = Applied::new(outcome, previous, row.status.clone(), false)
                .created_at(row.created_at);
            if let Some(mut change) =
                StatusChange::from_applied(&event.sid, &a, event.error_code, event.source)
            {
                change.at = now;
                changes.push(change);
            }
            applied.push(a);
        }
        let mut inserts: Vec<RowWrite> = created
            .into_iter()
            .map(|(sid, row)| RowWrite {
                sid,
                row,
                details: true,
            })
            .collect();
        inserts.sort_by(|a, b| a.sid.cmp(&b.sid));
        let mut updates: Vec<RowWrite> = existing
            .into_iter()
            .filter(|(sid, _)| touched.contains(sid))
            .map(|(sid, row)| RowWrite {
                details: filled.contains(&sid),
                sid,
                row,
            })
            .collect();
        updates.sort_by(|a, b| a.sid.cmp(&b.sid));
        Self {
            applied,
            inserts,
            updates,
            history,
            changes,
        }
    }

    /// The answers, given the (SID, status) pairs the history insert kept: an event is new
    /// when it is the first of its pair in the batch and the database did not have the pair.
    pub(crate) fn answers(
        mut self,
        events: &[&StatusEvent],
        kept: &HashSet<(String, String)>,
    ) -> Vec<Applied> {
        for &i in &self.history {
            let e = events[i];
            self.applied[i].new_event =
                kept.contains(&(e.sid.as_str().to_owned(), e.status.as_str().to_owned()));
        }
        self.applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MessageSid;
    use crate::model::EventSource;
    use crate::status::Outcome;

    fn ev(n: u32, status: MessageStatus) -> StatusEvent {
        let sid = MessageSid::new(format!("SM{n:032x}")).unwrap();
        StatusEvent::new(sid, status, EventSource::Callback)
    }

    #[test]
    fn repeated_sids_chain_within_a_batch() {
        let events = [
            ev(2, MessageStatus::Sent),
            ev(1, MessageStatus::Delivered),
            ev(2, MessageStatus::Delivered),
            ev(2, MessageStatus::Sent),
            ev(1, MessageStatus::Delivered),
        ];
        let refs: Vec<&StatusEvent> = events.iter().collect();
        let plan = Plan::new(&refs, HashMap::new(), OffsetDateTime::now_utc());
        assert_eq!(plan.inserts.len(), 2);
        assert!(plan.updates.is_empty());
        assert_eq!(plan.history, vec![0, 1, 2]);
        assert_eq!(plan.changes.len(), 3);
        let kept: HashSet<(String, String)> = events[..3]
            .iter()
            .map(|e| (e.sid.to_string(), e.status.to_string()))
            .collect();
        let a = plan.answers(&refs, &kept);
        assert_eq!(a[0].previous, None);
        assert_eq!(a[2].previous, Some(MessageStatus::Sent));
        assert_eq!(a[3].outcome, Outcome::Stale);
        assert_eq!(a[4].outcome, Outcome::Duplicate);
        assert!(a[0].new_event && a[2].new_event);
        assert!(!a[3].new_event && !a[4].new_event);
    }
}
