//! Driving a message through its statuses and queueing the callbacks each status triggers.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::callbacks::{self, Delivery, Facts, Payload, Target};
use super::chaos::{Chaos, Outcome};
use super::clock::Mark;
use super::model;
use super::state::{Busy, Shared};
use super::truth::Truth;
use twilio_delivery::ids::MessageSid;
use twilio_delivery::status::MessageStatus;

/// The number a Messaging Service picks as sender when the request named none.
const SERVICE_SENDER: &str = "+15005550006";

/// The sender a Messaging Service picks for a message to `to`: [`SERVICE_SENDER`] on the
/// recipient's channel (`whatsapp:+15005550006` for a `whatsapp:` recipient, likewise `rcs:`),
/// as a service sends from a sender of the message's channel.
pub(crate) fn service_sender(to: &str) -> String {
    match callbacks::channel(to) {
        Some((prefix, _)) => format!("{prefix}:{SERVICE_SENDER}"),
        None => SERVICE_SENDER.to_owned(),
    }
}

/// How a message starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Without a Messaging Service: `queued`.
    Queued,
    /// With a Messaging Service: `accepted`.
    Accepted,
    /// Scheduled: `scheduled`, sent when this much emulated time has passed (see
    /// [`Clock::wait`](super::clock::Clock::wait)).
    Scheduled(Duration),
}

impl Start {
    /// The initial status, returned in the create response (no callback for it).
    pub(crate) fn status(self) -> MessageStatus {
        match self {
            Self::Queued => MessageStatus::Queued,
            Self::Accepted => MessageStatus::Accepted,
            Self::Scheduled(_) => MessageStatus::Scheduled,
        }
    }
}

/// One status change, `at` after the lifecycle starts (after any schedule wait).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) status: MessageStatus,
    pub(crate) error_code: Option<u16>,
    pub(crate) at: Duration,
}

/// One callback to queue: for step `step`, queued at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Send {
    pub(crate) step: usize,
    pub(crate) at: Duration,
    pub(crate) duplicate: bool,
    pub(crate) dropped: bool,
}

/// Everything decided for a message when it is created, from its own random stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) wait: Option<Duration>,
    pub(crate) steps: Vec<Step>,
    pub(crate) sends: Vec<Send>,
    pub(crate) truth: Truth,
}

/// Plans a message's lifecycle: its statuses after the initial one, their delays, and the
/// order, copies and losses of its callbacks. A recipient rule fixes the outcome; it is drawn
/// anyway so the rest of the message's random stream stays the same.
pub(crate) fn plan(chaos: &Chaos, rng: &mut fastrand::Rng, start: Start, to: &str) -> Plan {
    let drawn = chaos.draw_outcome(rng);
    let outcome = chaos.outcome_for(to).unwrap_or(drawn);
    let mut statuses: Vec<(MessageStatus, Option<u16>)> = Vec::with_capacity(3);
    if start != Start::Queued {
        statuses.push((MessageStatus::Queued, None));
    }
    match outcome {
        Outcome::Delivered => {
            statuses.push((MessageStatus::Sent, None));
            statuses.push((MessageStatus::Delivered, None));
        }
        Outcome::Undelivered(code) => {
            statuses.push((MessageStatus::Sent, None));
            statuses.push((MessageStatus::Undelivered, Some(code)));
        }
        Outcome::Failed(code) => statuses.push((MessageStatus::Failed, Some(code))),
        Outcome::SentOnly => statuses.push((MessageStatus::Sent, None)),
    }
    let scheduled = matches!(start, Start::Scheduled(_));
    let mut at = Duration::ZERO;
    let steps: Vec<Step> = statuses
        .into_iter()
        .enumerate()
        .map(|(i, (status, error_code))| {
            // A scheduled message turns `queued` the moment its time comes.
            if !(scheduled && i == 0) {
                at = at.saturating_add(chaos.draw_delay(rng));
            }
            Step {
                status,
                error_code,
                at,
            }
        })
        .collect();

    let mut order: Vec<usize> = (0..steps.len()).collect();
    let mut i = 0;
    while i + 1 < order.len() {
        if Chaos::chance(rng, chaos.reorder_probability()) {
            order.swap(i, i + 1);
            i += 2;
        } else {
            i += 1;
        }
    }
    let mut sends = Vec::with_capacity(order.len() + 1);
    let mut latest = Duration::ZERO;
    for step in order {
        latest = latest.max(steps.get(step).map_or(Duration::ZERO, |s| s.at));
        sends.push(Send {
            step,
            at: latest,
            duplicate: false,
            dropped: Chaos::chance(rng, chaos.drop_probability()),
        });
        if Chaos::chance(rng, chaos.duplicate_probability()) {
            sends.push(Send {
                step,
                at: latest,
                duplicate: true,
                dropped: Chaos::chance(rng, chaos.drop_probability()),
            });
        }
    }
    let truth = steps.last().map_or(
        Truth {
            status: MessageStatus::Delivered,
            error_code: None,
        },
        |s| Truth {
            status: s.status.clone(),
            error_code: s.error_code,
        },
    );
    Plan {
        wait: match start {
            Start::Scheduled(wait) => Some(wait),
            _ => None,
        },
        steps,
        sends,
        truth,
    }
}

/// A created message's lifecycle, ready to run.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    pub(crate) seq: u64,
    /// The epoch the message was created in: a reset stops the lifecycle.
    pub(crate) epoch: u64,
    pub(crate) sid: MessageSid,
    pub(crate) to: String,
    pub(crate) from: Option<String>,
    pub(crate) messaging_service_sid: Option<String>,
    pub(crate) status_callback: Option<Target>,
    pub(crate) plan: Plan,
    pub(crate) cancel: Option<Arc<Notify>>,
    /// The emulated clock when the message was created: a schedule wait counts from it.
    pub(crate) created: Mark,
}

/// What applying a step to the stored message found.
enum Applied {
    /// The step was applied.
    Done,
    /// The message was canceled while scheduled (and maybe deleted since): the lifecycle sends
    /// the `canceled` callback and stops.
    Canceled,
    /// The message was deleted: nothing more happens to it, the lifecycle stops.
    Deleted,
    /// The emulator was reset since the message was created: the lifecycle stops quietly.
    Reset,
}

/// Applies a status change to the stored message.
fn apply(
    shared: &Shared,
    life: &Lifecycle,
    step: &Step,
    from: Option<&str>,
    now: OffsetDateTime,
) -> Applied {
    let mut inner = shared.lock();
    if inner.epoch != life.epoch {
        return Applied::Reset;
    }
    let Some(m) = inner.by_seq_mut(life.seq) else {
        // Only a canceled or finished message can be deleted; its truth outlives it.
        let canceled = inner
            .truth
            .get(&life.seq)
            .is_some_and(|(_, t)| t.status == MessageStatus::Canceled);
        return if canceled {
            Applied::Canceled
        } else {
            Applied::Deleted
        };
    };
    if m.status == MessageStatus::Canceled {
        return Applied::Canceled;
    }
    m.status = step.status.clone();
    m.error_code = step.error_code;
    m.date_updated = now;
    if m.from.is_none() {
        m.from = from.map(str::to_owned);
    }
    match step.status {
        MessageStatus::Sent => {
            m.date_sent = Some(now);
            m.price = Some(model::price(m.segments, m.num_media));
        }
        MessageStatus::Delivered | MessageStatus::Undelivered => {
            m.date_sent.get_or_insert(now);
            if m.price.is_none() {
                m.price = Some(model::price(m.segments, m.num_media));
            }
        }
        _ => {}
    }
    Applied::Done
}

/// Marks the stored message's lifecycle as over (it may then be deleted even if `sent`).
fn finish(shared: &Shared, life: &Lifecycle) {
    let mut inner = shared.lock();
    if inner.epoch != life.epoch {
        return;
    }
    inner.live.remove(&life.seq);
    if let Some(m) = inner.by_seq_mut(life.seq) {
        m.lifecycle_done = true;
    }
}

/// What the callbacks of a lifecycle say about its message.
fn facts<'a>(
    shared: &'a Shared,
    life: &'a Lifecycle,
    account_sid: &'a str,
    from: Option<&'a str>,
) -> Facts<'a> {
    Facts {
        account_sid,
        sid: &life.sid,
        to: &life.to,
        from,
        messaging_service_sid: life.messaging_service_sid.as_deref(),
        channel_install_sid: &shared.settings.channel_install_sid,
    }
}

/// Waits for a scheduled message's time (emulated: scaled and advanced, see
/// [`Clock::wait`](super::clock::Clock::wait)), its cancellation, or a shutdown or reset
/// (`false`).
async fn wait_for_schedule(
    shared: &Shared,
    since: Mark,
    ahead: Duration,
    cancel: Option<&Notify>,
    epoch: u64,
) -> bool {
    let canceled = async {
        match cancel {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    };
    let scale = shared.settings.chaos.time_scale_factor();
    tokio::select! {
        () = shared.clock.wait(since, ahead, scale) => true,
        () = canceled => true,
        () = shared.halted(epoch) => false,
    }
}

/// Sleeps until `at` after `origin` (forever, in effect, if that cannot be represented).
async fn sleep_until(origin: Instant, at: Duration) {
    match origin.checked_add(at) {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => tokio::time::sleep(Duration::MAX).await,
    }
}

/// Runs a message's lifecycle: waits for its schedule, applies each status at its time, and
/// hands each callback to the message's sender in the planned order.
pub(crate) async fn drive(shared: Arc<Shared>, life: Lifecycle, _busy: Busy) {
    let queue = life.status_callback.clone().map(|target| {
        let (tx, rx) = mpsc::unbounded_channel::<Delivery>();
        let busy = shared.activity.enter();
        tokio::spawn(callbacks::sender(
            Arc::clone(&shared),
            target,
            life.epoch,
            rx,
            busy,
        ));
        tx
    });
    let enqueue = |delivery: Delivery| {
        if let Some(tx) = &queue {
            let _ = tx.send(delivery);
        }
    };
    let account = shared.credentials.account_sid.as_str().to_owned();
    let mut from = life.from.clone();

    if let Some(wait) = life.plan.wait
        && !wait_for_schedule(
            &shared,
            life.created,
            wait,
            life.cancel.as_deref(),
            life.epoch,
        )
        .await
    {
        return;
    }

    // Status changes come before the callbacks queued at the same instant.
    let mut events: Vec<(Duration, bool, usize)> = life
        .plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.at, false, i))
        .chain(
            life.plan
                .sends
                .iter()
                .enumerate()
                .map(|(j, s)| (s.at, true, j)),
        )
        .collect();
    events.sort_by_key(|&(at, is_send, _)| (at, is_send));

    let origin = Instant::now();
    let mut payloads: Vec<Option<Payload>> = vec![None; life.plan.steps.len()];
    for (at, is_send, index) in events {
        tokio::select! {
            () = sleep_until(origin, at) => {}
            () = shared.halted(life.epoch) => return,
        }
        if is_send {
            let Some(send) = life.plan.sends.get(index) else {
                continue;
            };
            if let Some(Some(payload)) = payloads.get(send.step) {
                enqueue(Delivery {
                    payload: payload.clone(),
                    duplicate: send.duplicate,
                    dropped: send.dropped,
                });
            }
            continue;
        }
        let Some(step) = life.plan.steps.get(index) else {
            continue;
        };
        if step.status == MessageStatus::Queued && from.is_none() {
            from = Some(service_sender(&life.to));
        }
        let now = shared.clock.now();
        match apply(&shared, &life, step, from.as_deref(), now) {
            Applied::Done => {
                if let Some(slot) = payloads.get_mut(index) {
                    *slot = Some(Payload::new(
                        &facts(&shared, &life, &account, from.as_deref()),
                        &step.status,
                        step.error_code,
                        now,
                    ));
                }
            }
            Applied::Reset => return,
            Applied::Deleted => break,
            Applied::Canceled => {
                // A Messaging Service message canceled before it had a sender: Twilio does not
                // document the callback's `From`; the emulator names the sender the service
                // would have picked, so that `From` is present as in every other callback.
                let sender = life
                    .from
                    .clone()
                    .unwrap_or_else(|| service_sender(&life.to));
                enqueue(Delivery {
                    payload: Payload::new(
                        &facts(&shared, &life, &account, Some(&sender)),
                        &MessageStatus::Canceled,
                        None,
                        now,
                    ),
                    duplicate: false,
                    dropped: false,
                });
                break;
            }
        }
    }
    finish(&shared, &life);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(p: &Plan) -> Vec<&str> {
        p.steps.iter().map(|s| s.status.as_str()).collect()
    }

    #[test]
    fn lifecycles_by_start_and_outcome() {
        let mut rng = fastrand::Rng::with_seed(3);
        let calm = Chaos::calm();
        assert_eq!(
            statuses(&plan(&calm, &mut rng, Start::Queued, "+1")),
            ["sent", "delivered"]
        );
        assert_eq!(
            statuses(&plan(&calm, &mut rng, Start::Accepted, "+1")),
            ["queued", "sent", "delivered"]
        );
        let failing = Chaos::calm().outcomes(0, 0, 1);
        let p = plan(&failing, &mut rng, Start::Queued, "+1");
        assert_eq!(statuses(&p), ["failed"]);
        assert_eq!(p.truth.status, MessageStatus::Failed);
        assert!(matches!(p.truth.error_code, Some(30001 | 30002)));
        let undelivered = Chaos::calm().outcomes(0, 1, 0);
        let p = plan(
            &undelivered,
            &mut rng,
            Start::Scheduled(Duration::from_secs(1)),
            "+1",
        );
        assert_eq!(statuses(&p), ["queued", "sent", "undelivered"]);
        assert_eq!(p.steps[0].at, Duration::ZERO);
        assert_eq!(p.wait, Some(Duration::from_secs(1)));
    }

    #[test]
    fn calm_sends_each_callback_once_in_order() {
        let mut rng = fastrand::Rng::with_seed(9);
        let p = plan(&Chaos::calm(), &mut rng, Start::Accepted, "+1");
        let order: Vec<usize> = p.sends.iter().map(|s| s.step).collect();
        assert_eq!(order, [0, 1, 2]);
        assert!(p.sends.iter().all(|s| !s.duplicate && !s.dropped));
        assert!(p.steps.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn reorder_sends_later_status_first_never_before_it_happened() {
        let chaos = Chaos::calm().reorder(1.0);
        let mut rng = fastrand::Rng::with_seed(1);
        let p = plan(&chaos, &mut rng, Start::Queued, "+1");
        let order: Vec<usize> = p.sends.iter().map(|s| s.step).collect();
        assert_eq!(order, [1, 0]);
        for s in &p.sends {
            assert!(s.at >= p.steps[s.step].at);
        }
    }

    #[test]
    fn duplicates_and_drops() {
        let chaos = Chaos::calm().duplicate(1.0).drop(1.0);
        let mut rng = fastrand::Rng::with_seed(1);
        let p = plan(&chaos, &mut rng, Start::Queued, "+1");
        assert_eq!(p.sends.len(), 4);
        assert_eq!(p.sends.iter().filter(|s| s.duplicate).count(), 2);
        assert!(p.sends.iter().all(|s| s.dropped));
    }

    #[test]
    fn recipient_rules_fix_the_outcome_without_changing_the_stream() {
        let chaos = Chaos::calm().recipient("+2*", Outcome::Undelivered(30005));
        let ruled = plan(
            &chaos,
            &mut fastrand::Rng::with_seed(5),
            Start::Queued,
            "+21",
        );
        assert_eq!(statuses(&ruled), ["sent", "undelivered"]);
        assert_eq!(ruled.truth.error_code, Some(30005));
        let free = plan(
            &chaos,
            &mut fastrand::Rng::with_seed(5),
            Start::Queued,
            "+31",
        );
        assert_eq!(statuses(&free), ["sent", "delivered"]);
        assert_eq!(ruled.steps[0].at, free.steps[0].at, "same delays drawn");
    }

    #[test]
    fn a_service_sender_is_on_the_recipients_channel() {
        assert_eq!(service_sender("+15558675310"), "+15005550006");
        assert_eq!(
            service_sender("whatsapp:+15558675310"),
            "whatsapp:+15005550006"
        );
        assert_eq!(service_sender("rcs:+15558675310"), "rcs:+15005550006");
    }

    #[test]
    fn same_seed_same_plan() {
        let chaos = Chaos::realistic();
        let a = plan(
            &chaos,
            &mut fastrand::Rng::with_seed(42),
            Start::Accepted,
            "+1",
        );
        let b = plan(
            &chaos,
            &mut fastrand::Rng::with_seed(42),
            Start::Accepted,
            "+1",
        );
        assert_eq!(a, b);
    }
}
