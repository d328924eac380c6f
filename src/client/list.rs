//! `ListFilter` (the list query) and `MessagePage` (one page of the list envelope).

use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

use super::message::Message;
use super::wire;
use crate::error::{Error, Result};

/// The largest `PageSize` Twilio accepts.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Filters for listing messages: `To`, `From`, `DateSent`, `DateSent<`, `DateSent>` and
/// `PageSize`. Dates are GMT calendar days (`YYYY-MM-DD`).
///
/// ```
/// use time::macros::date;
/// use twilio_delivery::client::ListFilter;
///
/// let filter = ListFilter::new()
///     .to("+15558675310")
///     .sent_on_or_after(date!(2025 - 01 - 01))
///     .page_size(100);
/// let pairs = filter.query_pairs()?;
/// assert!(pairs.contains(&("DateSent>", "2025-01-01".to_owned())));
/// # Ok::<(), twilio_delivery::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct ListFilter {
    to: Option<String>,
    from: Option<String>,
    sent_on: Option<Date>,
    sent_on_or_before: Option<Date>,
    sent_on_or_after: Option<Date>,
    page_size: Option<u32>,
}

impl ListFilter {
    /// No filter: every message, Twilio's default page size (50).
    pub fn new() -> Self {
        Self::default()
    }

    /// `To`: only messages to this recipient.
    pub fn to(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }

    /// `From`: only messages from this sender.
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }

    /// `DateSent`: only messages sent on this day (GMT).
    pub fn sent_on(mut self, day: Date) -> Self {
        self.sent_on = Some(day);
        self
    }

    /// `DateSent<`: only messages sent on or before this day (GMT).
    pub fn sent_on_or_before(mut self, day: Date) -> Self {
        self.sent_on_or_before = Some(day);
        self
    }

    /// `DateSent>`: only messages sent on or after this day (GMT).
    pub fn sent_on_or_after(mut self, day: Date) -> Self {
        self.sent_on_or_after = Some(day);
        self
    }

    /// `PageSize`: messages per page, 1..=1000.
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    /// The query pairs sent on the wire (the `<`/`>` are part of the key, percent-encoded on
    /// the wire as `DateSent%3C`/`DateSent%3E`).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] (field `PageSize`) when the page size is outside 1..=1000, or
    /// (`DateSent`) when a date cannot be formatted.
    pub fn query_pairs(&self) -> Result<Vec<(&'static str, String)>> {
        let mut pairs = Vec::new();
        if let Some(to) = &self.to {
            pairs.push(("To", to.clone()));
        }
        if let Some(from) = &self.from {
            pairs.push(("From", from.clone()));
        }
        for (key, day) in [
            ("DateSent", self.sent_on),
            ("DateSent<", self.sent_on_or_before),
            ("DateSent>", self.sent_on_or_after),
        ] {
            if let Some(day) = day {
                pairs.push((key, format_day(day)?));
            }
        }
        if let Some(size) = self.page_size {
            if !(1..=MAX_PAGE_SIZE).contains(&size) {
                return Err(Error::invalid("PageSize", "must be from 1 to 1000"));
            }
            pairs.push(("PageSize", size.to_string()));
        }
        Ok(pairs)
    }
}

fn format_day(day: Date) -> Result<String> {
    day.format(format_description!("[year]-[month]-[day]"))
        .map_err(|_| Error::invalid("DateSent", "cannot be formatted as YYYY-MM-DD"))
}

/// One page of the message list, as Twilio returns it. Page URIs are relative to the API host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessagePage {
    /// The messages on this page.
    #[serde(default, deserialize_with = "wire::vec_or_null")]
    pub messages: Vec<Message>,
    /// The page index.
    #[serde(default, with = "wire::u32_lenient_opt")]
    pub page: Option<u32>,
    /// The page size.
    #[serde(default, with = "wire::u32_lenient_opt")]
    pub page_size: Option<u32>,
    /// The index of the first message on this page.
    #[serde(default, with = "wire::u32_lenient_opt")]
    pub start: Option<u32>,
    /// The index of the last message on this page.
    #[serde(default, with = "wire::u32_lenient_opt")]
    pub end: Option<u32>,
    /// This page's URI.
    #[serde(default)]
    pub uri: Option<String>,
    /// The first page's URI.
    #[serde(default)]
    pub first_page_uri: Option<String>,
    /// The next page's URI; `None` on the last page.
    #[serde(default)]
    pub next_page_uri: Option<String>,
    /// The previous page's URI; `None` on the first page.
    #[serde(default)]
    pub previous_page_uri: Option<String>,
}

impl MessagePage {
    /// Whether there is a next page.
    pub fn has_next(&self) -> bool {
        self.next_page_uri.as_deref().is_some_and(|u| !u.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn pairs_and_page_size_range() {
        let f = ListFilter::new()
            .from("+1")
            .sent_on(date!(2008 - 01 - 02))
            .sent_on_or_before(date!(2008 - 01 - 03))
            .page_size(1000);
        assert_eq!(
            f.query_pairs().unwrap(),
            vec![
                ("From", "+1".to_owned()),
                ("DateSent", "2008-01-02".to_owned()),
                ("DateSent<", "2008-01-03".to_owned()),
                ("PageSize", "1000".to_owned()),
            ]
        );
        assert!(ListFilter::new().page_size(0).query_pairs().is_err());
        assert!(ListFilter::new().page_size(1001).query_pairs().is_err());
        assert!(ListFilter::new().query_pairs().unwrap().is_empty());
    }

    #[test]
    fn null_messages_read_as_empty() {
        let p: MessagePage =
            serde_json::from_str(r#"{"messages":null,"page":0,"next_page_uri":null}"#).unwrap();
        assert!(p.messages.is_empty() && !p.has_next());
    }
}
