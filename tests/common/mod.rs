//! Helpers shared by the integration tests: signed status callbacks and a failing store.
#![allow(dead_code, unreachable_pub)]

#[cfg(feature = "postgres")]
#[path = "../pg_drop/mod.rs"]
pub mod pg_drop;
#[path = "../skip/mod.rs"]
pub mod skip;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use time::OffsetDateTime;
use twilio_delivery::AuthToken;
use twilio_delivery::ids::MessageSid;
use twilio_delivery::model::{Applied, HistoryEntry, MessageRecord, SentMessage, StatusEvent};
use twilio_delivery::signature::sign;
use twilio_delivery::store::{ListQuery, Page, StatusStore, StoreError};

pub const TOKEN: &str = "f7e6d5c4b3a2918071605f4e3d2c1b0a";
pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

pub fn token() -> AuthToken {
    AuthToken::new(TOKEN)
}

/// The n-th test message SID.
pub fn sid(n: u32) -> MessageSid {
    MessageSid::new(format!("SM{n:032x}")).unwrap()
}

/// The form pairs of a status callback as Twilio sends them.
pub fn callback_pairs(
    sid: &MessageSid,
    status: &str,
    error_code: Option<u32>,
) -> Vec<(String, String)> {
    let mut p = vec![
        ("ApiVersion", "2010-04-01".to_owned()),
        ("MessageStatus", status.to_owned()),
        ("SmsSid", sid.to_string()),
        ("SmsStatus", status.to_owned()),
        ("To", "+14155550199".to_owned()),
        ("From", "+14155550100".to_owned()),
        ("MessageSid", sid.to_string()),
        ("AccountSid", ACCOUNT.to_owned()),
    ];
    if let Some(code) = error_code {
        p.push(("ErrorCode", code.to_string()));
    }
    p.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Encodes pairs as a form body.
pub fn form_body(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A signed callback: (body, signature) for `url`.
pub fn signed(url: &str, pairs: &[(String, String)]) -> (String, String) {
    (form_body(pairs), sign(&token(), url, pairs))
}

/// A store whose every write fails as if the database were down, until `up` is set; reads, and
/// writes once up, go to an inner store.
#[derive(Debug, Default)]
pub struct DownStore {
    pub inner: twilio_delivery::MemoryStore,
    pub attempts: AtomicUsize,
    pub up: std::sync::atomic::AtomicBool,
}

impl DownStore {
    /// Counts a write, and fails it unless the store is up.
    fn write(&self) -> Result<(), StoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.up.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(down())
    }
}

fn down() -> StoreError {
    StoreError::Unavailable("connection refused".into())
}

#[async_trait]
impl StatusStore for DownStore {
    async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError> {
        self.write()?;
        self.inner.record_sent(sent).await
    }
    async fn apply(&self, event: &StatusEvent) -> Result<Applied, StoreError> {
        self.write()?;
        self.inner.apply(event).await
    }
    async fn get(&self, sid: &MessageSid) -> Result<Option<MessageRecord>, StoreError> {
        self.inner.get(sid).await
    }
    async fn history(&self, sid: &MessageSid) -> Result<Vec<HistoryEntry>, StoreError> {
        self.inner.history(sid).await
    }
    async fn pending_since(
        &self,
        from: OffsetDateTime,
        t: OffsetDateTime,
        n: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.inner.pending_since(from, t, n).await
    }
    async fn list(&self, q: &ListQuery) -> Result<Page, StoreError> {
        self.inner.list(q).await
    }
}

/// An incoming message `n` (its SID made of `n`) from `from` saying `body`, as Twilio posts it.
pub fn incoming(n: u32, from: &str, body: &str) -> twilio_delivery::inbound::InboundMessage {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("MessageSid", sid(n).as_str())
        .append_pair("From", from)
        .append_pair("To", "+15005550006")
        .append_pair("Body", body)
        .finish();
    twilio_delivery::inbound::InboundMessage::from_form(form.as_bytes()).unwrap()
}

/// Shared handle to a store as the webhook wants it.
pub fn arc<S: StatusStore>(s: S) -> Arc<S> {
    Arc::new(s)
}

/// A PostgreSQL database for tests, from `TEST_DATABASE_URL`.
#[cfg(feature = "postgres")]
pub mod pg {
    use twilio_delivery::store::TablePrefix;
    use twilio_delivery::store::sqlx::postgres::{PgPool, PgPoolOptions};
    use twilio_delivery::store::sqlx::{self, AssertSqlSafe};

    /// `TEST_DATABASE_URL`, or `None` (after printing that the test skipped) when it is unset
    /// outside CI. Under CI (`CI` set) a missing database fails the test.
    pub fn url() -> Option<String> {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) => Some(url),
            Err(_) => {
                super::skip::service_missing(
                    "TEST_DATABASE_URL not set (start PostgreSQL with .ci/postgres.sh)",
                );
                None
            }
        }
    }

    /// A pool, or `None` (after printing that the test skipped) when `TEST_DATABASE_URL` is
    /// unset outside CI.
    pub async fn pool() -> Option<PgPool> {
        let url = url()?;
        Some(
            PgPoolOptions::new()
                .max_connections(8)
                .connect(&url)
                .await
                .expect("TEST_DATABASE_URL is set but the database cannot be reached"),
        )
    }

    /// A table prefix no other test uses.
    pub fn random_prefix() -> TablePrefix {
        TablePrefix::new(format!("t{:016x}_", fastrand::u64(..))).unwrap()
    }

    /// Drops the tables, sequences and functions of one prefix.
    pub async fn drop_tables(pool: &PgPool, prefix: &TablePrefix) {
        sqlx::raw_sql(AssertSqlSafe(super::pg_drop::drop_prefix_sql(
            prefix.as_str(),
        )))
        .execute(pool)
        .await
        .unwrap();
    }
}
