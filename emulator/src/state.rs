//! The emulator's shared state: stored messages, truth, callback log, in-flight work, settings,
//! the emulated clock, and the epoch a reset starts.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::auth::Credentials;
use super::callbacks::Target;
use super::chaos::Chaos;
use super::clock::Clock;
use super::inbound::InboundDelivery;
use super::model::StoredMessage;
use super::truth::{CallbackAttempt, Truth};
use twilio_delivery::ids::MessageSid;

/// Settings fixed at start.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) seed: u64,
    pub(crate) chaos: Chaos,
    pub(crate) max_messages: usize,
    pub(crate) max_log: usize,
    /// The most bytes each log (callback attempts, incoming-message deliveries) keeps.
    pub(crate) max_log_bytes: usize,
    /// Where callbacks go for messages created without `StatusCallback`.
    pub(crate) default_status_callback: Option<Target>,
    /// The Messaging Service SID shown on messages sent without one ("A unique default value is
    /// assigned if a Messaging Service is not used": the spec's `messaging_service_sid`).
    pub(crate) default_service_sid: String,
    /// The `XE…` SID of the emulated WhatsApp/RCS channel installation.
    pub(crate) channel_install_sid: String,
}

/// Everything the API handlers, lifecycles and callback senders share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) credentials: Credentials,
    pub(crate) settings: Settings,
    pub(crate) activity: Arc<Activity>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) clock: Clock,
    /// Bumped by every reset: work started in an older epoch stops.
    epoch: watch::Sender<u64>,
    inner: Mutex<Inner>,
}

/// The mutable part, behind one mutex never held across an `.await`.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) messages: BTreeMap<u64, StoredMessage>,
    pub(crate) index: HashMap<MessageSid, u64>,
    pub(crate) truth: BTreeMap<u64, (MessageSid, Truth)>,
    pub(crate) truth_index: HashMap<MessageSid, u64>,
    pub(crate) log: VecDeque<CallbackAttempt>,
    /// The bytes the entries of `log` hold.
    pub(crate) log_bytes: usize,
    /// Every incoming-message delivery attempt, in the order they finished.
    pub(crate) inbound_log: VecDeque<InboundDelivery>,
    /// The bytes the entries of `inbound_log` hold.
    pub(crate) inbound_log_bytes: usize,
    pub(crate) next_seq: u64,
    /// The messages whose lifecycle still runs, by sequence number: neither they nor their
    /// truth are evicted, also once a canceled one was deleted (its lifecycle still has the
    /// `canceled` callback to send).
    pub(crate) live: HashSet<u64>,
    /// The sequence number of the next incoming message (its SID's random stream).
    pub(crate) next_inbound: u64,
    /// The epoch the stored state belongs to (see [`Shared::reset`]).
    pub(crate) epoch: u64,
}

/// What an entry of a log holds, to bound the log by bytes.
pub(crate) trait Footprint {
    /// About how many bytes the entry takes: its own size and the text it owns.
    fn footprint(&self) -> usize;
}

/// Appends `entry` to `log` (whose entries hold `bytes` bytes), then drops the oldest entries
/// while there are more than `max` of them or they hold more than `max_bytes`; the newest
/// entry is always kept.
fn push_bounded<T: Footprint>(
    log: &mut VecDeque<T>,
    bytes: &mut usize,
    entry: T,
    max: usize,
    max_bytes: usize,
) {
    *bytes = bytes.saturating_add(entry.footprint());
    log.push_back(entry);
    while log.len() > 1 && (log.len() > max || *bytes > max_bytes) {
        if let Some(old) = log.pop_front() {
            *bytes = bytes.saturating_sub(old.footprint());
        }
    }
}

impl Inner {
    /// Stores a new message and its truth, evicting the oldest beyond `cap` among those whose
    /// lifecycle is over. A message in flight is never evicted (its lifecycle still updates it,
    /// and its truth is still to be reached); the cap on lifecycles in flight, reserved before
    /// the insert, leaves one to evict.
    pub(crate) fn insert(&mut self, message: StoredMessage, truth: Truth, cap: usize) {
        let seq = message.seq;
        let sid = message.sid.clone();
        self.index.insert(sid.clone(), seq);
        self.messages.insert(seq, message);
        self.truth_index.insert(sid.clone(), seq);
        self.truth.insert(seq, (sid, truth));
        self.live.insert(seq);
        while self.messages.len() > cap.max(1) {
            let Some(old) = self
                .messages
                .keys()
                .copied()
                .find(|s| !self.live.contains(s))
            else {
                break;
            };
            if let Some(old) = self.messages.remove(&old) {
                self.index.remove(&old.sid);
            }
        }
        while self.truth.len() > cap.max(1) {
            let Some(old) = self.truth.keys().copied().find(|s| !self.live.contains(s)) else {
                break;
            };
            if let Some((old, _)) = self.truth.remove(&old) {
                self.truth_index.remove(&old);
            }
        }
    }

    /// The stored message with this SID.
    pub(crate) fn message_mut(&mut self, sid: &MessageSid) -> Option<&mut StoredMessage> {
        let seq = self.index.get(sid)?;
        self.messages.get_mut(seq)
    }

    /// The stored message with this sequence number.
    pub(crate) fn by_seq_mut(&mut self, seq: u64) -> Option<&mut StoredMessage> {
        self.messages.get_mut(&seq)
    }

    /// Removes a message (its truth stays).
    pub(crate) fn remove(&mut self, sid: &MessageSid) -> Option<StoredMessage> {
        let seq = self.index.remove(sid)?;
        self.messages.remove(&seq)
    }

    /// Replaces the truth of a message.
    pub(crate) fn set_truth(&mut self, sid: &MessageSid, truth: Truth) {
        if let Some(seq) = self.truth_index.get(sid)
            && let Some(entry) = self.truth.get_mut(seq)
        {
            entry.1 = truth;
        }
    }
}

impl Shared {
    /// Builds the shared state.
    pub(crate) fn new(
        credentials: Credentials,
        settings: Settings,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            credentials,
            settings,
            activity: Arc::new(Activity::default()),
            shutdown,
            clock: Clock::default(),
            epoch: watch::Sender::new(0),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Forgets every message, truth and callback attempt, stops the lifecycles and callbacks in
    /// flight, rewinds the clock and the SID sequence: the next request starts a fresh run of
    /// the same seed.
    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        let epoch = inner.epoch.wrapping_add(1);
        *inner = Inner {
            epoch,
            ..Inner::default()
        };
        self.clock.reset();
        drop(inner);
        self.epoch.send_replace(epoch);
    }

    /// Resolves once the emulator shuts down or is reset out of `epoch`.
    pub(crate) async fn halted(&self, epoch: u64) {
        let mut shutdown = self.shutdown.clone();
        let mut current = self.epoch.subscribe();
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => {}
            _ = current.wait_for(|e| *e != epoch) => {}
        }
    }

    /// Locks the mutable state (a poisoned lock is still usable: every update is complete).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a callback attempt made in `epoch` to the log, dropping the oldest beyond the
    /// caps on entries and bytes (an attempt from before a reset is not logged).
    pub(crate) fn record(&self, epoch: u64, attempt: CallbackAttempt) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.epoch != epoch {
            return;
        }
        push_bounded(
            &mut inner.log,
            &mut inner.log_bytes,
            attempt,
            self.settings.max_log,
            self.settings.max_log_bytes,
        );
    }
}

impl Shared {
    /// Appends an incoming-message delivery attempt made in `epoch` to its log, dropping the
    /// oldest beyond the callback log's caps on entries and bytes (an attempt from before a
    /// reset is not logged).
    pub(crate) fn record_inbound(&self, epoch: u64, delivery: InboundDelivery) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.epoch != epoch {
            return;
        }
        push_bounded(
            &mut inner.inbound_log,
            &mut inner.inbound_log_bytes,
            delivery,
            self.settings.max_log,
            self.settings.max_log_bytes,
        );
    }
}

/// Counts work in flight (lifecycles, callback senders) so tests can wait for quiet.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    busy: AtomicUsize,
    lifecycles: AtomicUsize,
    idle: Notify,
}

/// Marks one piece of work in flight until dropped.
#[derive(Debug)]
pub(crate) struct Busy {
    activity: Arc<Activity>,
    lifecycle: bool,
}

impl Activity {
    /// Starts a piece of work.
    pub(crate) fn enter(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy {
            activity: Arc::clone(self),
            lifecycle: false,
        }
    }

    /// Starts a message lifecycle (also counted against the in-flight cap).
    pub(crate) fn enter_lifecycle(self: &Arc<Self>) -> Busy {
        self.lifecycles.fetch_add(1, Ordering::SeqCst);
        let mut busy = self.enter();
        busy.lifecycle = true;
        busy
    }

    /// Pieces of work in flight.
    pub(crate) fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// Message lifecycles in flight.
    pub(crate) fn lifecycles(&self) -> usize {
        self.lifecycles.load(Ordering::SeqCst)
    }

    /// Waits until nothing is in flight; `Err(busy)` if `timeout` elapses first.
    pub(crate) async fn wait_idle(&self, timeout: Duration) -> Result<(), usize> {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.busy() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| self.busy())
    }
}

impl Drop for Busy {
    /// Ends the piece of work and wakes waiters when nothing is left.
    fn drop(&mut self) {
        if self.lifecycle {
            self.activity.lifecycles.fetch_sub(1, Ordering::SeqCst);
        }
        if self.activity.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.activity.idle.notify_waiters();
        }
    }
}

/// SplitMix64: spreads a seed so that nearby inputs give unrelated streams.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The random stream of the `seq`-th message of an emulator started with `seed`: independent of
/// timing and of other messages, so a seed reproduces each message's fate.
pub(crate) fn message_rng(seed: u64, seq: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(mix(seed ^ mix(seq.wrapping_add(1))))
}

/// The random stream of the `seq`-th incoming message: a stream of its own, so delivering
/// inbound messages never changes the SIDs or fates of sent ones.
pub(crate) fn inbound_rng(seed: u64, seq: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(mix(mix(seed ^ 0x1B0B_0D5E) ^ mix(seq.wrapping_add(1))))
}

/// 32 lowercase hexadecimal digits.
pub(crate) fn hex32(rng: &mut fastrand::Rng) -> String {
    format!("{:016x}{:016x}", rng.u64(..), rng.u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Footprint for Vec<u8> {
        fn footprint(&self) -> usize {
            self.len()
        }
    }

    #[test]
    fn logs_are_bounded_by_entries_and_bytes_and_keep_the_newest() {
        let (mut log, mut bytes) = (VecDeque::new(), 0);
        for n in [10, 10, 10] {
            push_bounded(&mut log, &mut bytes, vec![0; n], 2, 100);
        }
        assert_eq!((log.len(), bytes), (2, 20), "two entries at most");
        push_bounded(&mut log, &mut bytes, vec![0; 95], 2, 100);
        assert_eq!((log.len(), bytes), (1, 95), "100 bytes at most");
        push_bounded(&mut log, &mut bytes, vec![0; 500], 2, 100);
        assert_eq!((log.len(), bytes), (1, 500), "the newest is kept");
    }
}
