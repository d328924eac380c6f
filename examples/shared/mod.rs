//! What `axum_app`, `actix_app` and `warp_app` share: configuration from the environment, the
//! store, the client, and the two app actions (send a message, show a message). Each example
//! adds only its framework's routing around them.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use twilio_delivery::notify::Notifier;
use twilio_delivery::reconcile::{Reconciler, ReconcilerHandle};
use twilio_delivery::store::{SqliteStore, StatusStore};
use twilio_delivery::webhook::StatusWebhook;
use twilio_delivery::{
    AccountSid, AuthToken, Client, MessageSid, SendMessage, SignatureValidator, StatusCallbackUrl,
};
use url::Url;

/// Where the status webhook is mounted (Twilio calls `PUBLIC_BASE_URL` + this path).
pub(crate) const WEBHOOK_PATH: &str = "/twilio/status";

/// The app's configuration, from environment variables.
pub(crate) struct Config {
    account_sid: AccountSid,
    auth_token: AuthToken,
    from: String,
    public_base_url: Url,
    database_url: String,
    api_base: Option<Url>,
    /// The address to listen on.
    pub(crate) bind_addr: SocketAddr,
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

fn url(name: &str, value: &str) -> Result<Url, String> {
    Url::parse(value).map_err(|e| format!("{name} is not a URL: {e}"))
}

impl Config {
    /// Reads `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, `TWILIO_FROM`, `PUBLIC_BASE_URL`,
    /// `DATABASE_URL` (default `sqlite:twilio-delivery.db`), `TWILIO_API_BASE` (optional, e.g.
    /// the emulator) and `BIND_ADDR` (default `127.0.0.1:3000`).
    pub(crate) fn from_env() -> Result<Config, String> {
        let account_sid = required("TWILIO_ACCOUNT_SID")?;
        let public_base_url = required("PUBLIC_BASE_URL")?;
        let api_base = optional("TWILIO_API_BASE");
        let bind_addr = optional("BIND_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
        Ok(Config {
            account_sid: AccountSid::new(account_sid)
                .map_err(|e| format!("TWILIO_ACCOUNT_SID is not an account SID: {e}"))?,
            auth_token: AuthToken::new(required("TWILIO_AUTH_TOKEN")?),
            from: required("TWILIO_FROM")?,
            public_base_url: url("PUBLIC_BASE_URL", &public_base_url)?,
            database_url: optional("DATABASE_URL")
                .unwrap_or_else(|| "sqlite:twilio-delivery.db".into()),
            api_base: api_base.map(|v| url("TWILIO_API_BASE", &v)).transpose()?,
            bind_addr: bind_addr
                .parse()
                .map_err(|_| format!("BIND_ADDR is not an address: {bind_addr}"))?,
        })
    }
}

/// Opens the store `DATABASE_URL` names and creates its tables if needed.
async fn open_store(database_url: &str) -> Result<Arc<dyn StatusStore>, Box<dyn Error>> {
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
    let store = SqliteStore::connect(database_url).await?;
    store.migrate().await?;
    Ok(Arc::new(store))
}

/// What the routes share: the client, the store and where callbacks go. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    client: Client,
    /// Where message records and their history live.
    pub(crate) store: Arc<dyn StatusStore>,
    /// Every real status change, from the webhook and the reconciler.
    pub(crate) notifier: Notifier,
    from: String,
    status_callback: Url,
}

/// The body of `POST /send`.
#[derive(Deserialize)]
pub(crate) struct SendRequest {
    to: String,
    body: String,
}

/// A failed request: the HTTP status to answer and a message for the caller.
pub(crate) struct AppError {
    /// The HTTP status code.
    pub(crate) status: u16,
    /// `{"error": "..."}`.
    pub(crate) body: Value,
}

fn error(status: u16, message: impl std::fmt::Display) -> AppError {
    AppError {
        status,
        body: json!({ "error": message.to_string() }),
    }
}

impl AppState {
    /// Opens the store and builds the client and the status webhook.
    pub(crate) async fn start(
        config: &Config,
    ) -> Result<(AppState, StatusWebhook), Box<dyn Error>> {
        let store = open_store(&config.database_url).await?;
        let mut client = Client::builder(config.account_sid.clone(), config.auth_token.clone());
        if let Some(base) = &config.api_base {
            client = client.base_url(base.clone());
        }
        // Twilio signs the URL it calls: the public base (with any prefix a proxy strips)
        // plus the webhook path. Ask it to retry 5xx answers and timeouts too.
        let status_callback = StatusCallbackUrl::new(&config.public_base_url, WEBHOOK_PATH)?
            .with_recommended_overrides()
            .to_url();
        let notifier = Notifier::default();
        let webhook = StatusWebhook::builder(
            SignatureValidator::new(config.auth_token.clone()),
            store.clone(),
        )
        .public_url(config.public_base_url.as_str())
        .notifier(notifier.clone())
        // Callbacks of any other account are refused (403).
        .account_sid(config.account_sid.clone())
        .build()?;
        let state = AppState {
            client: client.build()?,
            store,
            notifier,
            from: config.from.clone(),
            status_callback,
        };
        Ok((state, webhook))
    }

    /// Starts the reconciler: every 5 minutes it polls Twilio for messages still not final
    /// after 15 minutes, so a callback that never arrived is repaired.
    pub(crate) fn spawn_reconciler(&self) -> ReconcilerHandle {
        Reconciler::builder(self.client.clone(), self.store.clone())
            .notifier(self.notifier.clone())
            .build()
            .spawn()
    }

    /// `POST /send`: sends the message with the status callback and records it.
    pub(crate) async fn send(&self, request: SendRequest) -> Result<Value, AppError> {
        let message = SendMessage::new(request.to)
            .from(self.from.as_str())
            .body(request.body)
            .status_callback(self.status_callback.clone());
        let sent = self.client.messages().create(&message).await.map_err(|e| {
            if matches!(e, twilio_delivery::Error::InvalidRequest { .. }) {
                error(400, e)
            } else if e.http_status().is_some_and(|s| s < 500) {
                error(422, format_args!("twilio refused the message: {e}"))
            } else {
                error(502, format_args!("twilio request failed: {e}"))
            }
        })?;
        // A callback may already have created the record: record_sent merges into it.
        self.store
            .record_sent(&sent.to_sent_message(true))
            .await
            .map_err(|e| {
                error(
                    503,
                    format_args!("sent as {}, but not recorded: {e}", sent.sid),
                )
            })?;
        Ok(json!({ "sid": sent.sid, "status": sent.status.to_string() }))
    }

    /// `GET /messages/{sid}`: the message's current status and every status received.
    pub(crate) async fn message(&self, sid: &str) -> Result<Value, AppError> {
        let sid = MessageSid::new(sid).map_err(|e| error(400, e))?;
        let unavailable = |e| error(503, e);
        let record = self.store.get(&sid).await.map_err(unavailable)?;
        let record = record.ok_or_else(|| error(404, "no such message"))?;
        let history = self.store.history(&sid).await.map_err(unavailable)?;
        Ok(json!({
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
        }))
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Resolves on Ctrl-C, to shut the server down gracefully.
pub(crate) async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("shutting down");
}
