//! A local fake of Twilio's Messages API that drives messages through their lifecycle and sends
//! signed status callbacks: test an app without an account, a phone or a public URL.
//!
//! The emulator speaks the Messages API as Twilio does (paths under `/2010-04-01/Accounts/{AccountSid}/`,
//! HTTP Basic auth with the auth token or an API key, form bodies, Twilio's JSON shapes and
//! error JSON, 201 on create, magic test numbers), then moves each message through a realistic
//! lifecycle (`queued` → `sent` → `delivered`, or `accepted` → `queued` → … with a Messaging
//! Service, or `scheduled` until `SendAt`) and POSTs a signed callback to its `StatusCallback`
//! for every status after the first, honouring Twilio's connection overrides
//! (`#ct`, `#rt`, `#tt`, `#rc`, `#rp` in the URL fragment).
//!
//! Every random choice comes from a seed ([`EmulatorBuilder::seed`]); [`Chaos`] sets delays,
//! the outcome mix (or a fixed [`Outcome`] per recipient, [`Chaos::recipient`]) and how badly
//! callbacks behave. The handle exposes the truth ([`EmulatorHandle::truth`]) and every callback
//! attempt ([`EmulatorHandle::callback_log`]) so a test can check that an app converged;
//! [`EmulatorHandle::advance_time`] sends scheduled messages early and
//! [`EmulatorHandle::reset`] starts a fresh run.
//!
//! Callbacks are requested at exactly the configured `StatusCallback` (path and query byte for
//! byte, nothing re-encoded) and signed over that same string, as Twilio does; a
//! `StatusCallback` that is not a valid, properly encoded URL is refused with 21609.
//!
//! Where Twilio's behaviour is not documented, the emulator picks one and says so (the crate's
//! README lists every such choice): parameters it cannot accept get Twilio's generic code
//! 20001; a non-form body (JSON) carries no parameters, so a JSON create fails with 21604 as on
//! Twilio.
//!
//! It also plays the other direction: [`EmulatorHandle::deliver_inbound`] posts Twilio's signed
//! incoming-message webhook ([`Inbound`]: `From`, `To`, `Body`, media, `OptOutType` for the
//! default opt-out keywords, WhatsApp fields) to an app and returns its answer (the TwiML),
//! sending the `<Message>` replies it asks for; [`EmulatorHandle::redeliver_inbound`] repeats a
//! delivery with the same `MessageSid`, as Twilio's retries do.
//!
//! Besides the Twilio API, the emulator serves a few admin endpoints under `/emulator/` (the
//! truth, the callback log, advancing time, reset, incoming messages) so that tests in any
//! language can use it;
//! the `twilio-emulator` binary runs it standalone.
//!
//! ```no_run
//! # async fn demo() -> Result<(), twilio_delivery_emulator::EmulatorError> {
//! use twilio_delivery_emulator::{Chaos, Emulator};
//!
//! let emulator = Emulator::builder()
//!     .seed(7)
//!     .chaos(Chaos::realistic())
//!     .start()
//!     .await?;
//! println!("point your client at {}", emulator.base_url());
//! // ... send messages with StatusCallback URLs on 127.0.0.1, then:
//! emulator.wait_idle(std::time::Duration::from_secs(30)).await?;
//! for (sid, truth) in emulator.truth() {
//!     println!("{sid}: {}", truth.status);
//! }
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod admin;
mod api;
mod api_error;
mod auth;
mod callback_url;
mod callbacks;
mod chaos;
mod clock;
mod dates;
mod feedback;
mod inbound;
mod lifecycle;
mod media;
mod messages;
mod model;
mod paging;
mod segments;
mod state;
mod transport;
mod truth;
mod twiml;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use chaos::{Chaos, Outcome, OutcomeParseError};
pub use inbound::{DEFAULT_PROFILE_NAME, Inbound, InboundDelivery, TwimlReply};
pub use truth::{AttemptOutcome, CallbackAttempt, Truth};

use auth::Credentials;
use state::{Settings, Shared, hex32, mix};
use twilio_delivery::ids::{AccountSid, ApiKeySid, MessageSid};
use twilio_delivery::secret::{ApiKeySecret, AuthToken};

/// Why the emulator could not start, or did not become idle in time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The listening socket could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The default status callback is not a URL Twilio would accept (error 21609: not a valid,
    /// properly encoded `http`/`https` URL of at most 4000 characters).
    #[error("the default status callback is not a valid URL")]
    InvalidStatusCallback,
    /// An incoming message the emulator cannot deliver: its webhook URL is not a valid,
    /// properly encoded `http`/`https` URL of at most 4000 characters (checked as a
    /// `StatusCallback` is), `From` or `To` is empty, or it has more than 10 media items.
    #[error("invalid inbound message: {0}")]
    InvalidInbound(String),
    /// The app never answered an incoming message: every attempt failed to connect, timed out
    /// or broke off (each is in [`EmulatorHandle::inbound_log`]).
    #[error("the incoming message {message_sid} got no answer: {outcome}")]
    InboundNotAnswered {
        /// The `MessageSid` sent.
        message_sid: MessageSid,
        /// How the last attempt ended.
        outcome: AttemptOutcome,
    },
    /// [`EmulatorHandle::redeliver_inbound`] was given a `MessageSid` the inbound log does not
    /// hold (never delivered, forgotten by a reset, or dropped beyond the log's cap).
    #[error("no incoming message {0} was delivered")]
    UnknownInbound(MessageSid),
    /// [`EmulatorHandle::wait_idle`] timed out with work still in flight.
    #[error("emulator still busy after the timeout ({busy} tasks in flight)")]
    NotIdle {
        /// Lifecycles and callback senders still running.
        busy: usize,
    },
}

/// The entry point: [`Emulator::builder`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Emulator;

impl Emulator {
    /// A builder with the defaults: 127.0.0.1, a free port, a random seed, credentials derived
    /// from the seed, [`Chaos::calm`], at most 10 000 stored messages.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }
}

/// Configures and starts an emulator.
#[derive(Debug, Clone)]
#[must_use]
pub struct EmulatorBuilder {
    ip: IpAddr,
    port: u16,
    seed: Option<u64>,
    account_sid: Option<AccountSid>,
    auth_token: Option<AuthToken>,
    api_keys: Vec<(ApiKeySid, ApiKeySecret)>,
    chaos: Chaos,
    max_messages: usize,
    max_callback_log: usize,
    max_log_bytes: usize,
    default_status_callback: Option<String>,
}

impl Default for EmulatorBuilder {
    /// The defaults of [`Emulator::builder`].
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            seed: None,
            account_sid: None,
            auth_token: None,
            api_keys: Vec::new(),
            chaos: Chaos::default(),
            max_messages: 10_000,
            max_callback_log: 100_000,
            max_log_bytes: 64 << 20,
            default_status_callback: None,
        }
    }
}

impl EmulatorBuilder {
    /// The port to listen on (0, the default, picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The address to listen on (default 127.0.0.1; `0.0.0.0` to serve a container's network).
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = ip;
        self
    }

    /// The seed of every random choice: SIDs, credentials not given explicitly, outcomes,
    /// delays and callback chaos. The same seed and the same requests give the same run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The account SID (default: derived from the seed).
    pub fn account_sid(mut self, account_sid: AccountSid) -> Self {
        self.account_sid = Some(account_sid);
        self
    }

    /// The auth token: the Basic-auth password and the key callbacks are signed with
    /// (default: derived from the seed).
    pub fn auth_token(mut self, auth_token: AuthToken) -> Self {
        self.auth_token = Some(auth_token);
        self
    }

    /// Also accepts Basic auth with this API key (`SK…` as user, its secret as password).
    /// Callbacks are still signed with the auth token, as Twilio does.
    pub fn api_key(mut self, sid: ApiKeySid, secret: ApiKeySecret) -> Self {
        self.api_keys.push((sid, secret));
        self
    }

    /// Delays, outcomes and callback chaos (default [`Chaos::calm`]).
    pub fn chaos(mut self, chaos: Chaos) -> Self {
        self.chaos = chaos;
        self
    }

    /// The most messages kept (oldest evicted first) and the most lifecycles in flight
    /// (beyond it, creates answer 429 with code 20429). Default 10 000.
    pub fn max_messages(mut self, max: usize) -> Self {
        self.max_messages = max.max(1);
        self
    }

    /// The most callback attempts kept in the log, and incoming-message deliveries in theirs
    /// (oldest dropped first). Default 100 000.
    pub fn max_callback_log(mut self, max: usize) -> Self {
        self.max_callback_log = max.max(1);
        self
    }

    /// The most bytes each of those two logs keeps, counted as the text its entries hold (URLs,
    /// parameters such as an incoming message's `Body`, the app's answers) plus a small
    /// overhead per entry; beyond it the oldest entries are dropped, the newest always kept.
    /// Default 64 MiB.
    pub fn max_log_bytes(mut self, bytes: usize) -> Self {
        self.max_log_bytes = bytes;
        self
    }

    /// The status callback for messages created without `StatusCallback`, as a Messaging
    /// Service's configured callback would be (default: none, no callbacks for them). Checked
    /// by [`start`](Self::start) as Twilio checks a `StatusCallback`.
    pub fn default_status_callback(mut self, url: impl Into<String>) -> Self {
        self.default_status_callback = Some(url.into());
        self
    }

    /// Binds the socket and starts serving on the current Tokio runtime.
    ///
    /// # Errors
    /// [`EmulatorError::Bind`] when the address cannot be bound (port in use, no permission);
    /// [`EmulatorError::InvalidStatusCallback`] when the default status callback is not a valid
    /// URL.
    pub async fn start(self) -> Result<EmulatorHandle, EmulatorError> {
        let default_status_callback = self
            .default_status_callback
            .as_deref()
            .map(|url| callbacks::Target::parse(url).ok_or(EmulatorError::InvalidStatusCallback))
            .transpose()?;
        let seed = self.seed.unwrap_or_else(|| fastrand::u64(..));
        let mut rng = fastrand::Rng::with_seed(mix(seed ^ 0x00AC_C0DE));
        // `hex32` always yields 32 hex digits: the loop ends on its first turn.
        let generated_sid = loop {
            if let Ok(sid) = AccountSid::new(format!("AC{}", hex32(&mut rng))) {
                break sid;
            }
        };
        let generated_token = hex32(&mut rng);
        let default_service_sid = format!("MG{}", hex32(&mut rng));
        let channel_install_sid = format!("XE{}", hex32(&mut rng));
        let account_sid = self.account_sid.unwrap_or(generated_sid);
        let auth_token = self
            .auth_token
            .unwrap_or_else(|| AuthToken::new(generated_token));

        let addr = SocketAddr::new(self.ip, self.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind { addr, source })?;

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(
            Credentials {
                account_sid: account_sid.clone(),
                auth_token: auth_token.clone(),
                api_keys: self.api_keys,
            },
            Settings {
                seed,
                chaos: self.chaos,
                max_messages: self.max_messages,
                max_log: self.max_callback_log,
                max_log_bytes: self.max_log_bytes,
                default_status_callback,
                default_service_sid,
                channel_install_sid,
            },
            shutdown_rx,
        ));
        let app = api::router(Arc::clone(&shared));
        let stop = Arc::clone(&shared);
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app)
                .with_graceful_shutdown(async move { callbacks::shutdown_signal(&stop).await });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "emulator server stopped");
            }
        });
        tracing::info!(%local_addr, account_sid = %account_sid, "twilio emulator listening");
        Ok(EmulatorHandle {
            shared,
            local_addr,
            account_sid,
            auth_token,
            shutdown: shutdown_tx,
            server: Some(server),
        })
    }
}

/// A running emulator. Dropping it stops the server and every lifecycle, like
/// [`shutdown`](Self::shutdown) without waiting.
#[must_use = "dropping the handle stops the emulator"]
pub struct EmulatorHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    account_sid: AccountSid,
    auth_token: AuthToken,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

impl fmt::Debug for EmulatorHandle {
    /// The address, account, seed and a redacted token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("local_addr", &self.local_addr)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &self.auth_token)
            .field("seed", &self.shared.settings.seed)
            .finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// The base URL to give a Twilio client instead of `https://api.twilio.com`, e.g.
    /// `http://127.0.0.1:41234` (no trailing slash). When listening on an unspecified address
    /// (`0.0.0.0`), the URL names 127.0.0.1.
    pub fn base_url(&self) -> String {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.local_addr.port()))
    }

    /// The address the emulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The account SID requests must use (in the path and as the Basic-auth user).
    pub fn account_sid(&self) -> &AccountSid {
        &self.account_sid
    }

    /// The auth token: the Basic-auth password and the key callbacks are signed with.
    pub fn auth_token(&self) -> &AuthToken {
        &self.auth_token
    }

    /// The seed in use (print it to reproduce a failing run).
    pub fn seed(&self) -> u64 {
        self.shared.settings.seed
    }

    /// The final status the emulator intends for every message it created (cancellation
    /// included), by SID.
    pub fn truth(&self) -> BTreeMap<MessageSid, Truth> {
        self.shared
            .lock()
            .truth
            .values()
            .map(|(sid, truth)| (sid.clone(), truth.clone()))
            .collect()
    }

    /// Every callback attempt so far (dropped and duplicated ones included), in the order they
    /// finished; the oldest are dropped beyond [`EmulatorBuilder::max_callback_log`] entries or
    /// [`EmulatorBuilder::max_log_bytes`].
    pub fn callback_log(&self) -> Vec<CallbackAttempt> {
        self.shared.lock().log.iter().cloned().collect()
    }

    /// Delivers an incoming message to an app, as Twilio does when someone texts one of its
    /// numbers: `POST`s the signed incoming-message webhook (Twilio's documented parameters,
    /// `X-Twilio-Signature` over exactly the configured URL with the auth token) and waits for
    /// the answer, retrying as the URL's connection overrides say (by default one retry of a
    /// failed connection). Returns the last attempt: the app's HTTP status, content type and
    /// body (its TwiML). When a 2xx answer is TwiML with `<Message>` elements, or `text/plain`,
    /// the replies are sent as outbound messages (from the number that received, to the
    /// sender, unless the element says otherwise) and listed in
    /// [`InboundDelivery::replies`]. Every attempt is recorded in
    /// [`inbound_log`](Self::inbound_log).
    ///
    /// The webhook is sent over plain `http` only (see the crate README's limits).
    ///
    /// ```no_run
    /// # async fn demo(emulator: &twilio_delivery_emulator::EmulatorHandle)
    /// # -> Result<(), twilio_delivery_emulator::EmulatorError> {
    /// use twilio_delivery_emulator::Inbound;
    ///
    /// let inbound = Inbound::new("http://127.0.0.1:3000/sms", "+15558675310", "+15005550006", "STOP");
    /// let delivery = emulator.deliver_inbound(inbound).await?;
    /// assert_eq!(delivery.param("OptOutType"), Some("STOP"));
    /// println!("{:?} {}", delivery.status(), delivery.body);
    /// // Twilio retries: the same MessageSid again.
    /// emulator.redeliver_inbound(&delivery.message_sid).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`EmulatorError::InvalidInbound`] when the message is refused before sending (an invalid
    /// URL, an empty `From` or `To`, more than 10 media items);
    /// [`EmulatorError::InboundNotAnswered`] when no attempt got an HTTP answer.
    pub async fn deliver_inbound(
        &self,
        inbound: Inbound,
    ) -> Result<InboundDelivery, EmulatorError> {
        inbound::deliver(&self.shared, &inbound).await
    }

    /// Delivers an incoming message again, exactly as its last delivery (same URL, same
    /// `MessageSid` and parameters, a new idempotency token): the duplicate delivery Twilio
    /// makes when it retries. The app's replies are sent again if it answers TwiML again.
    ///
    /// # Errors
    /// [`EmulatorError::UnknownInbound`] when the log holds no delivery of `sid`; otherwise as
    /// [`deliver_inbound`](Self::deliver_inbound).
    pub async fn redeliver_inbound(
        &self,
        sid: &MessageSid,
    ) -> Result<InboundDelivery, EmulatorError> {
        inbound::redeliver(&self.shared, sid).await
    }

    /// Every incoming-message delivery attempt so far (retries and redeliveries included), in
    /// the order they finished. Capped like the callback log.
    pub fn inbound_log(&self) -> Vec<InboundDelivery> {
        self.shared.lock().inbound_log.iter().cloned().collect()
    }

    /// Waits until every lifecycle and callback (retries included) is done: scheduled messages
    /// included, so compress time with [`Chaos::time_scale`] when scheduling.
    ///
    /// # Errors
    /// [`EmulatorError::NotIdle`] when work is still in flight after `timeout`.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), EmulatorError> {
        self.shared
            .activity
            .wait_idle(timeout)
            .await
            .map_err(|busy| EmulatorError::NotIdle { busy })
    }

    /// Moves the emulated clock forward: scheduled messages whose `SendAt` comes within `by`
    /// are sent now, and dates the API reports move along (the same as the admin endpoint
    /// `POST /emulator/time/advance`). The clock stops at the end of the year 9999, the last
    /// date the API can show: an advance beyond it goes only that far (the admin endpoint
    /// refuses it with 20001).
    pub fn advance_time(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// Forgets every message, truth, callback attempt and incoming-message delivery, stops the
    /// lifecycles and callbacks in flight and rewinds the clock and the SID sequences: the next
    /// request starts the run of the same seed afresh (the same as `POST /emulator/reset`).
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting requests, stops every lifecycle and callback, and waits for the server
    /// to finish the requests in progress.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for EmulatorHandle {
    /// Signals shutdown without waiting.
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    /// Compiled, never run: the public futures are `Send`, so they can be spawned.
    fn handle_futures_are_send(handle: EmulatorHandle) {
        is_send(&handle.wait_idle(Duration::ZERO));
        is_send(&handle.deliver_inbound(Inbound::new("http://h/", "+1", "+2", "")));
        is_send(
            &handle
                .redeliver_inbound(&MessageSid::new("SM0123456789abcdef0123456789abcdef").unwrap()),
        );
        is_send(&handle.shutdown());
    }

    #[test]
    fn public_futures_are_send() {
        is_send(&Emulator::builder().start());
        let _ = handle_futures_are_send;
    }

    #[test]
    fn debug_hides_the_auth_token() {
        let b = Emulator::builder().auth_token(AuthToken::new("s3cret-token"));
        assert!(!format!("{b:?}").contains("s3cret"));
    }
}
