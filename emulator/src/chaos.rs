//! `Chaos`: the seeded, reproducible knobs that shape each message's lifecycle and callbacks,
//! and [`Outcome`], the final outcome a message is given (drawn from the mix, or fixed per
//! recipient).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Undelivered error codes used by default: 30003 unreachable handset, 30004 blocked,
/// 30005 unknown handset, 30006 landline or unreachable carrier, 30007 filtered,
/// 30008 unknown error.
const DEFAULT_UNDELIVERED_CODES: [u16; 6] = [30003, 30004, 30005, 30006, 30007, 30008];
/// Failed error codes used by default: 30001 queue overflow, 30002 account suspended.
const DEFAULT_FAILED_CODES: [u16; 2] = [30001, 30002];

/// How the emulator drives messages after they are created: delays between lifecycle steps,
/// the mix of final outcomes, and how badly status callbacks behave (reordered, duplicated,
/// dropped).
///
/// Every random choice is drawn from the emulator's seed (see
/// [`EmulatorBuilder::seed`](super::EmulatorBuilder::seed)): the same seed and the same sequence
/// of API requests give the same SIDs, outcomes, delays and callback decisions.
///
/// [`Chaos::default`] (the same as [`Chaos::calm`]) delivers every message, in order, once, after
/// short delays. [`Chaos::realistic`] adds failures and misbehaving callbacks in realistic
/// proportions.
///
/// ```
/// use std::time::Duration;
/// use twilio_delivery_emulator::Chaos;
///
/// let chaos = Chaos::calm()
///     .step_delay(Duration::from_millis(1), Duration::from_millis(5))
///     .outcomes(8, 1, 1)
///     .reorder(0.2)
///     .duplicate(0.1)
///     .drop(0.05);
/// assert_eq!(chaos.reorder_probability(), 0.2);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Chaos {
    step_delay: (Duration, Duration),
    delivered: u32,
    undelivered: u32,
    failed: u32,
    sent_only: u32,
    undelivered_codes: Vec<u16>,
    failed_codes: Vec<u16>,
    reorder: f64,
    duplicate: f64,
    drop: f64,
    time_scale: f64,
    rules: Vec<(String, Outcome)>,
}

impl Default for Chaos {
    /// [`Chaos::calm`].
    fn default() -> Self {
        Self::calm()
    }
}

/// Clamps a probability into `0.0..=1.0`; NaN becomes 0.
fn probability(p: f64) -> f64 {
    if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
}

impl Chaos {
    /// Every message is delivered; callbacks arrive once and in order; 100–500 ms between steps.
    pub fn calm() -> Self {
        Self {
            step_delay: (Duration::from_millis(100), Duration::from_millis(500)),
            delivered: 1,
            undelivered: 0,
            failed: 0,
            sent_only: 0,
            undelivered_codes: DEFAULT_UNDELIVERED_CODES.to_vec(),
            failed_codes: DEFAULT_FAILED_CODES.to_vec(),
            reorder: 0.0,
            duplicate: 0.0,
            drop: 0.0,
            time_scale: 1.0,
            rules: Vec::new(),
        }
    }

    /// Roughly what production looks like: 90 % delivered, 6 % undelivered, 2 % failed,
    /// 2 % stuck at `sent` (no delivery receipt); 5 % of messages get callbacks out of order,
    /// 2 % of callbacks are duplicated and 1 % are lost; 200 ms–3 s between steps.
    pub fn realistic() -> Self {
        Self {
            step_delay: (Duration::from_millis(200), Duration::from_secs(3)),
            delivered: 90,
            undelivered: 6,
            failed: 2,
            sent_only: 2,
            reorder: 0.05,
            duplicate: 0.02,
            drop: 0.01,
            ..Self::calm()
        }
    }

    /// The delay before each lifecycle step, drawn uniformly from `min..=max` (swapped if
    /// given in the wrong order).
    pub fn step_delay(mut self, min: Duration, max: Duration) -> Self {
        self.step_delay = if min <= max { (min, max) } else { (max, min) };
        self
    }

    /// Relative weights of the final outcomes: `delivered`, `undelivered` (with one of the
    /// [`undelivered_codes`](Self::undelivered_codes)) and `failed` (with one of the
    /// [`failed_codes`](Self::failed_codes)). All zero means every message is delivered.
    pub fn outcomes(mut self, delivered: u32, undelivered: u32, failed: u32) -> Self {
        self.delivered = delivered;
        self.undelivered = undelivered;
        self.failed = failed;
        self
    }

    /// Relative weight of messages that stop at `sent` because the carrier never sends a
    /// delivery receipt (0 unless set, or 2 in [`Chaos::realistic`]).
    pub fn sent_only(mut self, weight: u32) -> Self {
        self.sent_only = weight;
        self
    }

    /// The error codes an `undelivered` outcome picks from, uniformly (default 30003–30008).
    /// An empty list restores the default.
    pub fn undelivered_codes(mut self, codes: &[u16]) -> Self {
        self.undelivered_codes = if codes.is_empty() {
            DEFAULT_UNDELIVERED_CODES.to_vec()
        } else {
            codes.to_vec()
        };
        self
    }

    /// The error codes a `failed` outcome picks from, uniformly (default 30001, 30002).
    /// An empty list restores the default.
    pub fn failed_codes(mut self, codes: &[u16]) -> Self {
        self.failed_codes = if codes.is_empty() {
            DEFAULT_FAILED_CODES.to_vec()
        } else {
            codes.to_vec()
        };
        self
    }

    /// Probability, for each pair of consecutive status callbacks of a message, that the later
    /// status is sent first (clamped to `0.0..=1.0`).
    pub fn reorder(mut self, p: f64) -> Self {
        self.reorder = probability(p);
        self
    }

    /// Probability that a status callback is sent twice (clamped to `0.0..=1.0`).
    pub fn duplicate(mut self, p: f64) -> Self {
        self.duplicate = probability(p);
        self
    }

    /// Probability that a status callback is never sent (clamped to `0.0..=1.0`). Dropped
    /// callbacks still appear in the callback log, marked as dropped.
    pub fn drop(mut self, p: f64) -> Self {
        self.drop = probability(p);
        self
    }

    /// Compresses time for scheduled messages: a message scheduled `d` ahead is sent after
    /// `d * scale` (1.0 = real time, the default; 0.001 sends a message scheduled 15 minutes
    /// ahead after 0.9 s). Negative or NaN values count as 0.
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = if scale.is_nan() { 0.0 } else { scale.max(0.0) };
        self
    }

    /// Gives every message to `recipient` this outcome instead of one drawn from the mix.
    /// `recipient` is a `To` value (`+15558675310`, `whatsapp:+15558675310`; a channel address
    /// also matches its bare number) or a prefix ending in `*` (`+1555*`). The first matching
    /// rule wins; rules do not change the random draws of other messages.
    ///
    /// ```
    /// use twilio_delivery_emulator::{Chaos, Outcome};
    ///
    /// let chaos = Chaos::calm()
    ///     .recipient("+15558675310", Outcome::Undelivered(30003))
    ///     .recipient("+1666*", Outcome::Failed(30001));
    /// assert_eq!(chaos.outcome_for("+16665550000"), Some(Outcome::Failed(30001)));
    /// ```
    pub fn recipient(mut self, recipient: impl Into<String>, outcome: Outcome) -> Self {
        self.rules.push((recipient.into(), outcome));
        self
    }

    /// The outcome a rule set with [`recipient`](Self::recipient) gives messages to `to`, if any.
    pub fn outcome_for(&self, to: &str) -> Option<Outcome> {
        let bare = to.split_once(':').map_or(to, |(_, rest)| rest);
        let matches = |pattern: &str, value: &str| match pattern.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => value == pattern,
        };
        self.rules
            .iter()
            .find(|(pattern, _)| matches(pattern, to) || matches(pattern, bare))
            .map(|(_, outcome)| *outcome)
    }

    /// The `(min, max)` delay before each lifecycle step.
    pub fn step_delay_range(&self) -> (Duration, Duration) {
        self.step_delay
    }

    /// The probability that two consecutive callbacks are swapped.
    pub fn reorder_probability(&self) -> f64 {
        self.reorder
    }

    /// The probability that a callback is sent twice.
    pub fn duplicate_probability(&self) -> f64 {
        self.duplicate
    }

    /// The probability that a callback is never sent.
    pub fn drop_probability(&self) -> f64 {
        self.drop
    }

    /// The factor applied to the wait before a scheduled message is sent.
    pub fn time_scale_factor(&self) -> f64 {
        self.time_scale
    }

    /// Draws a step delay.
    pub(crate) fn draw_delay(&self, rng: &mut fastrand::Rng) -> Duration {
        let (min, max) = self.step_delay;
        let min_us = u64::try_from(min.as_micros()).unwrap_or(u64::MAX);
        let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rng.u64(min_us..=max_us))
    }

    /// Draws a final outcome.
    pub(crate) fn draw_outcome(&self, rng: &mut fastrand::Rng) -> Outcome {
        let weights = [
            u64::from(self.delivered),
            u64::from(self.undelivered),
            u64::from(self.failed),
            u64::from(self.sent_only),
        ];
        let total: u64 = weights.iter().sum();
        if total == 0 {
            return Outcome::Delivered;
        }
        let mut pick = rng.u64(0..total);
        let mut index = 0;
        for (i, w) in weights.iter().enumerate() {
            if pick < *w {
                index = i;
                break;
            }
            pick -= w;
        }
        let choose = |rng: &mut fastrand::Rng, codes: &[u16], fallback: u16| {
            if codes.is_empty() {
                fallback
            } else {
                codes
                    .get(rng.usize(0..codes.len()))
                    .copied()
                    .unwrap_or(fallback)
            }
        };
        match index {
            1 => Outcome::Undelivered(choose(rng, &self.undelivered_codes, 30008)),
            2 => Outcome::Failed(choose(rng, &self.failed_codes, 30001)),
            3 => Outcome::SentOnly,
            _ => Outcome::Delivered,
        }
    }

    /// Draws whether an event with probability `p` happens.
    pub(crate) fn chance(rng: &mut fastrand::Rng, p: f64) -> bool {
        p > 0.0 && rng.f64() < p
    }
}

/// A message's final outcome, drawn from the mix of [`Chaos::outcomes`] or fixed per recipient
/// with [`Chaos::recipient`].
///
/// Parses from `delivered`, `sent` (stuck at `sent`, no delivery receipt), `undelivered[:CODE]`
/// and `failed[:CODE]` (codes default to 30003 and 30001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// `sent`, then `delivered`.
    Delivered,
    /// `sent`, then `undelivered` with this error code.
    Undelivered(u16),
    /// `failed` with this error code.
    Failed(u16),
    /// `sent` and nothing after it.
    SentOnly,
}

impl fmt::Display for Outcome {
    /// The form [`FromStr`] reads: `delivered`, `sent`, `undelivered:CODE`, `failed:CODE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Delivered => f.write_str("delivered"),
            Self::Undelivered(code) => write!(f, "undelivered:{code}"),
            Self::Failed(code) => write!(f, "failed:{code}"),
            Self::SentOnly => f.write_str("sent"),
        }
    }
}

/// Why a string is not an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an outcome (delivered, sent, undelivered[:CODE], failed[:CODE]): {0}")]
pub struct OutcomeParseError(String);

impl FromStr for Outcome {
    type Err = OutcomeParseError;

    /// Parses `delivered`, `sent`, `undelivered[:CODE]` or `failed[:CODE]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || OutcomeParseError(s.to_owned());
        let (kind, code) = match s.trim().split_once(':') {
            Some((kind, code)) => (kind, Some(code.parse::<u16>().map_err(|_| invalid())?)),
            None => (s.trim(), None),
        };
        match (kind, code) {
            ("delivered", None) => Ok(Self::Delivered),
            ("sent", None) => Ok(Self::SentOnly),
            ("undelivered", code) => Ok(Self::Undelivered(code.unwrap_or(30003))),
            ("failed", code) => Ok(Self::Failed(code.unwrap_or(30001))),
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_clamped() {
        let c = Chaos::calm().reorder(2.0).duplicate(-1.0).drop(f64::NAN);
        assert_eq!(c.reorder_probability(), 1.0);
        assert_eq!(c.duplicate_probability(), 0.0);
        assert_eq!(c.drop_probability(), 0.0);
    }

    #[test]
    fn outcome_mix_follows_weights_and_seed() {
        let c = Chaos::calm().outcomes(1, 1, 1).failed_codes(&[30002]);
        let mut rng = fastrand::Rng::with_seed(7);
        let draws: Vec<Outcome> = (0..300).map(|_| c.draw_outcome(&mut rng)).collect();
        for kind in 0..3 {
            let n = draws
                .iter()
                .filter(|o| match kind {
                    0 => matches!(o, Outcome::Delivered),
                    1 => matches!(o, Outcome::Undelivered(30003..=30008)),
                    _ => matches!(o, Outcome::Failed(30002)),
                })
                .count();
            assert!((60..=140).contains(&n), "kind {kind}: {n}");
        }
        let mut again = fastrand::Rng::with_seed(7);
        let replay: Vec<Outcome> = (0..300).map(|_| c.draw_outcome(&mut again)).collect();
        assert_eq!(draws, replay);
        let none = Chaos::calm().outcomes(0, 0, 0);
        assert_eq!(none.draw_outcome(&mut rng), Outcome::Delivered);
    }

    #[test]
    fn recipient_rules_and_outcome_strings() {
        let c = Chaos::calm()
            .recipient("+15550001", Outcome::Failed(30002))
            .recipient("+1555*", Outcome::SentOnly);
        assert_eq!(c.outcome_for("+15550001"), Some(Outcome::Failed(30002)));
        assert_eq!(
            c.outcome_for("whatsapp:+15550001"),
            Some(Outcome::Failed(30002))
        );
        assert_eq!(c.outcome_for("+15559999"), Some(Outcome::SentOnly));
        assert_eq!(c.outcome_for("+4420"), None);
        for (text, outcome) in [
            ("delivered", Outcome::Delivered),
            ("sent", Outcome::SentOnly),
            ("undelivered", Outcome::Undelivered(30003)),
            ("undelivered:30005", Outcome::Undelivered(30005)),
            ("failed:30002", Outcome::Failed(30002)),
        ] {
            assert_eq!(text.parse::<Outcome>(), Ok(outcome));
            assert_eq!(outcome.to_string().parse::<Outcome>(), Ok(outcome));
        }
        for bad in ["", "read", "failed:x", "delivered:1", "sent:30001"] {
            assert!(bad.parse::<Outcome>().is_err(), "{bad}");
        }
    }

    #[test]
    fn delays_stay_in_range() {
        let c = Chaos::calm().step_delay(Duration::from_millis(9), Duration::from_millis(3));
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..100 {
            let d = c.draw_delay(&mut rng);
            assert!(d >= Duration::from_millis(3) && d <= Duration::from_millis(9));
        }
    }
}
