//! Several Twilio accounts behind one endpoint: each webhook request is checked with the keys
//! of the account it names (`AccountSid`), so subaccounts with their own auth tokens (and
//! their rotations) share a URL.
//!
//! [`AccountKeys`] is a fixed map; implement [`KeyResolver`] to look keys up elsewhere (a
//! database of tenants, a secrets manager). Give either to
//! `StatusWebhookBuilder::accounts` or `WebhookGuardBuilder::accounts`.
//!
//! Choosing the key from the request's own `AccountSid` is safe: a forger who names another
//! account only gets a check against a token they do not know. A request naming an account the
//! app does not serve is refused (403).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::ids::AccountSid;
use crate::signature::SignatureValidator;

/// Finds the keys of an account.
#[async_trait]
pub trait KeyResolver: fmt::Debug + Send + Sync + 'static {
    /// The validator holding `account`'s keys (its auth token, and the secondary one during a
    /// rotation), or `None` when the app does not serve the account.
    async fn validator(&self, account: &AccountSid) -> Option<SignatureValidator>;
}

/// A fixed map from account to keys.
///
/// ```
/// use twilio_delivery::accounts::AccountKeys;
/// use twilio_delivery::{AccountSid, AuthToken, SignatureValidator};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let main: AccountSid = "AC0123456789abcdef0123456789abcdef".parse()?;
/// let sub: AccountSid = "ACfedcba9876543210fedcba9876543210".parse()?;
/// let keys = AccountKeys::new()
///     .with(main, SignatureValidator::new(AuthToken::new("main token")))
///     // A subaccount rotating its token: both are accepted until the old one is removed.
///     .with(
///         sub,
///         SignatureValidator::builder()
///             .key("new", AuthToken::new("new sub token"))
///             .key("old", AuthToken::new("old sub token"))
///             .build()?,
///     );
/// # let _ = keys; Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct AccountKeys {
    by_account: Arc<HashMap<AccountSid, SignatureValidator>>,
}

impl AccountKeys {
    /// No accounts yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `account`, checking its requests with `validator` (replacing any before).
    #[must_use]
    pub fn with(mut self, account: AccountSid, validator: SignatureValidator) -> Self {
        Arc::make_mut(&mut self.by_account).insert(account, validator);
        self
    }
}

#[async_trait]
impl KeyResolver for AccountKeys {
    async fn validator(&self, account: &AccountSid) -> Option<SignatureValidator> {
        self.by_account.get(account).cloned()
    }
}
