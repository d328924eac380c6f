//! The emulated clock: real time plus whatever was advanced through the admin API or
//! [`EmulatorHandle::advance_time`](super::EmulatorHandle::advance_time), and the schedule wait
//! that follows it.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::Instant;

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

impl Clock {
    /// The emulated time: dates of messages, and the "now" that `SendAt` is checked against.
    pub(crate) fn now(&self) -> OffsetDateTime {
        let advanced = *self.advanced.borrow();
        let now = OffsetDateTime::now_utc();
        time::Duration::try_from(advanced)
            .ok()
            .and_then(|d| now.checked_add(d))
            .unwrap_or(now)
    }

    /// The total advanced so far.
    pub(crate) fn advanced(&self) -> Duration {
        *self.advanced.borrow()
    }

    /// Moves the emulated time forward by `by`; scheduled messages whose time comes are sent.
    pub(crate) fn advance(&self, by: Duration) {
        self.advanced.send_modify(|a| *a = a.saturating_add(by));
    }

    /// Back to real time (a reset).
    pub(crate) fn reset(&self) {
        self.advanced.send_replace(Duration::ZERO);
    }

    /// Waits until `ahead` of emulated time has passed since this call: real time counts
    /// `scale` times faster or slower (`ahead * scale` of real time when nothing is advanced),
    /// and every advance counts in full.
    pub(crate) async fn wait(&self, ahead: Duration, scale: f64) {
        let mut rx = self.advanced.subscribe();
        let start = *rx.borrow_and_update();
        let origin = Instant::now();
        loop {
            let advanced = rx.borrow_and_update().saturating_sub(start);
            let remaining = ahead.saturating_sub(advanced);
            if remaining.is_zero() {
                return;
            }
            // Tokio treats a wait too long to represent as "far in the future".
            let real = Duration::try_from_secs_f64(remaining.as_secs_f64() * scale)
                .unwrap_or(Duration::MAX);
            let sleep = async {
                match origin.checked_add(real) {
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
            tokio::spawn(async move { clock.wait(Duration::from_secs(3600), 1.0).await })
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
        clock.wait(Duration::from_secs(100), 0.001).await;
        assert!(started.elapsed() >= Duration::from_millis(100));
        clock.wait(Duration::from_secs(100), 0.0).await;
        clock.wait(Duration::ZERO, f64::INFINITY).await;
    }
}
