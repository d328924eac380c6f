//! The durable change feed: every real status change, numbered, read by named consumers.
//!
//! Each write that changes a message's current status also writes a [`FeedEntry`] in the same
//! transaction, at an increasing position. [`FeedStore::changes_after`] returns only positions
//! that are final: SQLite's single writer and the memory store's lock hand them out in commit
//! order; on PostgreSQL, where concurrent transactions commit positions out of order, a read
//! that meets a missing position waits for the writers that may still commit it. So reading
//! "after my cursor" never skips a change whose transaction was still running.
//!
//! A [`Consumer`] has a name and a cursor stored in the store. It reads the changes after its
//! cursor, runs its handler on each, in order, and moves the cursor only after the handler
//! succeeded: a crash or restart means a redelivery, never a loss (at least once, in order per
//! message). A handler error is retried with backoff; a change that keeps failing is parked
//! as a [`DeadLetter`] with its error, the consumer moves on, and the letter can be
//! [replayed](Consumer::replay) later. Consumers on every app instance are woken when a change
//! commits anywhere (PostgreSQL `LISTEN/NOTIFY`, in-process for SQLite and memory) and poll as
//! a fallback. One consumer of a name runs at a time on a store: each holds the name's lease
//! ([`FeedStore::lease_consumer`]) while it runs, so every app instance can spawn the same
//! consumer and the others wait to take over.
//!
//! The in-process [`Notifier`](crate::notify::Notifier) stays as the live, best-effort view;
//! use a consumer for anything that must not be missed.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn twilio_delivery::StatusStore>) -> Result<(), twilio_delivery::StoreError> {
//! use twilio_delivery::feed::Consumer;
//!
//! let handle = Consumer::builder(store, "mark-orders-notified")?
//!     .spawn(|entry| async move {
//!         // e.g. UPDATE orders SET notified = true WHERE message_sid = entry.change.sid
//!         println!("{} is now {}", entry.change.sid, entry.change.current);
//!         Ok(())
//!     });
//! // ... on shutdown:
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt as _;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::notify::StatusChange;
use crate::store::{StatusStore, StoreError};

/// One change in the feed, at its position.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedEntry {
    /// Its position: 1 for the first change of a store, then increasing (PostgreSQL leaves out
    /// the positions of transactions that rolled back).
    pub position: u64,
    /// What changed.
    pub change: StatusChange,
}

impl FeedEntry {
    /// An entry, for stores implemented outside this crate.
    pub fn new(position: u64, change: StatusChange) -> Self {
        Self { position, change }
    }
}

/// A change a consumer's handler kept failing on, parked so that the consumer could move on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The consumer that parked it.
    pub consumer: String,
    /// The change.
    pub entry: FeedEntry,
    /// The handler's last error, as text.
    pub error: String,
    /// How many times the handler was tried.
    pub attempts: u32,
    /// When it was parked.
    pub parked_at: OffsetDateTime,
}

impl DeadLetter {
    /// A dead letter, for stores implemented outside this crate.
    pub fn new(
        consumer: impl Into<String>,
        entry: FeedEntry,
        error: impl Into<String>,
        attempts: u32,
        parked_at: OffsetDateTime,
    ) -> Self {
        Self {
            consumer: consumer.into(),
            entry,
            error: error.into(),
            attempts,
            parked_at,
        }
    }
}

/// The longest consumer name, in bytes.
pub const MAX_CONSUMER_NAME: usize = 128;

/// The feed side of a store: reading changes, consumer cursors and dead letters.
///
/// [`StatusStore::feed`] gives it; every store of this crate has one.
#[async_trait]
pub trait FeedStore: fmt::Debug + Send + Sync {
    /// Up to `limit` changes with a position above `after`, in position order, none of them
    /// above a position whose transaction may still commit: a later read after the last one
    /// returned misses nothing.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn changes_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError>;

    /// The highest position written so far (0 when there is none).
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn head(&self) -> Result<u64, StoreError>;

    /// The stored cursor of `consumer`, `None` if it never stored one.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn cursor(&self, consumer: &str) -> Result<Option<u64>, StoreError>;

    /// Moves the cursor of `consumer` to `position` (never backwards).
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be written.
    async fn advance(&self, consumer: &str, position: u64) -> Result<(), StoreError>;

    /// Keeps `letter` in the consumer's dead-letter list and moves its cursor to the letter's
    /// position, in one transaction.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be written; nothing is changed then.
    async fn park(&self, letter: &DeadLetter) -> Result<(), StoreError>;

    /// The dead letters of `consumer`, oldest position first, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn dead_letters(&self, consumer: &str, limit: u32)
    -> Result<Vec<DeadLetter>, StoreError>;

    /// The dead letter of `consumer` at `position`, if there is one.
    ///
    /// The default looks through [`dead_letters`](Self::dead_letters); the crate's stores look
    /// it up by its key.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn dead_letter(
        &self,
        consumer: &str,
        position: u64,
    ) -> Result<Option<DeadLetter>, StoreError> {
        let letters = self.dead_letters(consumer, u32::MAX).await?;
        Ok(letters.into_iter().find(|l| l.entry.position == position))
    }

    /// Removes the dead letter of `consumer` at `position`; whether there was one.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be written.
    async fn remove_dead_letter(&self, consumer: &str, position: u64) -> Result<bool, StoreError>;

    /// Returns when a change above `after` may have been written, or after `timeout`: a hint
    /// to read again, never a promise.
    async fn wait_for_change(&self, after: u64, timeout: Duration);

    /// Takes the exclusive lease of the consumer name `consumer`, so that one consumer of a
    /// name runs at a time on this store; `None` while another holds it. It is held until the
    /// returned lease is released or dropped, or until it is [lost](ConsumerLease::is_lost).
    ///
    /// The default keeps the lease in this process, for this store instance: enough for a store
    /// private to one process. A store that several processes share must override it and keep
    /// the lease in the store (`PostgresStore`: a row with an expiry, renewed while held).
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be reached.
    async fn lease_consumer(&self, consumer: &str) -> Result<Option<ConsumerLease>, StoreError> {
        let scope = format!("{:p}", (self as *const Self).cast::<()>());
        Ok(ConsumerLease::local(scope, consumer))
    }
}

/// The store's side of a [`ConsumerLease`]: keeps the lease while it lives (renewing it, when
/// it has an expiry) and gives it back.
#[async_trait]
pub trait LeaseGuard: fmt::Debug + Send + Sync {
    /// Gives the lease back now. A guard dropped without this gives it back too, perhaps a
    /// little later, or lets it expire.
    async fn release(self: Box<Self>);
}

/// The exclusive lease of a consumer name on a store, from [`FeedStore::lease_consumer`]:
/// while a [`Consumer`] holds it, no other consumer of that name on the store handles changes.
#[derive(Debug)]
pub struct ConsumerLease {
    guard: Box<dyn LeaseGuard>,
    lost: Option<Arc<AtomicBool>>,
}

impl ConsumerLease {
    /// A lease that stays held until it is released or dropped (one kept in this process).
    pub fn new(guard: Box<dyn LeaseGuard>) -> Self {
        Self { guard, lost: None }
    }

    /// A lease that can be lost while held (one with an expiry that could not be renewed in
    /// time, or that another holder took after it expired): the store sets `lost` then, and
    /// the consumer holding it handles no further change.
    pub fn losable(guard: Box<dyn LeaseGuard>, lost: Arc<AtomicBool>) -> Self {
        Self {
            guard,
            lost: Some(lost),
        }
    }

    /// Whether the lease is known lost: another consumer of the name may be running now.
    pub fn is_lost(&self) -> bool {
        self.lost
            .as_ref()
            .is_some_and(|l| l.load(Ordering::Acquire))
    }

    /// Gives the lease back, and waits until it is given back.
    pub async fn release(self) {
        self.guard.release().await;
    }

    /// The lease of `consumer` on the store known in this process as `scope`, unless another
    /// holds it.
    pub(crate) fn local(scope: String, consumer: &str) -> Option<Self> {
        let key = (scope, consumer.to_owned());
        let mut held = LOCAL_LEASES.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.insert(key.clone()) {
            return None;
        }
        Some(Self::new(Box::new(LocalLease { key })))
    }
}

/// The consumer leases held in this process: (store scope, consumer name).
static LOCAL_LEASES: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

/// A lease held in this process; dropping it gives it back.
#[derive(Debug)]
struct LocalLease {
    key: (String, String),
}

#[async_trait]
impl LeaseGuard for LocalLease {
    /// Dropping it gives it back.
    async fn release(self: Box<Self>) {}
}

impl Drop for LocalLease {
    fn drop(&mut self) {
        LOCAL_LEASES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// In-process wake-ups for stores whose writers are all in this process: the head position,
/// published after each commit.
#[derive(Debug)]
pub(crate) struct LocalWake {
    head: watch::Sender<u64>,
}

impl LocalWake {
    /// A wake-up channel starting at position 0.
    pub(crate) fn new() -> Self {
        Self {
            head: watch::Sender::new(0),
        }
    }

    /// Publishes that changes up to `position` are committed.
    pub(crate) fn committed(&self, position: u64) {
        self.head.send_if_modified(|h| {
            let newer = position > *h;
            if newer {
                *h = position;
            }
            newer
        });
    }

    /// Waits until a position above `after` was published, or `timeout`.
    pub(crate) async fn wait(&self, after: u64, timeout: Duration) {
        let mut rx = self.head.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|h| *h > after)).await;
    }
}

/// What a consumer's handler returns: `Err` to be retried (and parked after the last try).
pub type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Where a consumer with no stored cursor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartFrom {
    /// At the first change the store ever recorded (the default).
    Beginning,
    /// At the changes written after it first runs (on PostgreSQL, a change whose transaction
    /// was still committing at that moment, below the newest position, is left out too).
    Latest,
}

/// Checks a consumer name.
fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > MAX_CONSUMER_NAME || name.chars().any(char::is_control) {
        return Err(StoreError::Config(format!(
            "a consumer name must be 1 to {MAX_CONSUMER_NAME} bytes without control characters"
        )));
    }
    Ok(())
}

/// A named reader of the change feed whose cursor lives in the store. Build with
/// [`Consumer::builder`].
///
/// One consumer of a name handles changes at a time on a store, whichever app instance or
/// task runs it: while it runs it holds the name's lease ([`FeedStore::lease_consumer`]).
/// Another consumer of that name waits, trying to take the lease again each time its poll
/// interval passes (not at each change), and takes over when the holder stops or, on PostgreSQL, when
/// the holder's lease expires (`PostgresOptions::lease_ttl`, 60 s by default, after an
/// instance died). A consumer whose lease is found lost (it could not be renewed in time)
/// stops after the change in progress, stores its cursor, and goes back to waiting for the
/// lease. So every instance can spawn the same consumer, and the changes stay in order.
#[derive(Clone)]
pub struct Consumer {
    store: Arc<dyn StatusStore>,
    name: Arc<str>,
    start: StartFrom,
    page: u32,
    attempts: u32,
    first_backoff: Duration,
    max_backoff: Duration,
    poll: Duration,
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("start", &self.start)
            .field("page", &self.page)
            .field("attempts", &self.attempts)
            .field("first_backoff", &self.first_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Consumer`].
#[derive(Debug)]
#[must_use]
pub struct ConsumerBuilder {
    inner: Consumer,
}

impl ConsumerBuilder {
    /// Where to start when the store holds no cursor for this name (default: the beginning).
    pub fn start_from(mut self, start: StartFrom) -> Self {
        self.inner.start = start;
        self
    }

    /// How many tries a change gets before it is parked (default 5, at least 1).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.inner.attempts = attempts.max(1);
        self
    }

    /// The wait after the first failure, doubled after each further one up to `max`
    /// (default 200 ms up to 30 s).
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.inner.first_backoff = first;
        self.inner.max_backoff = max.max(first);
        self
    }

    /// How long an idle consumer waits for a wake-up before reading again anyway (default 5 s):
    /// the fallback when a notification is lost. It is also how often a consumer waiting for
    /// its name's lease tries it again, so how long a waiting instance may take to take over
    /// after the holder stops.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.inner.poll = every.max(Duration::from_millis(1));
        self
    }

    /// Changes read at once (default 100).
    pub fn page_size(mut self, n: u32) -> Self {
        self.inner.page = n.clamp(1, 10_000);
        self
    }

    /// The consumer.
    pub fn build(self) -> Consumer {
        self.inner
    }

    /// Builds the consumer and [runs](Consumer::run_until) it in a background task.
    pub fn spawn<H, Fut>(self, handler: H) -> ConsumerHandle
    where
        H: Fn(FeedEntry) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.build().spawn(handler)
    }
}

impl Consumer {
    /// A consumer named `name` (its cursor's key in the store) over `store`'s feed.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the name is empty, longer than [`MAX_CONSUMER_NAME`] or
    /// holds control characters; [`StoreError::Unsupported`] when the store has no feed.
    pub fn builder(
        store: Arc<dyn StatusStore>,
        name: impl Into<String>,
    ) -> Result<ConsumerBuilder, StoreError> {
        let name: String = name.into();
        check_name(&name)?;
        if store.feed().is_none() {
            return Err(StoreError::Unsupported("change feed"));
        }
        Ok(ConsumerBuilder {
            inner: Consumer {
                store,
                name: name.into(),
                start: StartFrom::Beginning,
                page: 100,
                attempts: 5,
                first_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(30),
                poll: Duration::from_secs(5),
            },
        })
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn feed(&self) -> Result<&dyn FeedStore, StoreError> {
        self.store
            .feed()
            .ok_or(StoreError::Unsupported("change feed"))
    }

    /// The stored cursor, initialised from [`StartFrom`] the first time.
    async fn position(&self) -> Result<u64, StoreError> {
        let feed = self.feed()?;
        if let Some(at) = feed.cursor(&self.name).await? {
            return Ok(at);
        }
        let at = match self.start {
            StartFrom::Beginning => 0,
            StartFrom::Latest => feed.head().await?,
        };
        feed.advance(&self.name, at).await?;
        Ok(at)
    }

    /// Takes the consumer's lease, unless another consumer of this name holds it.
    async fn take_lease(&self) -> Result<Option<ConsumerLease>, StoreError> {
        self.feed()?.lease_consumer(&self.name).await
    }

    /// Handles every change after the stored cursor that is there now, one page at a time, and
    /// returns how many it handled (parked ones included). The cursor moves after each page.
    ///
    /// It holds the consumer's lease meanwhile: while another consumer of this name holds it,
    /// it handles nothing and returns 0; if the lease is lost, it stops after the change in
    /// progress.
    ///
    /// # Errors
    /// [`StoreError`] when the feed cannot be read or the cursor cannot be stored; the changes
    /// handled since the last stored cursor are then handled again by the next run.
    pub async fn run_once<H, Fut>(&self, handler: &H) -> Result<usize, StoreError>
    where
        H: Fn(FeedEntry) -> Fut + Send + Sync,
        Fut: Future<Output = HandlerResult> + Send,
    {
        let Some(lease) = self.take_lease().await? else {
            tracing::debug!(consumer = %self.name, "change feed: another consumer of this name holds its lease");
            return Ok(0);
        };
        // Never told to stop.
        let (_keep, mut stop) = watch::channel(false);
        let drained = self.drain(handler, &lease, &mut stop).await;
        lease.release().await;
        Ok(drained?.handled)
    }

    /// Handles the changes after the stored cursor, a page at a time, until there are none or
    /// it must halt (checked between changes and while it waits): then it stores the cursor at
    /// the last change handled. The cursor is also stored after each page.
    async fn drain<H, Fut>(
        &self,
        handler: &H,
        lease: &ConsumerLease,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Drained, StoreError>
    where
        H: Fn(FeedEntry) -> Fut + Send + Sync,
        Fut: Future<Output = HandlerResult> + Send,
    {
        let feed = self.feed()?;
        let mut at = self.position().await?;
        let mut stored = at;
        let mut handled = 0;
        let halted = 'pages: loop {
            if let Some(halt) = halt(stop, lease) {
                break Some(halt);
            }
            let Some(page) = unless_stopped(stop, feed.changes_after(at, self.page)).await else {
                break Some(Halt::Stop);
            };
            let page = page?;
            if page.is_empty() {
                crate::metrics::feed_lag(&self.name, 0);
                break None;
            }
            let full = page.len() >= self.page as usize;
            for entry in page {
                if let Some(halt) = halt(stop, lease) {
                    break 'pages Some(halt);
                }
                let position = entry.position;
                match self.handle(handler, &entry, lease, stop).await {
                    Handled::Done => {}
                    Handled::Failed { error, attempts } => {
                        // Everything before it succeeded: park it and move the cursor past it.
                        tracing::error!(consumer = %self.name, position, message_sid = %entry.change.sid,
                            attempts, error = %error, "change feed: handler keeps failing; change parked");
                        let letter = DeadLetter::new(
                            &*self.name,
                            entry,
                            error,
                            attempts,
                            OffsetDateTime::now_utc(),
                        );
                        feed.park(&letter).await?;
                        stored = position;
                    }
                    Handled::Halted(halt) => break 'pages Some(halt),
                }
                at = position;
                handled += 1;
            }
            if at > stored {
                feed.advance(&self.name, at).await?;
                stored = at;
            }
            if let Ok(head) = feed.head().await {
                crate::metrics::feed_lag(&self.name, head.saturating_sub(at));
            }
            if !full {
                break None;
            }
        };
        if at > stored {
            feed.advance(&self.name, at).await?;
        }
        Ok(Drained {
            handled,
            at,
            halted,
        })
    }

    /// Runs the handler on one entry, with retries while it fails; between tries it waits the
    /// backoff (less when told to stop), then halts if it must.
    async fn handle<H, Fut>(
        &self,
        handler: &H,
        entry: &FeedEntry,
        lease: &ConsumerLease,
        stop: &mut watch::Receiver<bool>,
    ) -> Handled
    where
        H: Fn(FeedEntry) -> Fut + Send + Sync,
        Fut: Future<Output = HandlerResult> + Send,
    {
        let mut wait = self.first_backoff;
        let mut tries = 0;
        loop {
            tries += 1;
            let error = match AssertUnwindSafe(handler(entry.clone()))
                .catch_unwind()
                .await
            {
                Ok(Ok(())) => return Handled::Done,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "the handler panicked".to_owned(),
            };
            if tries >= self.attempts {
                return Handled::Failed {
                    error,
                    attempts: tries,
                };
            }
            tracing::warn!(consumer = %self.name, position = entry.position, attempt = tries,
                error = %error, "change feed: handler failed; retrying");
            unless_stopped(stop, tokio::time::sleep(wait)).await;
            if let Some(halt) = halt(stop, lease) {
                return Handled::Halted(halt);
            }
            wait = wait.saturating_mul(2).min(self.max_backoff);
        }
    }

    /// Runs the consumer until `shutdown` resolves: takes the consumer's lease (while another
    /// consumer of this name holds it, tries again each time the poll interval passes),
    /// handles what is there, then waits for a wake-up (or the poll interval) and
    /// handles again. Store errors are logged and retried after a backoff.
    ///
    /// When `shutdown` resolves it stops after the change in progress (a change waiting for
    /// its handler's next try is left to the next run), stores the cursor at the last change
    /// handled, gives the lease back and returns.
    pub async fn run_until<H, Fut, S>(self, handler: H, shutdown: S)
    where
        H: Fn(FeedEntry) -> Fut + Send + Sync,
        Fut: Future<Output = HandlerResult> + Send,
        S: Future<Output = ()> + Send,
    {
        let (stop, stopped) = watch::channel(false);
        let work = self.work(&handler, stopped);
        tokio::pin!(work, shutdown);
        tokio::select! {
            () = &mut work => {}
            () = &mut shutdown => {
                let _ = stop.send(true);
                work.await;
            }
        }
        tracing::debug!(consumer = %self.name, "change feed consumer stopped");
    }

    /// The body of [`run_until`](Self::run_until): takes the lease and handles changes while
    /// it holds it, until told to stop.
    async fn work<H, Fut>(&self, handler: &H, mut stop: watch::Receiver<bool>)
    where
        H: Fn(FeedEntry) -> Fut + Send + Sync,
        Fut: Future<Output = HandlerResult> + Send,
    {
        let mut failures = 0u32;
        while !*stop.borrow() {
            let lease = match self.take_lease().await {
                Ok(Some(lease)) => lease,
                Ok(None) => {
                    // Not woken by changes: those come with every batch written, and trying the
                    // lease each time would cost the store two queries a batch per waiter.
                    tracing::debug!(consumer = %self.name, "change feed: another consumer of this name holds its lease; waiting");
                    unless_stopped(&mut stop, tokio::time::sleep(self.poll)).await;
                    continue;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::error!(consumer = %self.name, error = %e, "change feed: cannot take the consumer's lease");
                    let pause = backoff(self.first_backoff, self.max_backoff, failures);
                    unless_stopped(&mut stop, tokio::time::sleep(pause)).await;
                    continue;
                }
            };
            while !*stop.borrow() {
                match self.drain(handler, &lease, &mut stop).await {
                    Ok(Drained {
                        halted: Some(Halt::LeaseLost),
                        ..
                    }) => {
                        tracing::warn!(consumer = %self.name, "change feed: the consumer's lease was lost; waiting to take it again");
                        break;
                    }
                    Ok(Drained {
                        halted: Some(Halt::Stop),
                        ..
                    }) => break,
                    Ok(Drained {
                        halted: None, at, ..
                    }) => {
                        failures = 0;
                        self.idle(&mut stop, at).await;
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        tracing::error!(consumer = %self.name, error = %e, "change feed: cannot read or store the cursor");
                        let pause = backoff(self.first_backoff, self.max_backoff, failures);
                        unless_stopped(&mut stop, tokio::time::sleep(pause)).await;
                    }
                }
            }
            lease.release().await;
        }
    }

    /// Waits for a change after `after` (a wake-up) or the poll interval, less when told to
    /// stop.
    async fn idle(&self, stop: &mut watch::Receiver<bool>, after: u64) {
        match self.feed() {
            Ok(feed) => {
                unless_stopped(stop, feed.wait_for_change(after, self.poll)).await;
            }
            Err(_) => {
                unless_stopped(stop, tokio::time::sleep(self.poll)).await;
            }
        }
    }

    /// Runs [`run_until`](Self::run_until) in a background task; stop it with the handle.
    pub fn spawn<H, Fut>(self, handler: H) -> ConsumerHandle
    where
        H: Fn(FeedEntry) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let (stop, mut rx) = watch::channel(false);
        let task = tokio::spawn(self.run_until(handler, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        ConsumerHandle { stop, task }
    }

    /// The changes this consumer parked, oldest first (at most 1000).
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.feed()?.dead_letters(&self.name, 1000).await
    }

    /// Runs `handler` once more on the parked change at `position`; on success the dead
    /// letter is removed. `Ok(false)`: there is no such dead letter.
    ///
    /// It does not take the consumer's lease, so that a dead letter can be replayed while the
    /// consumer runs: `handler` may then run beside the consumer's handler, and the replayed
    /// change is older than changes already handled for its message.
    ///
    /// # Errors
    /// [`ReplayError::Store`] when the store fails; [`ReplayError::Handler`] with the handler's
    /// error (the letter is kept).
    pub async fn replay<H, Fut>(&self, position: u64, handler: &H) -> Result<bool, ReplayError>
    where
        H: Fn(FeedEntry) -> Fut + Send + Sync,
        Fut: Future<Output = HandlerResult> + Send,
    {
        let feed = self.feed()?;
        let Some(letter) = feed.dead_letter(&self.name, position).await? else {
            return Ok(false);
        };
        match AssertUnwindSafe(handler(letter.entry)).catch_unwind().await {
            Ok(Ok(())) => Ok(feed.remove_dead_letter(&self.name, position).await?),
            Ok(Err(e)) => Err(ReplayError::Handler(e.to_string())),
            Err(_) => Err(ReplayError::Handler("the handler panicked".into())),
        }
    }
}

/// Why a [replay](Consumer::replay) did not remove its dead letter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The store failed.
    #[error("replay failed: store error")]
    Store(#[from] StoreError),
    /// The handler failed again (its error as text); the letter is kept.
    #[error("replay failed: the handler failed again: {0}")]
    Handler(String),
}

/// Why a consumer stopped handling before it ran out of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halt {
    /// It was told to stop.
    Stop,
    /// Its lease was lost: another consumer of its name may be running.
    LeaseLost,
}

/// How far a consumer went through the changes there were.
#[derive(Debug)]
struct Drained {
    /// Changes handled (parked ones included).
    handled: usize,
    /// The last change handled (the cursor).
    at: u64,
    /// Why it stopped before the last change, if it did.
    halted: Option<Halt>,
}

/// How handling one change ended.
#[derive(Debug)]
enum Handled {
    /// The handler succeeded.
    Done,
    /// The handler failed on every try.
    Failed { error: String, attempts: u32 },
    /// It had to halt while waiting to try again.
    Halted(Halt),
}

/// Why a consumer must halt now, if it must: told to stop, or its lease lost.
fn halt(stop: &watch::Receiver<bool>, lease: &ConsumerLease) -> Option<Halt> {
    if *stop.borrow() {
        Some(Halt::Stop)
    } else if lease.is_lost() {
        Some(Halt::LeaseLost)
    } else {
        None
    }
}

/// The output of `work`, or `None` when told to stop first.
async fn unless_stopped<F: Future>(stop: &mut watch::Receiver<bool>, work: F) -> Option<F::Output> {
    tokio::select! {
        out = work => Some(out),
        _ = stop.wait_for(|s| *s) => None,
    }
}

/// The wait after `failures` consecutive failures.
fn backoff(first: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1).min(16))
        .unwrap_or(u32::MAX);
    first.saturating_mul(factor).min(max)
}

/// Controls a consumer started with [`Consumer::spawn`]. Dropping it stops the consumer.
#[derive(Debug)]
pub struct ConsumerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ConsumerHandle {
    /// Stops the consumer after the change in progress and waits for it: its cursor is then
    /// stored at the last change handled and its lease given back.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await
            && e.is_panic()
        {
            tracing::error!("change feed consumer task panicked");
        }
    }
}

/// Follows the feed from `after` without a stored cursor (e.g. a live page): yields each
/// change once, in order, waiting for new ones. Stops at the first store error (after
/// logging it); start again from the last position seen.
pub fn follow(
    store: Arc<dyn StatusStore>,
    after: u64,
    poll: Duration,
) -> impl futures_core::Stream<Item = FeedEntry> + Send {
    futures_util::stream::unfold(
        (store, after, std::collections::VecDeque::new()),
        move |(store, mut at, mut buffered)| async move {
            loop {
                if let Some(entry) = buffered.pop_front() {
                    return Some((entry, (store, at, buffered)));
                }
                let feed = store.feed()?;
                match feed.changes_after(at, 100).await {
                    Ok(page) if page.is_empty() => feed.wait_for_change(at, poll).await,
                    Ok(page) => {
                        at = page.last().map_or(at, |e: &FeedEntry| e.position);
                        buffered.extend(page);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "change feed: follower stopped");
                        return None;
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("orders").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(MAX_CONSUMER_NAME + 1)).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (f, m) = (Duration::from_millis(100), Duration::from_millis(500));
        assert_eq!(backoff(f, m, 1), f);
        assert_eq!(backoff(f, m, 2), Duration::from_millis(200));
        assert_eq!(backoff(f, m, 9), m);
        assert_eq!(backoff(f, m, u32::MAX), m);
    }
}
