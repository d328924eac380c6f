//! `RetryPolicy`: which failures are retried, how often, and the full-jitter backoff between tries.

use std::time::Duration;

/// When and how the client retries a request.
///
/// The defaults follow twilio-node: up to 3 tries in all, a full-jitter exponential backoff of
/// `rand * min(3000 ms, 100 ms * 2^n)` before retry `n` (counting from 0), and a `Retry-After`
/// header (in seconds) honoured instead, capped at 30 s.
///
/// What is retried depends on whether a repeat could duplicate an effect:
/// - every request: a connection failure (the request provably never left) and a 429 answer
///   (or Twilio code 20429: "not processed, back off");
/// - reads and deletes (`GET`, `DELETE`) also: a 5xx answer, a timeout, or a transport failure
///   after sending, since repeating them is harmless;
/// - creates and updates (`POST`) never on a 5xx or timeout: that could send a message twice.
///
/// ```
/// use std::time::Duration;
/// use twilio_delivery::client::RetryPolicy;
///
/// let policy = RetryPolicy::builder()
///     .max_attempts(5)
///     .max_delay(Duration::from_secs(1))
///     .build();
/// assert_eq!(policy.max_attempts(), 5);
/// assert_eq!(RetryPolicy::none().max_attempts(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    max_retry_after: Duration,
    retry_reads_on_server_error: bool,
    retry_reads_on_timeout: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(3000),
            max_retry_after: Duration::from_secs(30),
            retry_reads_on_server_error: true,
            retry_reads_on_timeout: true,
        }
    }
}

impl RetryPolicy {
    /// A builder starting from the defaults.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: Self::default(),
        }
    }

    /// A policy that never retries (one try per call).
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The most tries per call, the first included (at least 1).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The backoff base: retry `n` waits up to `base_delay * 2^n`.
    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// The cap on the computed backoff.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The cap on a server's `Retry-After`.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// Whether `GET`/`DELETE` are retried on a 5xx answer.
    pub fn retry_reads_on_server_error(&self) -> bool {
        self.retry_reads_on_server_error
    }

    /// Whether `GET`/`DELETE` are retried after a timeout or a broken connection.
    pub fn retry_reads_on_timeout(&self) -> bool {
        self.retry_reads_on_timeout
    }

    /// The full-jitter delay before retry `retry` (0 for the first retry): a random duration in
    /// `[0, min(max_delay, base_delay * 2^retry))`.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        let ceiling = self.base_delay.saturating_mul(factor).min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }

    /// The delay before the next try: the server's `Retry-After` (capped) if it gave one,
    /// otherwise the backoff.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_retry_after),
            None => self.backoff(retry),
        }
    }
}

/// Builds a [`RetryPolicy`]; start with [`RetryPolicy::builder`].
#[derive(Debug, Clone)]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
}

impl RetryPolicyBuilder {
    /// The most tries per call, the first included; 0 is read as 1 (default 3).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.policy.max_attempts = attempts.max(1);
        self
    }

    /// The backoff base (default 100 ms).
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.policy.base_delay = delay;
        self
    }

    /// The cap on the computed backoff (default 3 s).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.policy.max_delay = delay;
        self
    }

    /// The cap on a server's `Retry-After` (default 30 s).
    pub fn max_retry_after(mut self, delay: Duration) -> Self {
        self.policy.max_retry_after = delay;
        self
    }

    /// Whether `GET`/`DELETE` are retried on a 5xx answer (default true).
    pub fn retry_reads_on_server_error(mut self, retry: bool) -> Self {
        self.policy.retry_reads_on_server_error = retry;
        self
    }

    /// Whether `GET`/`DELETE` are retried after a timeout or a broken connection (default true).
    pub fn retry_reads_on_timeout(mut self, retry: bool) -> Self {
        self.policy.retry_reads_on_timeout = retry;
        self
    }

    /// The policy.
    pub fn build(self) -> RetryPolicy {
        self.policy
    }
}

/// Whether repeating a request could duplicate an effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// `GET` and `DELETE`: a repeat is harmless.
    Safe,
    /// `POST` (create, cancel, redact): a repeat could send or change twice.
    Unsafe,
}

/// What happened on one try, as far as the retry decision is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No connection was made.
    Connect,
    /// The request timed out after it may have been sent.
    Timeout,
    /// The connection broke after the request may have been sent.
    Transport,
    /// An HTTP answer with this status (and Twilio code, if any).
    Status(u16, Option<u32>),
}

impl RetryPolicy {
    /// Whether a try that failed this way should be repeated.
    pub(crate) fn should_retry(&self, idempotency: Idempotency, failure: Failure) -> bool {
        let safe = idempotency == Idempotency::Safe;
        match failure {
            Failure::Connect => true,
            Failure::Status(429, _) | Failure::Status(_, Some(20429)) => true,
            Failure::Status(s, _) if s >= 500 => safe && self.retry_reads_on_server_error,
            Failure::Status(..) => false,
            Failure::Timeout | Failure::Transport => safe && self.retry_reads_on_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_the_full_jitter_ceiling() {
        let p = RetryPolicy::default();
        for _ in 0..200 {
            assert!(p.backoff(0) < Duration::from_millis(100));
            assert!(p.backoff(2) < Duration::from_millis(400));
            assert!(p.backoff(10) < Duration::from_millis(3000));
            assert!(p.backoff(u32::MAX) < Duration::from_millis(3000));
        }
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(30)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn creates_are_retried_only_when_provably_unprocessed() {
        let p = RetryPolicy::default();
        let un = Idempotency::Unsafe;
        assert!(p.should_retry(un, Failure::Connect));
        assert!(p.should_retry(un, Failure::Status(429, None)));
        assert!(p.should_retry(un, Failure::Status(400, Some(20429))));
        assert!(!p.should_retry(un, Failure::Status(500, None)));
        assert!(!p.should_retry(un, Failure::Status(503, None)));
        assert!(!p.should_retry(un, Failure::Timeout));
        assert!(!p.should_retry(un, Failure::Transport));
        let s = Idempotency::Safe;
        assert!(p.should_retry(s, Failure::Status(502, None)));
        assert!(p.should_retry(s, Failure::Timeout));
        assert!(!p.should_retry(s, Failure::Status(404, Some(20404))));
        let strict = RetryPolicy::builder()
            .retry_reads_on_server_error(false)
            .retry_reads_on_timeout(false)
            .build();
        assert!(!strict.should_retry(s, Failure::Status(502, None)));
        assert!(!strict.should_retry(s, Failure::Timeout));
        assert_eq!(
            RetryPolicy::builder()
                .max_attempts(0)
                .build()
                .max_attempts(),
            1
        );
    }
}
