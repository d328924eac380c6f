//! Opt-outs: the recipients who said STOP, kept on your side as Twilio recommends.
//!
//! Twilio refuses a send to a number that opted out of your sender with error 21610 (and charges
//! nothing), but only after the request; and a number that opted out through another channel, or
//! of another of your senders, is yours to remember. An [`OptOutList`] holds the suppressed
//! numbers. It is fed by incoming messages (`OptOutType` STOP/START, or the default keywords:
//! [`OptOutList::apply_inbound`]) and by 21610 answers, and the client consults it before every
//! send when given one (`ClientBuilder::opt_outs`), refusing a suppressed recipient with
//! [`Error::OptedOut`](crate::error::Error::OptedOut) without calling Twilio.
//!
//! Every store implements it ([`MemoryStore`](crate::store::MemoryStore), and the SQL stores), so the
//! list lives beside the message records; [`MemoryOptOuts`] is a standalone in-memory list.
//!
//! Every list of this crate applies an incoming message's keyword once per `MessageSid`: it
//! remembers the SIDs whose keyword it applied (the SQL stores in an `opt_out_keywords` table,
//! one short row of SID and time per STOP or START), so that a keyword it already took,
//! delivered again, cannot undo a later one of the same sender. (A keyword the list never took
//! is applied when it arrives, whenever that is.) Twilio's retries of one request end within
//! 15 seconds (the `tt` connection override's maximum), so rows older than a day can be deleted.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::ids::MessageSid;
use crate::inbound::{InboundMessage, OptOut};

/// Why a number is on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OptOutSource {
    /// The recipient texted a STOP keyword.
    Keyword,
    /// Twilio refused a send with error 21610 (unsubscribed recipient).
    Error21610,
    /// The app added it.
    Manual,
}

impl OptOutSource {
    /// The stored name: `keyword`, `error_21610`, `manual`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keyword => "keyword",
            Self::Error21610 => "error_21610",
            Self::Manual => "manual",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "keyword" => Some(Self::Keyword),
            "error_21610" => Some(Self::Error21610),
            "manual" => Some(Self::Manual),
            _ => None,
        }
    }
}

/// A suppressed number.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Suppression {
    /// The number, as Twilio writes it (`+15558675310`, `whatsapp:+1...`).
    pub number: String,
    /// Why.
    pub source: OptOutSource,
    /// Since when.
    pub since: OffsetDateTime,
}

impl Suppression {
    /// A suppression, for lists implemented outside this crate.
    pub fn new(number: impl Into<String>, source: OptOutSource, since: OffsetDateTime) -> Self {
        Self {
            number: number.into(),
            source,
            since,
        }
    }
}

impl fmt::Debug for Suppression {
    /// The number is redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suppression")
            .field("number", &crate::redact::Redacted)
            .field("source", &self.source)
            .field("since", &self.since)
            .finish()
    }
}

/// The list could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("opt-out list unavailable")]
pub struct OptOutError(#[source] pub Box<dyn std::error::Error + Send + Sync + 'static>);

/// The numbers that opted out.
#[async_trait]
pub trait OptOutList: fmt::Debug + Send + Sync + 'static {
    /// Whether `number` is suppressed.
    ///
    /// # Errors
    /// [`OptOutError`] when the list cannot be read.
    async fn is_opted_out(&self, number: &str) -> Result<bool, OptOutError>;

    /// Suppresses `number` (keeping the first reason if it already is). Returns whether it was
    /// newly added.
    ///
    /// # Errors
    /// [`OptOutError`] when the list cannot be written.
    async fn opt_out(&self, number: &str, source: OptOutSource) -> Result<bool, OptOutError>;

    /// Lifts the suppression of `number` (START). Returns whether it was suppressed.
    ///
    /// # Errors
    /// [`OptOutError`] when the list cannot be written.
    async fn opt_in(&self, number: &str) -> Result<bool, OptOutError>;

    /// Every suppressed number, ordered by number.
    ///
    /// # Errors
    /// [`OptOutError`] when the list cannot be read.
    async fn opt_outs(&self) -> Result<Vec<Suppression>, OptOutError>;

    /// Applies what an incoming message says about its sender's consent: STOP suppresses the
    /// sender, START lifts it; anything else changes nothing. Returns what it applied.
    ///
    /// The lists of this crate apply a message's keyword once: a message whose SID they applied
    /// before changes nothing and returns `None`, so a redelivery of an older keyword (its first
    /// delivery answered 503 after the list took it) cannot undo a later keyword of the same
    /// sender. This default applies the keyword every time; a list of your own that can remember
    /// SIDs should override it, recording the SID and the change in one write.
    ///
    /// # Errors
    /// [`OptOutError`] when the list cannot be written.
    async fn apply_inbound(&self, message: &InboundMessage) -> Result<Option<OptOut>, OptOutError> {
        match message.opt_out() {
            Some(OptOut::Stop) => {
                self.opt_out(&message.from, OptOutSource::Keyword).await?;
                Ok(Some(OptOut::Stop))
            }
            Some(OptOut::Start) => {
                self.opt_in(&message.from).await?;
                Ok(Some(OptOut::Start))
            }
            _ => Ok(None),
        }
    }
}

/// An opt-out list in memory (tests, demos, one process). It remembers the SID of every
/// keyword message it applied, for as long as it lives.
#[derive(Debug, Default)]
pub struct MemoryOptOuts {
    state: Mutex<Lists>,
}

/// What a [`MemoryOptOuts`] holds, under one lock.
#[derive(Debug, Default)]
struct Lists {
    /// The suppressed numbers.
    numbers: BTreeMap<String, (OptOutSource, OffsetDateTime)>,
    /// The messages whose keyword was applied.
    applied: HashSet<MessageSid>,
}

impl Lists {
    fn opt_out(&mut self, number: &str, source: OptOutSource) -> bool {
        if self.numbers.contains_key(number) {
            return false;
        }
        self.numbers
            .insert(number.to_owned(), (source, OffsetDateTime::now_utc()));
        true
    }
}

impl MemoryOptOuts {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Lists> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl OptOutList for MemoryOptOuts {
    async fn is_opted_out(&self, number: &str) -> Result<bool, OptOutError> {
        Ok(self.state().numbers.contains_key(number))
    }

    async fn opt_out(&self, number: &str, source: OptOutSource) -> Result<bool, OptOutError> {
        Ok(self.state().opt_out(number, source))
    }

    async fn opt_in(&self, number: &str) -> Result<bool, OptOutError> {
        Ok(self.state().numbers.remove(number).is_some())
    }

    async fn opt_outs(&self) -> Result<Vec<Suppression>, OptOutError> {
        Ok(self
            .state()
            .numbers
            .iter()
            .map(|(number, (source, since))| Suppression::new(number, *source, *since))
            .collect())
    }

    async fn apply_inbound(&self, message: &InboundMessage) -> Result<Option<OptOut>, OptOutError> {
        let Some(keyword @ (OptOut::Stop | OptOut::Start)) = message.opt_out() else {
            return Ok(None);
        };
        let mut state = self.state();
        if !state.applied.insert(message.sid.clone()) {
            return Ok(None);
        }
        if keyword == OptOut::Stop {
            state.opt_out(&message.from, OptOutSource::Keyword);
        } else {
            state.numbers.remove(&message.from);
        }
        Ok(Some(keyword))
    }
}

#[async_trait]
impl<L: OptOutList + ?Sized> OptOutList for std::sync::Arc<L> {
    async fn is_opted_out(&self, number: &str) -> Result<bool, OptOutError> {
        (**self).is_opted_out(number).await
    }

    async fn opt_out(&self, number: &str, source: OptOutSource) -> Result<bool, OptOutError> {
        (**self).opt_out(number, source).await
    }

    async fn opt_in(&self, number: &str) -> Result<bool, OptOutError> {
        (**self).opt_in(number).await
    }

    async fn opt_outs(&self) -> Result<Vec<Suppression>, OptOutError> {
        (**self).opt_outs().await
    }

    async fn apply_inbound(&self, message: &InboundMessage) -> Result<Option<OptOut>, OptOutError> {
        (**self).apply_inbound(message).await
    }
}
