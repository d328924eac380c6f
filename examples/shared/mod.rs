//! What `axum_app`, `actix_app` and `warp_app` share: configuration from the environment,
//! logging, the store, error reports, the shutdown signal, and the two admin actions (send a
//! message with the endpoint's status callback and record it; show a message and its
//! history). Setting up the crate (endpoint, webhooks, client, reconciler) is in each example
//! file, around its framework's routing.

#![allow(dead_code)] // each example uses its own subset

#[cfg(any(feature = "axum", feature = "warp"))]
pub(crate) mod serve;

use std::error::Error;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use twilio_delivery::model::{HistoryEntry, MessageRecord};
use twilio_delivery::optout::OptOutList;
use twilio_delivery::store::StatusStore;
use twilio_delivery::{AccountSid, AuthToken, Client, MessageSid, PublicEndpoint, SendMessage};
use url::Url;

/// The app's configuration, from environment variables.
pub(crate) struct Config {
    /// `TWILIO_ACCOUNT_SID`.
    pub(crate) account_sid: AccountSid,
    /// `TWILIO_AUTH_TOKEN` (never printed).
    pub(crate) auth_token: AuthToken,
    /// `TWILIO_FROM`: the sender.
    pub(crate) from: String,
    /// `PUBLIC_BASE_URL`: where the internet reaches the public listener, as Twilio calls it.
    pub(crate) public_base_url: String,
    /// `DATABASE_URL` (default `sqlite:twilio-delivery.db`).
    pub(crate) database_url: String,
    /// `TWILIO_API_BASE`: e.g. the local emulator instead of api.twilio.com.
    pub(crate) api_base: Option<Url>,
    /// `BIND_ADDR` (default `127.0.0.1:3000`): the public listener, the Twilio webhook only.
    pub(crate) bind_addr: SocketAddr,
    /// `ADMIN_ADDR` (default `127.0.0.1:3001`): sending, message views, status page. Keep it
    /// off the internet: it sends SMS on request and shows every recipient's number.
    pub(crate) admin_addr: SocketAddr,
}

/// The value of a variable that must be set.
fn required(name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
        _ => Err(format!("missing environment variable {name}")),
    }
}

/// The value of a variable that may be unset.
fn optional(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn addr(name: &str, default: &str) -> Result<SocketAddr, String> {
    let value = optional(name).unwrap_or_else(|| default.into());
    value
        .parse()
        .map_err(|_| format!("{name} is not an address: {value}"))
}

impl Config {
    /// Reads `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, `TWILIO_FROM`, `PUBLIC_BASE_URL`,
    /// `DATABASE_URL`, `TWILIO_API_BASE`, `BIND_ADDR` and `ADMIN_ADDR`.
    pub(crate) fn from_env() -> Result<Config, String> {
        let account_sid = required("TWILIO_ACCOUNT_SID")?;
        let api_base = optional("TWILIO_API_BASE")
            .map(|v| Url::parse(&v).map_err(|e| format!("TWILIO_API_BASE is not a URL: {e}")))
            .transpose()?;
        Ok(Config {
            account_sid: AccountSid::new(account_sid)
                .map_err(|e| format!("TWILIO_ACCOUNT_SID is not an account SID: {e}"))?,
            auth_token: AuthToken::new(required("TWILIO_AUTH_TOKEN")?),
            from: required("TWILIO_FROM")?,
            // Kept as a string: Twilio signs it exactly as written (host case included).
            public_base_url: required("PUBLIC_BASE_URL")?,
            database_url: optional("DATABASE_URL")
                .unwrap_or_else(|| "sqlite:twilio-delivery.db".into()),
            api_base,
            bind_addr: addr("BIND_ADDR", "127.0.0.1:3000")?,
            admin_addr: addr("ADMIN_ADDR", "127.0.0.1:3001")?,
        })
    }

    /// The public endpoint at `route` under `PUBLIC_BASE_URL`; the error names the variable.
    pub(crate) fn endpoint(&self, route: &str) -> Result<PublicEndpoint, String> {
        PublicEndpoint::new(&self.public_base_url, route)
            .map_err(|e| format!("PUBLIC_BASE_URL is not usable: {e}"))
    }
}

/// A listener on `addr`, the value of the variable `name`; the error names the variable.
pub(crate) async fn listen(
    name: &str,
    addr: SocketAddr,
) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {name} {addr}: {e}"))
}

/// `error` followed by each of its causes (`source()`), joined by ": ": a store that cannot
/// be opened reports why ("store unavailable: ... unable to open database file"), not only
/// that it is unavailable. A cause whose text the message already holds is not repeated.
pub(crate) fn report(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Logs to stderr, filtered by `RUST_LOG` (default: this crate at `info`, refusals and store
/// errors included). The crate never logs tokens, bodies, phone numbers or query strings.
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// What the examples need of a store: message records and the opt-out list. Every store of
/// the crate is both.
pub(crate) trait Store: StatusStore + OptOutList {}

impl<S: StatusStore + OptOutList> Store for S {}

/// Opens the store `DATABASE_URL` names (`sqlite:...`, or `postgres://...` with the `postgres`
/// feature) and creates its tables if needed.
pub(crate) async fn open_store(database_url: &str) -> Result<Arc<dyn Store>, Box<dyn Error>> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            let store = twilio_delivery::store::PostgresStore::connect(database_url).await?;
            store.migrate().await?;
            return Ok(Arc::new(store));
        }
        #[cfg(not(feature = "postgres"))]
        return Err("DATABASE_URL is a PostgreSQL URL: build with --features postgres".into());
    }
    let store = twilio_delivery::store::SqliteStore::connect(database_url).await?;
    store.migrate().await?;
    Ok(Arc::new(store))
}

/// The body of `POST /send`.
#[derive(Deserialize)]
pub(crate) struct SendRequest {
    /// The recipient.
    pub(crate) to: String,
    /// The text.
    pub(crate) body: String,
}

/// A failed admin request: the HTTP status to answer and a message for the caller.
pub(crate) struct AppError {
    /// The HTTP status code.
    pub(crate) status: u16,
    /// `{"error": "..."}`.
    pub(crate) body: Value,
}

/// An [`AppError`] with `status` and `message`.
pub(crate) fn error(status: u16, message: impl std::fmt::Display) -> AppError {
    AppError {
        status,
        body: json!({ "error": message.to_string() }),
    }
}

/// The answer to a failed send: 400 for a request refused locally, 409 for a recipient who
/// opted out, 503 when the opt-out list could not be read, 422 when Twilio refused the message,
/// 502 when Twilio could not be reached.
pub(crate) fn send_error(e: twilio_delivery::Error) -> AppError {
    if matches!(e, twilio_delivery::Error::InvalidRequest { .. }) {
        error(400, e)
    } else if matches!(e, twilio_delivery::Error::OptedOut) {
        error(409, "the recipient opted out (STOP); nothing was sent")
    } else if matches!(e, twilio_delivery::Error::OptOutList(_)) {
        tracing::error!(error = %report(&e), "send refused");
        error(503, "the opt-out list could not be read; nothing was sent")
    } else if e.http_status().is_some_and(|s| s < 500) {
        error(422, format_args!("twilio refused the message: {e}"))
    } else {
        error(502, format_args!("twilio request failed: {}", report(&e)))
    }
}

/// What the admin routes share. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    /// The Twilio client.
    pub(crate) client: Client,
    /// Where records live.
    pub(crate) store: Arc<dyn StatusStore>,
    /// The status callback sent with every message.
    pub(crate) endpoint: PublicEndpoint,
    /// The sender.
    pub(crate) from: String,
}

/// `POST /send`: sends the message with the endpoint's status callback, then records it.
pub(crate) async fn send(state: &AppState, request: SendRequest) -> Result<Value, AppError> {
    let message = SendMessage::new(request.to)
        .from(state.from.as_str())
        .body(request.body)
        .status_callback(&state.endpoint);
    let sent = state
        .client
        .messages()
        .create(&message)
        .await
        .map_err(send_error)?;
    // A callback may already have created the record: record_sent merges into it. `false`:
    // the text is not stored; `true` would keep every message's text in the store (personal
    // data, one-time codes), which nothing here reads.
    state
        .store
        .record_sent(&sent.to_sent_message(false))
        .await
        .map_err(|e| {
            error(
                503,
                format_args!("sent as {}, but not recorded: {}", sent.sid, report(&e)),
            )
        })?;
    Ok(json!({ "sid": sent.sid, "status": sent.status.to_string() }))
}

/// `GET /messages/{sid}`: the message's current status and every status received.
pub(crate) async fn message(state: &AppState, sid: &str) -> Result<Value, AppError> {
    let sid = MessageSid::new(sid).map_err(|e| error(400, e))?;
    let record = state.store.get(&sid).await.map_err(|e| error(503, e))?;
    let record = record.ok_or_else(|| error(404, "no such message"))?;
    let history = state.store.history(&sid).await.map_err(|e| error(503, e))?;
    Ok(message_json(&record, &history))
}

/// `GET /messages/{sid}`'s JSON: the record and every status received.
pub(crate) fn message_json(record: &MessageRecord, history: &[HistoryEntry]) -> Value {
    json!({
        "sid": record.sid,
        "status": record.status.to_string(),
        "error_code": record.error_code,
        "to": record.to,
        "from": record.from,
        "created_at": rfc3339(record.created_at),
        "updated_at": rfc3339(record.updated_at),
        "history": history.iter().map(|h| json!({
            "status": h.status.to_string(),
            "error_code": h.error_code,
            "received_at": rfc3339(h.received_at),
            "source": h.source.as_str(),
        })).collect::<Vec<_>>(),
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Resolves when `stopped` changes (or its sender is gone): the app's shutdown has begun. The
/// servers and the streams that must end at shutdown each wait on a clone.
pub(crate) async fn stopped_signal(mut stopped: tokio::sync::watch::Receiver<()>) {
    let _ = stopped.changed().await;
}

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT) or, on unix, SIGTERM (what
/// docker, Kubernetes and systemd send), so that the servers shut down gracefully.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    eprintln!("shutting down");
}
