//! The emulator's shared state: stored messages, truth, callback log, in-flight work, settings.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::auth::Credentials;
use super::chaos::Chaos;
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
    pub(crate) default_status_callback: Option<String>,
}

/// Everything the API handlers, lifecycles and callback senders share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) credentials: Credentials,
    pub(crate) settings: Settings,
    pub(crate) activity: Arc<Activity>,
    pub(crate) shutdown: watch::Receiver<bool>,
    inner: Mutex<Inner>,
    clients: Mutex<HashMap<Duration, reqwest::Client>>,
}

/// The mutable part, behind one mutex never held across an `.await`.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) messages: BTreeMap<u64, StoredMessage>,
    pub(crate) index: HashMap<MessageSid, u64>,
    pub(crate) truth: BTreeMap<u64, (MessageSid, Truth)>,
    pub(crate) truth_index: HashMap<MessageSid, u64>,
    pub(crate) log: VecDeque<CallbackAttempt>,
    pub(crate) next_seq: u64,
}

impl Inner {
    /// Stores a new message and its truth, evicting the oldest beyond `cap`.
    pub(crate) fn insert(&mut self, message: StoredMessage, truth: Truth, cap: usize) {
        let seq = message.seq;
        let sid = message.sid.clone();
        self.index.insert(sid.clone(), seq);
        self.messages.insert(seq, message);
        self.truth_index.insert(sid.clone(), seq);
        self.truth.insert(seq, (sid, truth));
        while self.messages.len() > cap.max(1) {
            if let Some((_, old)) = self.messages.pop_first() {
                self.index.remove(&old.sid);
            }
        }
        while self.truth.len() > cap.max(1) {
            if let Some((_, (old, _))) = self.truth.pop_first() {
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
            inner: Mutex::new(Inner::default()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Locks the mutable state (a poisoned lock is still usable: every update is complete).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a callback attempt to the log, dropping the oldest beyond the cap.
    pub(crate) fn record(&self, attempt: CallbackAttempt) {
        let mut inner = self.lock();
        inner.log.push_back(attempt);
        while inner.log.len() > self.settings.max_log.max(1) {
            inner.log.pop_front();
        }
    }

    /// An HTTP client for callbacks with this connect timeout (kept for reuse, a few at most).
    pub(crate) fn client(
        &self,
        connect_timeout: Duration,
    ) -> Result<reqwest::Client, reqwest::Error> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(&connect_timeout) {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .user_agent("TwilioProxy/1.1")
            .build()?;
        if clients.len() >= 16 {
            clients.clear();
        }
        clients.insert(connect_timeout, client.clone());
        Ok(client)
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

/// 32 lowercase hexadecimal digits.
pub(crate) fn hex32(rng: &mut fastrand::Rng) -> String {
    format!("{:016x}{:016x}", rng.u64(..), rng.u64(..))
}
