//! A live status page (feature `axum`): the messages in a store and their timelines, updating
//! as callbacks arrive, through server-sent events. Plain HTML, no build step.
//!
//! Nest it under a path of your app and open that path:
//!
//! ```no_run
//! use std::sync::Arc;
//! use twilio_delivery::{MemoryStore, notify::Notifier, status_page};
//!
//! let store = Arc::new(MemoryStore::new());
//! let notifier = Notifier::default(); // give the same notifier to the webhook and reconciler
//! let app: axum::Router = axum::Router::new().nest("/status", status_page::router(store, notifier));
//! // open http://127.0.0.1:3000/status
//! ```
//!
//! It shows recipients and statuses of your messages (never bodies): mount it behind your
//! app's authentication.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /messages.json` | the newest 100 messages with their timelines |
//! | `GET /messages/{sid}.json` | one message with its timeline |
//! | `GET /events` | server-sent events, one `change` event (JSON) per status change |
//!
//! The events follow the store's durable change feed ([`crate::feed`]), so the page shows the
//! changes made through every app instance sharing the store (PostgreSQL), and a browser that
//! reconnects resumes where it left off (`Last-Event-ID` is the feed position). For a store
//! without a feed it falls back to the in-process notifier (this instance's changes only).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt as _;
use serde::Serialize;
use time::OffsetDateTime;

use crate::ids::MessageSid;
use crate::model::{HistoryEntry, MessageRecord};
use crate::notify::{Notifier, RecvError, StatusChange};
use crate::store::{ListQuery, StatusStore};

const PAGE: &str = include_str!("page.html");

/// How often a page's event stream reads the feed when no wake-up came.
const FEED_POLL: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct PageState {
    store: Arc<dyn StatusStore>,
    notifier: Notifier,
}

/// The status page's routes, to nest under a path of the app's router.
pub fn router<S>(store: Arc<dyn StatusStore>, notifier: Notifier) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(page))
        .route("/messages.json", get(messages))
        .route("/messages/{sid}", get(message))
        .route("/events", get(events))
        .with_state(PageState { store, notifier })
}

#[derive(Serialize)]
struct MessageView {
    sid: String,
    to: Option<String>,
    status: String,
    is_final: bool,
    error_code: Option<u32>,
    /// `30003 (Unreachable destination handset)`: the code with Twilio's description.
    error: Option<String>,
    /// What to do about the error (`retry_later`, `opted_out`, ...).
    error_class: Option<&'static str>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    timeline: Vec<EventView>,
}

#[derive(Serialize)]
struct EventView {
    status: String,
    error_code: Option<u32>,
    source: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
}

#[derive(Serialize)]
struct ChangeView {
    sid: String,
    previous: Option<String>,
    current: String,
    error_code: Option<u32>,
    source: &'static str,
}

fn view(record: MessageRecord, history: Vec<HistoryEntry>) -> MessageView {
    let error = record.error();
    MessageView {
        sid: record.sid.to_string(),
        to: record.to,
        is_final: record.status.is_final(),
        status: record.status.to_string(),
        error_code: record.error_code,
        error: error.map(|code| code.to_string()),
        error_class: error.map(|code| code.class().as_str()),
        created_at: record.created_at,
        timeline: history
            .into_iter()
            .map(|h| EventView {
                status: h.status.to_string(),
                error_code: h.error_code,
                source: h.source.as_str(),
                received_at: h.received_at,
            })
            .collect(),
    }
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
}

async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

async fn messages(State(s): State<PageState>) -> Response {
    let Ok(page) = s.store.list(&ListQuery::new().limit(100)).await else {
        return unavailable();
    };
    let mut out = Vec::with_capacity(page.records.len());
    for record in page.records {
        let Ok(history) = s.store.history(&record.sid).await else {
            return unavailable();
        };
        out.push(view(record, history));
    }
    axum::Json(out).into_response()
}

async fn message(State(s): State<PageState>, Path(file): Path<String>) -> Response {
    let sid = file.strip_suffix(".json").unwrap_or(&file);
    let Ok(sid) = sid.parse::<MessageSid>() else {
        return (StatusCode::NOT_FOUND, "no such message\n").into_response();
    };
    match (s.store.get(&sid).await, s.store.history(&sid).await) {
        (Ok(Some(record)), Ok(history)) => axum::Json(view(record, history)).into_response(),
        (Ok(None), _) => (StatusCode::NOT_FOUND, "no such message\n").into_response(),
        _ => unavailable(),
    }
}

fn change_event(change: &StatusChange) -> Event {
    let view = ChangeView {
        sid: change.sid.to_string(),
        previous: change.previous.as_ref().map(ToString::to_string),
        current: change.current.to_string(),
        error_code: change.error_code,
        source: change.source.as_str(),
    };
    Event::default()
        .event("change")
        .json_data(view)
        .unwrap_or_else(|_| Event::default().comment("unserializable change"))
}

async fn events(State(s): State<PageState>, headers: HeaderMap) -> impl IntoResponse {
    let stream: futures_util::stream::BoxStream<'static, Result<Event, Infallible>> =
        match s.store.feed() {
            Some(feed) => {
                let resume = headers
                    .get("last-event-id")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let from = match resume {
                    Some(at) => Some(at),
                    None => feed.head().await.ok(),
                };
                match from {
                    Some(at) => crate::feed::follow(s.store.clone(), at, FEED_POLL)
                        .map(|entry| Ok(change_event(&entry.change).id(entry.position.to_string())))
                        .boxed(),
                    None => {
                        futures_util::stream::iter([Ok(Event::default().event("lagged").data("0"))])
                            .boxed()
                    }
                }
            }
            None => s
                .notifier
                .subscribe()
                .into_stream()
                .map(|item| {
                    Ok(match item {
                        Ok(change) => change_event(&change),
                        // The page reloads the list when it missed changes.
                        Err(RecvError::Lagged(n)) => {
                            Event::default().event("lagged").data(n.to_string())
                        }
                        Err(_) => Event::default().comment("closed"),
                    })
                })
                .boxed(),
        };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
