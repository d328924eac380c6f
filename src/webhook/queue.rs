//! The webhook's write queue: group commit in front of the store.
//!
//! Callbacks wait in a bounded queue; a writer task takes everything waiting (up to the batch
//! size) and writes it with one [`StatusStore::apply_batch`]. An idle writer takes the first
//! event at once, so a lone callback waits for nobody; the callbacks that arrive while a batch
//! commits form the next one. Under load, the callers a batch answers send their next callbacks
//! together, and the first of them finds the writer idle: rather than pay a whole commit for a
//! few events, the writer waits briefly for the rest of that wave (see [`linger`]). Each caller
//! gets the answer of its own event once its batch has committed, or the batch's error; when
//! the store rejects the batch for a value it cannot hold ([`StoreError::Rejected`]), the writer
//! writes its events one at a time, so that only the caller of that value fails. A full queue
//! refuses at once, so memory stays bounded; a caller that gave up (deadline) leaves its event
//! in the queue, where the writer skips it.
//!
//! A store that does not group commits ([`StatusStore::group_commit`], the memory store) skips
//! all this: each caller applies its own event, a write being cheaper than the hand-off.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Duration, Instant};

use crate::model::{Applied, StatusEvent};
use crate::store::{StatusStore, StoreError};

/// The default number of events waiting at most.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;
/// The default number of events written in one batch at most.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// The smallest batch that counts as a wave worth waiting for (see [`linger`]).
const WAVE: usize = 8;

/// How long a writer waits for the rest of a wave: one tick of Tokio's timer, which counts in
/// milliseconds (a shorter timeout would still wait for the next tick).
const LINGER: Duration = Duration::from_millis(1);

/// The shortest write after which a writer waits for a wave: twice [`LINGER`], so that the wait
/// costs at most half of what the batch it saves would.
const LINGER_AFTER: Duration = Duration::from_millis(2);

/// Why an event was not written.
#[derive(Debug)]
pub(crate) enum QueueError {
    /// The queue is full: the store is not keeping up.
    Full,
    /// The deadline passed before the batch holding the event committed.
    Deadline,
    /// The batch failed in the store.
    Store(StoreError),
}

struct Job {
    event: StatusEvent,
    reply: oneshot::Sender<Result<Applied, StoreError>>,
}

/// The write queue of one webhook (shared by its clones).
pub(crate) struct WriteQueue {
    store: Arc<dyn StatusStore>,
    /// The store does not group commits ([`StatusStore::group_commit`]): each caller applies
    /// its own event, and the queue and its writers are never started.
    direct: bool,
    capacity: usize,
    max_batch: usize,
    writers: usize,
    /// The sending side, created with the writer task on first use (inside a runtime) and
    /// again if that task's runtime went away.
    tx: Mutex<Option<mpsc::Sender<Job>>>,
}

impl fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteQueue")
            .field("capacity", &self.capacity)
            .field("max_batch", &self.max_batch)
            .field("writers", &self.writers)
            .field("direct", &self.direct)
            .finish_non_exhaustive()
    }
}

impl WriteQueue {
    /// A queue of at most `capacity` events in front of `store`, writing at most `max_batch`
    /// events a batch, with `writers` batches in flight at most.
    pub(crate) fn new(
        store: Arc<dyn StatusStore>,
        capacity: usize,
        max_batch: usize,
        writers: usize,
    ) -> Self {
        Self {
            direct: !store.group_commit(),
            store,
            capacity: capacity.max(1),
            max_batch: max_batch.max(1),
            writers: writers.max(1),
            tx: Mutex::new(None),
        }
    }

    fn sender(&self) -> mpsc::Sender<Job> {
        let mut slot = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = slot.as_ref().filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(self.capacity);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..self.writers {
            tokio::spawn(writer(self.store.clone(), rx.clone(), self.max_batch));
        }
        *slot = Some(tx.clone());
        tx
    }

    /// Queues `event` and waits, until `deadline` at most, for the batch holding it to commit.
    pub(crate) async fn write(
        &self,
        event: StatusEvent,
        deadline: Instant,
    ) -> Result<Applied, QueueError> {
        if self.direct {
            return self.apply_now(&event, deadline).await;
        }
        let (reply, answer) = oneshot::channel();
        let mut job = Job { event, reply };
        // At most twice: a closed channel means the writer's runtime is gone; start another.
        for _ in 0..2 {
            match self.sender().try_send(job) {
                Ok(()) => {
                    return match tokio::time::timeout_at(deadline, answer).await {
                        Ok(Ok(result)) => result.map_err(QueueError::Store),
                        Ok(Err(_)) => Err(QueueError::Store(StoreError::Unavailable(
                            "the write queue stopped".into(),
                        ))),
                        Err(_) => Err(QueueError::Deadline),
                    };
                }
                Err(mpsc::error::TrySendError::Full(_)) => return Err(QueueError::Full),
                Err(mpsc::error::TrySendError::Closed(j)) => job = j,
            }
        }
        Err(QueueError::Store(StoreError::Unavailable(
            "the write queue cannot start".into(),
        )))
    }

    /// Applies `event` in the caller's task, for a store that does not group commits: the
    /// same deadline, answer to a panic and metrics as a batch, without the hand-off.
    async fn apply_now(
        &self,
        event: &StatusEvent,
        deadline: Instant,
    ) -> Result<Applied, QueueError> {
        let started = Instant::now();
        let write = AssertUnwindSafe(self.store.apply(event)).catch_unwind();
        let result = tokio::time::timeout_at(deadline, write).await;
        crate::metrics::store_write("apply", started.elapsed());
        match result {
            Ok(Ok(applied)) => applied.map_err(QueueError::Store),
            Ok(Err(_)) => {
                tracing::error!("the store panicked while writing a callback");
                let error = StoreError::Unavailable("the store panicked".into());
                Err(QueueError::Store(error))
            }
            Err(_) => Err(QueueError::Deadline),
        }
    }
}

/// A writer task: batches of what is waiting, one `apply_batch` each, until every sender
/// is gone. Several writers take turns at the queue; each writes its batch on its own.
async fn writer(
    store: Arc<dyn StatusStore>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    max_batch: usize,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    let mut last: Option<Written> = None;
    loop {
        let mut queue = rx.lock().await;
        if queue.recv_many(&mut jobs, max_batch).await == 0 {
            return;
        }
        if let Some((until, wave)) = last.and_then(|w| linger(&w, jobs.len())) {
            while jobs.len() < wave {
                let room = max_batch.saturating_sub(jobs.len());
                match tokio::time::timeout_at(until, queue.recv_many(&mut jobs, room)).await {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
        drop(queue);
        // Callers past their deadline were answered 503: their events wait for a retry.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let (events, replies): (Vec<StatusEvent>, Vec<_>) =
            jobs.drain(..).map(|j| (j.event, j.reply)).unzip();
        crate::metrics::batch_size(events.len());
        let started = Instant::now();
        let result = write(&*store, &events).await;
        let ended = Instant::now();
        let took = ended - started;
        last = Some(Written {
            size: events.len(),
            ended,
            took,
        });
        match result {
            Ok(applied) => {
                for (reply, a) in replies.into_iter().zip(applied) {
                    let _ = reply.send(Ok(a));
                }
            }
            Err(StoreError::Rejected(_)) if events.len() > 1 => {
                write_each(&*store, events, replies).await;
            }
            Err(e) => fail_all(replies, e),
        }
    }
}

/// Writes `events` with one [`StatusStore::apply_batch`]: one answer per event, or the error
/// of the whole batch (a store that panicked, or answered with the wrong count, fails it).
async fn write(
    store: &dyn StatusStore,
    events: &[StatusEvent],
) -> Result<Vec<Applied>, StoreError> {
    let started = Instant::now();
    let result = AssertUnwindSafe(store.apply_batch(events))
        .catch_unwind()
        .await;
    crate::metrics::store_write("apply_batch", started.elapsed());
    match result {
        Ok(Ok(applied)) if applied.len() == events.len() => Ok(applied),
        Ok(Ok(_)) => Err(StoreError::Corrupt(
            "the store answered a batch with the wrong count".into(),
        )),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            tracing::error!("the store panicked while writing a batch");
            Err(StoreError::Unavailable("the store panicked".into()))
        }
    }
}

/// Writes the events of a batch the store rejected ([`StoreError::Rejected`]: a value it cannot
/// hold, which fails the batch whole) one at a time, so that only the callback holding that
/// value fails and the others are stored. Callers that gave up are skipped.
async fn write_each(
    store: &dyn StatusStore,
    events: Vec<StatusEvent>,
    replies: Vec<oneshot::Sender<Result<Applied, StoreError>>>,
) {
    tracing::warn!(
        events = events.len(),
        "the store rejected a batch: writing its events one at a time"
    );
    for (event, reply) in events.into_iter().zip(replies) {
        if reply.is_closed() {
            continue;
        }
        let answer = write(store, std::slice::from_ref(&event))
            .await
            .map(|mut applied| applied.remove(0));
        let _ = reply.send(answer);
    }
}

/// A batch a writer wrote: how many events, when it ended, how long it took.
#[derive(Debug, Clone, Copy)]
struct Written {
    size: usize,
    ended: Instant,
    took: Duration,
}

/// Whether a writer that took `taken` events, after writing `last`, waits for more: until
/// when, and until how many it holds. Only when `last` was a wave (at least [`WAVE`] events)
/// that took [`LINGER_AFTER`] or more to write (a fast store gains nothing from waiting),
/// `taken` is less than half of it, and they came sooner after `last` than `last` took to write
/// (its callers answering at once, not a lone callback after a pause, which waits for nobody);
/// then for [`LINGER`] at most, or until it holds as many events as `last` had.
fn linger(last: &Written, taken: usize) -> Option<(Instant, usize)> {
    let wave = last.size >= WAVE && last.took >= LINGER_AFTER && taken < last.size / 2;
    let answered_at_once = last.ended.elapsed() < last.took;
    (wave && answered_at_once).then(|| (Instant::now() + LINGER, last.size))
}

/// Sends one batch's error to each of its callers.
fn fail_all(replies: Vec<oneshot::Sender<Result<Applied, StoreError>>>, error: StoreError) {
    let error = Arc::new(error);
    for reply in replies {
        let _ = reply.send(Err(share(&error)));
    }
}

/// A copy of a batch's error for one of its callers, of the same kind.
fn share(error: &Arc<StoreError>) -> StoreError {
    match &**error {
        StoreError::Corrupt(s) => StoreError::Corrupt(s.clone()),
        StoreError::Config(s) => StoreError::Config(s.clone()),
        StoreError::Unsupported(s) => StoreError::Unsupported(s),
        StoreError::Rejected(s) => StoreError::Rejected(s.clone()),
        _ => StoreError::Unavailable(Box::new(Shared(error.clone()))),
    }
}

/// A batch's error, shared by its callers.
#[derive(Debug)]
struct Shared(Arc<StoreError>);

impl fmt::Display for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::error::Error::source(&*self.0) {
            Some(source) => fmt::Display::fmt(source, f),
            None => fmt::Display::fmt(&self.0, f),
        }
    }
}

impl std::error::Error for Shared {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0).and_then(std::error::Error::source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MessageSid;
    use crate::model::EventSource;
    use crate::status::MessageStatus;
    use crate::store::MemoryStore;
    use std::time::Duration;

    fn event(n: u32) -> StatusEvent {
        let sid = MessageSid::new(format!("SM{n:032x}")).unwrap();
        StatusEvent::new(sid, MessageStatus::Sent, EventSource::Callback)
    }

    #[tokio::test]
    async fn each_caller_gets_its_own_answer() {
        let store = Arc::new(MemoryStore::new());
        let q = Arc::new(WriteQueue::new(store, 16, 4, 2));
        let deadline = Instant::now() + Duration::from_secs(5);
        let tasks: Vec<_> = (0..12)
            .map(|n| {
                let q = q.clone();
                tokio::spawn(async move { q.write(event(n % 6), deadline).await })
            })
            .collect();
        let mut created = 0;
        for t in tasks {
            let a = t.await.unwrap().unwrap();
            created += usize::from(a.previous.is_none());
        }
        assert_eq!(created, 6, "one creator per message");
    }

    #[test]
    fn shared_errors_keep_their_kind() {
        let e = Arc::new(StoreError::Unavailable("down".into()));
        let s = share(&e);
        assert!(s.is_unavailable());
        assert_eq!(std::error::Error::source(&s).unwrap().to_string(), "down");
        assert!(matches!(
            share(&Arc::new(StoreError::Corrupt("x".into()))),
            StoreError::Corrupt(_)
        ));
    }
}
