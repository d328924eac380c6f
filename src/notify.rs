//! Subscribers: tell the app when a message's status really changes.
//!
//! A [`Notifier`] is shared by the webhook and the reconciler. Each real change (never a
//! duplicate or stale event) is published once, without waiting: to every [`Subscription`]
//! (a broadcast stream) and to every listener registered with [`Notifier::on_change`], which runs
//! in its own task, in order, with panics caught. A slow or panicking listener therefore never
//! delays the response to Twilio nor breaks the handler. The store stays the source of truth: a
//! subscriber that falls too far behind is told how many changes it missed.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt as _;
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc};

use crate::ids::MessageSid;
use crate::model::{Applied, EventSource};
use crate::status::MessageStatus;

/// One real change of a message's current status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusChange {
    /// The message.
    pub sid: MessageSid,
    /// The status before (`None`: the message was new to the store).
    pub previous: Option<MessageStatus>,
    /// The status now.
    pub current: MessageStatus,
    /// The error code of the event that set `current`.
    pub error_code: Option<u32>,
    /// Where the event came from.
    pub source: EventSource,
    /// When the change was applied.
    pub at: OffsetDateTime,
}

impl StatusChange {
    /// The change an [`Applied`] result describes, or `None` if nothing changed.
    pub fn from_applied(
        sid: &MessageSid,
        applied: &Applied,
        error_code: Option<u32>,
        source: EventSource,
    ) -> Option<Self> {
        applied.changed().then(|| Self {
            sid: sid.clone(),
            previous: applied.previous.clone(),
            current: applied.current.clone(),
            error_code,
            source,
            at: OffsetDateTime::now_utc(),
        })
    }
}

/// Why a listener could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// [`Notifier::on_change`] was called outside a tokio runtime.
    #[error("listeners must be registered inside a tokio runtime")]
    NoRuntime,
}

/// What [`Subscription::recv`] can return instead of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The subscriber fell behind and this many changes were skipped (read the store).
    #[error("subscriber lagged behind by {0} changes")]
    Lagged(u64),
    /// Every notifier is gone.
    #[error("notifier closed")]
    Closed,
}

/// Publishes status changes to subscriptions and listeners. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    broadcast: broadcast::Sender<StatusChange>,
    listeners: Mutex<Vec<mpsc::Sender<StatusChange>>>,
    queue: usize,
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new(1024)
    }
}

impl Notifier {
    /// The largest capacity [`new`](Self::new) takes: 65 536 changes (the broadcast's buffer,
    /// allocated at once, is then about 7 MB).
    pub const MAX_CAPACITY: usize = 1 << 16;

    /// A notifier whose subscriptions and listeners may fall `capacity` changes behind,
    /// between 1 and [`MAX_CAPACITY`](Self::MAX_CAPACITY) (a capacity outside is brought to
    /// the nearer bound). The broadcast's buffer is allocated at once, a slot per change.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, Self::MAX_CAPACITY);
        let (broadcast, _) = broadcast::channel(capacity);
        Self {
            inner: Arc::new(Inner {
                broadcast,
                listeners: Mutex::new(Vec::new()),
                queue: capacity,
            }),
        }
    }

    /// A new subscription that receives every change published from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.inner.broadcast.subscribe(),
        }
    }

    /// Registers an async listener, called once per change, one change at a time, in order,
    /// in a task of its own. A panic in it is caught and logged; the next change still arrives.
    /// When it falls `capacity` changes behind, further changes are dropped for it (and logged).
    ///
    /// # Errors
    /// [`NotifyError::NoRuntime`] outside a tokio runtime.
    pub fn on_change<F, Fut>(&self, listener: F) -> Result<(), NotifyError>
    where
        F: Fn(StatusChange) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        let (tx, mut rx) = mpsc::channel::<StatusChange>(self.inner.queue);
        handle.spawn(async move {
            while let Some(change) = rx.recv().await {
                let sid = change.sid.clone();
                if AssertUnwindSafe(listener(change))
                    .catch_unwind()
                    .await
                    .is_err()
                {
                    tracing::error!(message_sid = %sid, "status listener panicked; continuing");
                }
            }
        });
        self.lock().push(tx);
        Ok(())
    }

    /// Publishes one change without waiting for anyone.
    pub fn publish(&self, change: StatusChange) {
        let mut listeners = self.lock();
        listeners.retain(|tx| match tx.try_send(change.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(c)) => {
                tracing::warn!(message_sid = %c.sid, "status listener is behind; change dropped for it");
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        drop(listeners);
        // No subscriber is not an error.
        let _ = self.inner.broadcast.send(change);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::Sender<StatusChange>>> {
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// A stream of status changes from a [`Notifier`].
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<StatusChange>,
}

impl Subscription {
    /// The next change.
    ///
    /// # Errors
    /// [`RecvError::Lagged`] when changes were skipped (the next call goes on with the oldest
    /// one kept), [`RecvError::Closed`] when every notifier is gone.
    pub async fn recv(&mut self) -> Result<StatusChange, RecvError> {
        self.rx.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => RecvError::Lagged(n),
            broadcast::error::RecvError::Closed => RecvError::Closed,
        })
    }

    /// The subscription as a `Stream` of changes; lag is reported as an item, the end is `None`.
    pub fn into_stream(
        self,
    ) -> impl futures_core::Stream<Item = Result<StatusChange, RecvError>> + Send {
        futures_util::stream::unfold(self, |mut sub| async move {
            match sub.recv().await {
                Err(RecvError::Closed) => None,
                other => Some((other, sub)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Outcome;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn change(n: u8) -> StatusChange {
        let sid = MessageSid::new(format!("SM{n:032x}")).unwrap();
        let applied = Applied {
            outcome: Outcome::Advanced,
            previous: None,
            current: MessageStatus::Sent,
            new_event: true,
            created_at: None,
        };
        StatusChange::from_applied(&sid, &applied, None, EventSource::Callback).unwrap()
    }

    /// Any capacity is taken: `usize::MAX` used to panic in tokio's broadcast channel.
    #[tokio::test]
    async fn any_capacity_is_brought_within_bounds() {
        for capacity in [0, usize::MAX] {
            let n = Notifier::new(capacity);
            let mut sub = n.subscribe();
            n.on_change(|_| async {}).unwrap();
            n.publish(change(1));
            assert_eq!(sub.recv().await.unwrap().sid, change(1).sid);
        }
    }

    #[tokio::test]
    async fn panicking_and_slow_listeners_do_not_block_publish() {
        let n = Notifier::new(64);
        let seen = Arc::new(AtomicUsize::new(0));
        let s2 = seen.clone();
        n.on_change(move |c| {
            let s2 = s2.clone();
            async move {
                // Every change whose SID ends in '1' panics the listener.
                assert!(!c.sid.as_str().ends_with('1'), "listener bug");
                s2.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
        n.on_change(|_| async { tokio::time::sleep(Duration::from_secs(3600)).await })
            .unwrap();
        let start = std::time::Instant::now();
        for i in 0..40 {
            n.publish(change(i));
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "publish never waits"
        );
        let panicking = (0..40u8)
            .filter(|i| format!("{i:032x}").ends_with('1'))
            .count();
        assert!(panicking > 0);
        for _ in 0..100 {
            if seen.load(Ordering::SeqCst) == 40 - panicking {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen.load(Ordering::SeqCst), 40 - panicking);
    }

    #[tokio::test]
    async fn a_lagging_subscription_is_told_how_many_it_missed() {
        let n = Notifier::new(16);
        let mut sub = n.subscribe();
        for i in 0..40 {
            n.publish(change(i));
        }
        assert_eq!(sub.recv().await, Err(RecvError::Lagged(24)));
        assert_eq!(sub.recv().await.unwrap().sid, change(24).sid);
    }

    #[test]
    fn registering_outside_a_runtime_is_an_error() {
        assert_eq!(
            Notifier::default().on_change(|_| async {}),
            Err(NotifyError::NoRuntime)
        );
    }

    #[test]
    fn no_change_no_notification() {
        let sid = change(0).sid;
        let applied = Applied {
            outcome: Outcome::Duplicate,
            previous: Some(MessageStatus::Sent),
            current: MessageStatus::Sent,
            new_event: false,
            created_at: None,
        };
        assert!(StatusChange::from_applied(&sid, &applied, None, EventSource::Callback).is_none());
    }
}
