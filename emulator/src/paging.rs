//! `GET Messages.json`: the `To`/`From`/`DateSent` filters, paging (`PageSize`, `Page`,
//! `PageToken`) and Twilio's list envelope with relative page URIs.

use axum::http::StatusCode;
use axum::response::Response;
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use super::api::json;
use super::api_error::ApiError;
use super::model::{self, Page, StoredMessage};
use super::state::{Inner, Shared};

/// `PageSize` when none is given.
const DEFAULT_PAGE_SIZE: u64 = 50;
/// The largest `PageSize` Twilio honours.
const MAX_PAGE_SIZE: u64 = 1000;

/// A `DateSent` filter value: a day or an instant.
#[derive(Debug, Clone, Copy)]
enum When {
    Day(Date),
    Instant(OffsetDateTime),
}

impl When {
    /// Parses `YYYY-MM-DD`, RFC 3339 / ISO 8601 or RFC 2822.
    fn parse(s: &str) -> Result<Self, ApiError> {
        if let Ok(d) = Date::parse(s, format_description!("[year]-[month]-[day]")) {
            return Ok(Self::Day(d));
        }
        OffsetDateTime::parse(s, &Rfc3339)
            .or_else(|_| OffsetDateTime::parse(s, &Rfc2822))
            .map(Self::Instant)
            .map_err(|_| ApiError::invalid_parameter(format!("Invalid DateSent: {s}")))
    }
}

/// The list filters, kept with their original values to echo them in page URIs.
#[derive(Debug, Default)]
struct Filters {
    echo: Vec<(&'static str, String)>,
    to: Option<String>,
    from: Option<String>,
    on: Option<When>,
    before: Option<When>,
    after: Option<When>,
}

impl Filters {
    fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut f = Self::default();
        for key in ["To", "From", "DateSent", "DateSent<", "DateSent>"] {
            let Some(value) = pairs
                .iter()
                .find(|(k, v)| k == key && !v.is_empty())
                .map(|(_, v)| v.clone())
            else {
                continue;
            };
            match key {
                "To" => f.to = Some(value.clone()),
                "From" => f.from = Some(value.clone()),
                "DateSent" => f.on = Some(When::parse(&value)?),
                "DateSent<" => f.before = Some(When::parse(&value)?),
                _ => f.after = Some(When::parse(&value)?),
            }
            f.echo.push((key, value));
        }
        Ok(f)
    }

    fn matches(&self, m: &StoredMessage) -> bool {
        if self.to.as_ref().is_some_and(|to| *to != m.to) {
            return false;
        }
        if self
            .from
            .as_ref()
            .is_some_and(|from| m.from.as_ref() != Some(from))
        {
            return false;
        }
        if self.on.is_none() && self.before.is_none() && self.after.is_none() {
            return true;
        }
        let Some(sent) = m.date_sent else {
            return false;
        };
        let on = self.on.is_none_or(|w| match w {
            When::Day(d) => sent.date() == d,
            When::Instant(t) => sent.date() == t.to_offset(time::UtcOffset::UTC).date(),
        });
        let before = self.before.is_none_or(|w| match w {
            When::Day(d) => sent.date() <= d,
            When::Instant(t) => sent <= t,
        });
        let after = self.after.is_none_or(|w| match w {
            When::Day(d) => sent.date() >= d,
            When::Instant(t) => sent >= t,
        });
        on && before && after
    }
}

/// A `PageToken`: `PA<seq>` continues after a message, `PB<seq>` goes back before one.
#[derive(Debug, Clone, Copy)]
enum Token {
    After(u64),
    Before(u64),
}

impl Token {
    fn parse(s: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::invalid_parameter("Invalid PageToken");
        let (kind, hex) = (
            s.get(..2).ok_or_else(invalid)?,
            s.get(2..).ok_or_else(invalid)?,
        );
        let seq = u64::from_str_radix(hex, 16).map_err(|_| invalid())?;
        match kind {
            "PA" => Ok(Self::After(seq)),
            "PB" => Ok(Self::Before(seq)),
            _ => Err(invalid()),
        }
    }
}

/// A page URI: the filters, then `PageSize`, `Page` and an optional `PageToken`.
fn page_uri(base: &str, filters: &Filters, size: u64, page: u64, token: Option<String>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &filters.echo {
        q.append_pair(k, v);
    }
    q.append_pair("PageSize", &size.to_string());
    q.append_pair("Page", &page.to_string());
    if let Some(t) = token {
        q.append_pair("PageToken", &t);
    }
    format!("{base}?{}", q.finish())
}

/// The messages of one page, newest first.
fn select<'a>(
    inner: &'a Inner,
    filters: &Filters,
    size: u64,
    page: u64,
    token: Option<Token>,
) -> Vec<&'a StoredMessage> {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let matching = |m: &&StoredMessage| filters.matches(m);
    match token {
        None => {
            let skip = usize::try_from(page.saturating_mul(size as u64)).unwrap_or(usize::MAX);
            inner
                .messages
                .values()
                .rev()
                .filter(matching)
                .skip(skip)
                .take(size)
                .collect()
        }
        Some(Token::After(seq)) => inner
            .messages
            .range(..seq)
            .rev()
            .map(|(_, m)| m)
            .filter(matching)
            .take(size)
            .collect(),
        Some(Token::Before(seq)) => {
            let mut v: Vec<&StoredMessage> = inner
                .messages
                .range(seq.saturating_add(1)..)
                .map(|(_, m)| m)
                .filter(matching)
                .take(size)
                .collect();
            v.reverse();
            v
        }
    }
}

/// `GET Messages.json`: filters, `PageSize`, `Page`, `PageToken`, and Twilio's envelope.
pub(crate) fn list(shared: &Shared, query: &str) -> Result<Response, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let filters = Filters::parse(&pairs)?;
    let size = match get("PageSize") {
        None => DEFAULT_PAGE_SIZE,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n >= 1 => n.min(MAX_PAGE_SIZE),
            _ => return Err(ApiError::invalid_parameter("Invalid PageSize")),
        },
    };
    let page = match get("Page") {
        None => 0,
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| ApiError::invalid_parameter("Invalid Page"))?,
    };
    let token = get("PageToken").map(Token::parse).transpose()?;
    let account = shared.credentials.account_sid.as_str();
    let base = model::list_path(account);

    let inner = shared.lock();
    let items = select(&inner, &filters, size, page, token);
    let has_next = items.last().is_some_and(|last| {
        inner
            .messages
            .range(..last.seq)
            .any(|(_, m)| filters.matches(m))
    });
    let next_page_uri = items.last().filter(|_| has_next).map(|last| {
        page_uri(
            &base,
            &filters,
            size,
            page.saturating_add(1),
            Some(format!("PA{:x}", last.seq)),
        )
    });
    let previous_page_uri = (page > 0).then(|| {
        let token = items.first().map(|first| format!("PB{:x}", first.seq));
        page_uri(&base, &filters, size, page - 1, token)
    });
    let start = page.saturating_mul(size);
    let len = items.len() as u64;
    let body = Page {
        messages: items.iter().map(|m| m.to_json(account)).collect(),
        page,
        page_size: size,
        start,
        end: start.saturating_add(len.saturating_sub(1)),
        uri: page_uri(
            &base,
            &filters,
            size,
            page,
            token.map(|_| get("PageToken").unwrap_or_default().to_owned()),
        ),
        first_page_uri: page_uri(&base, &filters, size, 0, None),
        next_page_uri,
        previous_page_uri,
    };
    drop(inner);
    Ok(json(
        StatusCode::OK,
        serde_json::to_value(body).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_uris_encode_filters_like_twilio() {
        let pairs = vec![
            ("To".to_owned(), "+123456789".to_owned()),
            ("DateSent>".to_owned(), "2008-01-02".to_owned()),
        ];
        let f = Filters::parse(&pairs).unwrap();
        assert_eq!(
            page_uri("/x.json", &f, 2, 1, Some("PA1f".into())),
            "/x.json?To=%2B123456789&DateSent%3E=2008-01-02&PageSize=2&Page=1&PageToken=PA1f"
        );
    }

    #[test]
    fn tokens_and_dates_parse_or_say_why() {
        assert!(matches!(Token::parse("PA1f"), Ok(Token::After(31))));
        assert!(matches!(Token::parse("PB0"), Ok(Token::Before(0))));
        assert!(Token::parse("P").is_err());
        assert!(Token::parse("PAzz").is_err());
        assert!(Token::parse("PCé").is_err());
        assert!(Token::parse("é").is_err());
        assert!(matches!(When::parse("2019-06-11"), Ok(When::Day(_))));
        assert!(matches!(
            When::parse("2019-06-11T22:05:25Z"),
            Ok(When::Instant(_))
        ));
        assert!(matches!(
            When::parse("Wed, 19 Jun 2019 22:04:00 +0000"),
            Ok(When::Instant(_))
        ));
        assert_eq!(When::parse("yesterday").unwrap_err().code, 20001);
    }
}
