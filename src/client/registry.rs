//! `Clients`: one [`Client`] per Twilio account, for apps that send through several accounts or
//! subaccounts (each with its own credentials).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Client;
use crate::ids::AccountSid;

/// The clients of the accounts an app serves, keyed by account SID. Cheap to clone.
///
/// ```
/// use twilio_delivery::client::{Client, Clients};
/// use twilio_delivery::{AccountSid, AuthToken};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let main: AccountSid = "AC0123456789abcdef0123456789abcdef".parse()?;
/// let sub: AccountSid = "ACfedcba9876543210fedcba9876543210".parse()?;
/// let clients = Clients::new()
///     .with(Client::builder(main.clone(), AuthToken::new("main token")).build()?)
///     .with(Client::builder(sub.clone(), AuthToken::new("subaccount token")).build()?);
/// assert_eq!(clients.get(&sub).map(|c| c.account_sid()), Some(&sub));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Clients {
    by_account: Arc<BTreeMap<AccountSid, Client>>,
}

impl Clients {
    /// No clients yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `client` for its account (replacing a client of the same account).
    #[must_use]
    pub fn with(mut self, client: Client) -> Self {
        Arc::make_mut(&mut self.by_account).insert(client.account_sid().clone(), client);
        self
    }

    /// The client of `account`, if the app serves it.
    pub fn get(&self, account: &AccountSid) -> Option<&Client> {
        self.by_account.get(account)
    }

    /// The client for a message of `account`; a message with no recorded account goes to the
    /// only client when there is exactly one.
    pub fn for_account(&self, account: Option<&AccountSid>) -> Option<&Client> {
        match account {
            Some(account) => self.get(account),
            None if self.by_account.len() == 1 => self.by_account.values().next(),
            None => None,
        }
    }

    /// The accounts served.
    pub fn accounts(&self) -> impl Iterator<Item = &AccountSid> {
        self.by_account.keys()
    }

    /// How many accounts are served.
    pub fn len(&self) -> usize {
        self.by_account.len()
    }

    /// Whether no account is served.
    pub fn is_empty(&self) -> bool {
        self.by_account.is_empty()
    }
}

impl From<Client> for Clients {
    fn from(client: Client) -> Self {
        Self::new().with(client)
    }
}
