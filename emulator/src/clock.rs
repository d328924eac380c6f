//! The emulated clock: real time plus whatever was advanced through the admin API or
//! [`EmulatorHandle::advance_time`](super::EmulatorHandle::advance_time), and the schedule wait
//! that follows it.

use std::time::Duration;

use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::sync::watch;
use tokio::time::Instant;

/// The latest emulated time: the end of the year 9999, the last instant the API's dates can
/// represent. The clock stops there; it never wraps back to real time.
const END: OffsetDateTime = PrimitiveDateTime::MAX.assume_utc();

/// Real time shifted forward by the total advanced so far.
#[derive(Debug)]
pub(crate) struct Clock {
    advanced: watch::Sender<Duration>,
}

impl Default for Clock {
    /// Real time, nothing advanced.
    fn default() -> Self {
        Self {
            advanced: watch::Sender::new(Duration::ZERO),
        }
    }
}

/// A moment of the emulated clock, read at once: the emulated time, the total advanced and the
/// real instant, so that a wait can be measured from it (see [`Clock::wait`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    /// The emulated time at this moment.
    pub(crate) now: OffsetDateTime,
    advanced: Duration,
    real: Instant,
}

/// `real` shifted forward by `advanced`, or [`END`] when that is later.
fn shifted(real: OffsetDateTime, advanced: Duration) -> OffsetDateTime {
    time::Duration::try_from(advanced)
        .ok()
        .and_then(|d| real.checked_add(d))
        .unwrap_or(END)
}

impl Clock {
    /// The emulated time: dates of messages, and the "now" that `SendAt` is checked against.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.mark().now
    }

    /// The current moment, to measure a wait from (a message's creation).
    pub(crate) fn mark(&self) -> Mark {
        let advanced = *self.advanced.borrow();
        Mark {
            now: shifted(OffsetDateTime::now_utc(), advanced),
            advanced,
            real: Instant::now(),
        }
    }

    /// The total advanced so far.
    pub(crate) fn advanced(&self) -> Duration {
        *self.advanced.borrow()
    }

    /// How far the emulated time can still be advanced: up to the end of the year 9999.
    pub(crate) fn headroom(&self) -> Duration {
        Duration::try_from(END - self.now()).unwrap_or_default()
    }

    /// Moves the emulated time forward by `by`, but never past the end of the year 9999 (see
    /// [`headroom`](Self::headroom)); scheduled messages whose time comes are sent.
    pub(crate) fn advance(&self, by: Duration) {
        let by = by.min(self.headroom());
        self.advanced.send_modify(|a| *a = a.saturating_add(by));
    }

    /// Back to real time (a reset).
    pub(crate) fn reset(&self) {
        self.advanced.send_replace(Duration::ZERO);
    }

    /// Waits until `ahead` of emulated time has passed since `since`: real time since then
    /// counts `scale` times faster or slower (`ahead * scale` of real time when nothing is
    /// advanced), and every advance made since counts in full, including those made before
    /// this call.
    pub(crate) async fn wait(&self, since: Mark, ahead: Duration, scale: f64) {
        let mut rx = self.advanced.subscribe();
        loop {
            let advanced = rx.borrow_and_update().saturating_sub(since.advanced);
            let remaining = ahead.saturating_sub(advanced);
            if remaining.is_zero() {
                return;
            }
            // Tokio treats a wait too long to represent as "far in the future".
            let real = Duration::try_from_secs_f64(remaining.as_secs_f64() * scale)
                .unwrap_or(Duration::MAX);
            let sleep = async {
                match since.real.checked_add(real) {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => return,
                changed = rx.changed() => {
                    if changed.is_err() {
                        // The clock is gone with the emulator: nothing will advance it again.
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn advancing_ends_a_wait_that_real_time_would_not() {
        let clock = std::sync::Arc::new(Clock::default());
        let waiter = {
            let clock = std::sync::Arc::clone(&clock);
            let since = clock.mark();
            tokio::spawn(async move { clock.wait(since, Duration::from_secs(3600), 1.0).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        clock.advance(Duration::from_secs(1800));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "half an hour is not enough");
        clock.advance(Duration::from_secs(1800));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(clock.advanced(), Duration::from_secs(3600));
        assert!(clock.now() > OffsetDateTime::now_utc() + time::Duration::minutes(59));
        clock.reset();
        assert_eq!(clock.advanced(), Duration::ZERO);
    }

    #[tokio::test]
    async fn scaled_real_time_and_zero_scale() {
        let clock = Clock::default();
        let started = Instant::now();
        clock
            .wait(clock.mark(), Duration::from_secs(100), 0.001)
            .await;
        assert!(started.elapsed() >= Duration::from_millis(100));
        clock
            .wait(clock.mark(), Duration::from_secs(100), 0.0)
            .await;
        clock
            .wait(clock.mark(), Duration::ZERO, f64::INFINITY)
            .await;
    }

    #[tokio::test]
    async fn an_advance_before_the_wait_starts_counts() {
        let clock = Clock::default();
        let since = clock.mark();
        clock.advance(Duration::from_secs(3600));
        tokio::time::timeout(
            Duration::from_secs(5),
            clock.wait(since, Duration::from_secs(3600), 1.0),
        )
        .await
        .expect("the advance made after the mark ends the wait");
    }

    #[test]
    fn the_clock_stops_at_the_end_of_the_year_9999() {
        let clock = Clock::default();
        clock.advance(Duration::from_secs(100_000_000_000));
        let before = clock.now();
        assert!(clock.headroom() < Duration::from_secs(300_000_000_000));
        clock.advance(Duration::from_secs(300_000_000_000));
        assert_eq!(clock.now(), END);
        assert_eq!(clock.headroom(), Duration::ZERO);
        clock.advance(Duration::MAX);
        assert!(clock.now() >= before);
        assert_eq!(shifted(OffsetDateTime::now_utc(), Duration::MAX), END);
    }
}
