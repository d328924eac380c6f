//! # twilio-delivery
//!
//! Send SMS/MMS through Twilio and know, reliably, what became of every message.
//!
//! ```text
//!             your app ──send──▶ Client ──HTTPS──▶ Twilio (or the local emulator)
//!                                  │ record_sent                 │ signed status callbacks
//!                                  ▼                             ▼
//!  subscribers ◀── changes ── StatusStore ◀── apply ── StatusWebhook ◀── axum | actix-web | warp
//!                                  ▲
//!                     Reconciler ──┘ (polls Twilio for messages stuck before a final status)
//! ```
//!
//! - [`client`]: a typed Messages API client (send, fetch, list, cancel, redact, delete) with
//!   typed Twilio errors and retries that never duplicate a message.
//! - [`signature`]: `X-Twilio-Signature` validation that matches Twilio to the byte (ports,
//!   query strings, repeated keys, JSON bodies, several keys for rotation, constant time).
//! - [`status`]: the max-register state machine: whatever order callbacks arrive in, and however
//!   often, every message converges to the same status.
//! - [`store`]: where records and history live: [`MemoryStore`], `SqliteStore` (embedded, one
//!   process), `PostgresStore` (many app instances).
//! - [`webhook`]: the framework-agnostic status-callback handler; [`adapters`] mount it.
//! - [`reconcile`]: repairs missed callbacks by polling the API.
//! - [`model`]: the message, event and record types every other module shares.
//! - [`endpoint`]: the public endpoint: the `StatusCallback` URL sent and the URL validated.
//! - [`guard`]: the signature check for any Twilio webhook, mounted by the adapters.
//! - [`inbound`], [`twiml`], [`optout`]: incoming messages, replies, and opt-outs.
//! - [`error_code`]: what Twilio's error codes mean; [`metrics`]: the metrics the crate emits.
//! - `status_page` (feature `status-page`): a live HTML page of messages and their timelines.
//!
//! The local Twilio emulator that the examples and tests use is its own crate in this
//! workspace, `twilio-delivery-emulator`: the library never depends on it.
//!
//! ## Example: receive status callbacks
//!
//! ```no_run
//! use std::sync::Arc;
//! use twilio_delivery::{AuthToken, MemoryStore, SignatureValidator};
//! use twilio_delivery::webhook::StatusWebhook;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let token = AuthToken::new(std::env::var("TWILIO_AUTH_TOKEN")?);
//! let webhook = StatusWebhook::builder(SignatureValidator::new(token), Arc::new(MemoryStore::new()))
//!     // The scheme and host Twilio calls: the URL it signs, not what the proxy forwards.
//!     .public_url("https://example.com")
//!     .build()?;
//! // Mount it: `adapters::axum`, `adapters::actix_web` or `adapters::warp`,
//! // or call `webhook.handle(request)` from any framework.
//! # let _ = webhook; Ok(()) }
//! ```
//!
//! ## Features
//!
//! | Name | Enables | Default |
//! |---|---|---|
//! | `rustls` | TLS for the API client through rustls | yes |
//! | `native-tls` | TLS for the API client through the platform's TLS | no |
//! | `sqlite` | `store::SqliteStore`, the embedded store for one process | no |
//! | `postgres` | `store::PostgresStore`, shared by many app instances | no |
//! | `axum` | `adapters::axum` (axum 0.8) | no |
//! | `actix-web` | `adapters::actix_web` (actix-web 4) | no |
//! | `warp` | `adapters::warp` (warp 0.4) | no |
//! | `tower` | `adapters::tower`: the signature guard as a tower layer | no (`axum` enables it) |
//! | `status-page` | `status_page`: a live HTML page of messages (axum) | no |
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod accounts;
pub mod adapters;
pub mod callback;
pub mod client;
pub mod endpoint;
pub mod error;
pub mod error_code;
pub mod feed;
pub mod guard;
pub mod ids;
pub mod inbound;
pub mod inbound_webhook;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod optout;
pub mod reconcile;
mod redact;
pub mod secret;
pub mod signature;
pub mod status;
#[cfg(feature = "status-page")]
#[cfg_attr(docsrs, doc(cfg(feature = "status-page")))]
pub mod status_page;
pub mod store;
pub mod twiml;
pub mod webhook;

/// The `#[async_trait]` attribute, for implementing [`StatusStore`] on a store of your own.
pub use async_trait::async_trait;
pub use client::{Client, ClientBuilder, ListFilter, Message, RetryPolicy, SendMessage};
pub use endpoint::{ConnectionOverrides, PublicEndpoint};
pub use error::{ApiError, Error, Result};
pub use error_code::{ErrorClass, ErrorCode};
pub use guard::{ValidatedWebhook, WebhookGuard};
pub use ids::{AccountSid, ApiKeySid, MessageSid, MessagingServiceSid, SidError};
pub use model::{Applied, EventSource, HistoryEntry, MessageRecord, SentMessage, StatusEvent};
pub use notify::{Notifier, StatusChange};
pub use optout::{OptOutList, OptOutSource};
pub use reconcile::Reconciler;
pub use secret::{ApiKeySecret, AuthToken};
pub use signature::{SignatureError, SignatureValidator, Verified};
pub use status::MessageStatus;
pub use store::{MemoryStore, StatusStore, StoreError};
pub use webhook::StatusWebhook;

/// The README's code, compiled (and its examples checked) as doctests so that it cannot drift.
#[cfg(all(doctest, feature = "axum", feature = "sqlite"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
