//! The typed Twilio Messages API client: [`Client`], [`SendMessage`], [`Message`] and friends.
//!
//! reqwest lives only in this module; no reqwest type appears in the public API except
//! [`ClientBuilder::reqwest_client`], which makes reqwest a public dependency for callers who
//! use it.
//!
//! ```no_run
//! use twilio_delivery::client::{Client, SendMessage};
//! use twilio_delivery::{AccountSid, AuthToken, MemoryStore, PublicEndpoint, StatusStore};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder(
//!     AccountSid::new("AC0123456789abcdef0123456789abcdef")?,
//!     AuthToken::new("your auth token"),
//! )
//! .build()?;
//! // The same endpoint configures the webhook (`StatusWebhookBuilder::endpoint`).
//! let endpoint = PublicEndpoint::new("https://app.example.com", "/twilio/status")?
//!     .with_recommended_overrides();
//! let msg = client
//!     .messages()
//!     .create(
//!         &SendMessage::new("+15558675310")
//!             .from("+15017122661")
//!             .body("Hello!")
//!             .status_callback(&endpoint),
//!     )
//!     .await?;
//! let store = MemoryStore::new();
//! store.record_sent(&msg.to_sent_message(true)).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use url::Url;

use crate::ids::{AccountSid, ApiKeySid};
use crate::secret::{ApiKeySecret, AuthToken};

mod builder;
mod credentials;
mod enums;
mod list;
mod message;
mod messages;
mod registry;
mod retry;
mod send;
mod transport;
mod wire;

pub use builder::ClientBuilder;
pub use enums::{
    AddressRetention, ContentRetention, Direction, RiskCheck, ScheduleType, TrafficType,
};
pub use list::{ListFilter, MAX_PAGE_SIZE, MessagePage};
pub use message::{Message, Price, PriceError};
pub use messages::Messages;
pub use registry::Clients;
pub use retry::{RetryPolicy, RetryPolicyBuilder};
pub use send::{
    MAX_MEDIA, MAX_SCHEDULE_AHEAD, MAX_VALIDITY_PERIOD, MIN_SCHEDULE_AHEAD, SendMessage,
};

use credentials::Credentials;
use transport::Inner;

/// The Twilio Messages API client. Cheap to clone (an `Arc` inside); share one per account.
///
/// `Debug` shows the base URL, account SID and credential kind, never the secret.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// A builder authenticating as the account with its auth token (`AccountSid:AuthToken`).
    pub fn builder(account_sid: AccountSid, auth_token: AuthToken) -> ClientBuilder {
        ClientBuilder::new(account_sid, Credentials::AuthToken(auth_token))
    }

    /// A builder authenticating with an API key (`SK…:secret`) on `account_sid`'s resources.
    pub fn builder_with_api_key(
        account_sid: AccountSid,
        key_sid: ApiKeySid,
        key_secret: ApiKeySecret,
    ) -> ClientBuilder {
        ClientBuilder::new(account_sid, Credentials::ApiKey(key_sid, key_secret))
    }

    /// The account's Messages resource.
    pub fn messages(&self) -> Messages<'_> {
        Messages::new(self)
    }

    /// The account whose resources the client addresses.
    pub fn account_sid(&self) -> &AccountSid {
        &self.inner.account_sid
    }

    /// The API base URL (`https://api.twilio.com` unless overridden).
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("account_sid", &self.inner.account_sid)
            .field("credentials", &self.inner.credentials)
            .field("timeout", &self.inner.timeout)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}
