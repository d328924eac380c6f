//! # twilio-delivery
//!
//! Send SMS/MMS through Twilio and know, reliably, what became of every message.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod adapters;
pub mod callback;
pub mod client;
#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod emulator;
pub mod error;
pub mod ids;
pub mod reconcile;
pub mod secret;
pub mod signature;
pub mod status;
pub mod store;
pub mod webhook;

pub use error::{Error, Result};
pub use ids::{AccountSid, ApiKeySid, MessageSid, MessagingServiceSid, SidError};
pub use secret::{ApiKeySecret, AuthToken};
pub use signature::{SignatureError, SignatureValidator, Verified};
pub use status::MessageStatus;
pub use store::{MemoryStore, StatusStore, StoreError};
