//! `GET Messages.json`: the `To`/`From`/`DateSent` filters, paging (`PageSize`, `Page`,
//! `PageToken`) and Twilio's list envelope with relative page URIs.

use super::api::json;
use super::api_error::ApiError;
use super::dates::When;
use super::model::{self, Page, StoredMessage};
use super::state::{Inner, Shared};
use axum::http::StatusCode;
use axum::response::Response;

/// `PageSize` when none is given.
pub(crate) const DEFAULT_PAGE_SIZE: u64 = 50;
/// The largest `PageSize` Twilio honours.
const MAX_PAGE_SIZE: u64 = 1000;

/// Parses a date filter; Twilio does not document the code for a value it cannot read, so the
/// emulator answers its generic 20001.
pub(crate) fn when(key: &str, value: &str) -> Result<When, ApiError> {
    When::parse(value).ok_or_else(|| ApiError::invalid_parameter(format!("Invalid {key}: {value}")))
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
    /// Reads `To`, `From`, `DateSent`, `DateSent<` and `DateSent>` (empty values ignored).
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
                "DateSent" => f.on = Some(when(key, &value)?),
                "DateSent<" => f.before = Some(when(key, &value)?),
                _ => f.after = Some(when(key, &value)?),
            }
            f.echo.push((key, value));
        }
        Ok(f)
    }

    /// Whether a message passes every filter (date filters need a `date_sent`).
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
        let on = self.on.is_none_or(|w| w.same_day(sent));
        let before = self.before.is_none_or(|w| w.on_or_before(sent));
        let after = self.after.is_none_or(|w| w.on_or_after(sent));
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
    /// Parses `PA<hex seq>` or `PB<hex seq>`.
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
pub(crate) fn page_uri(
    base: &str,
    echo: &[(&'static str, String)],
    size: u64,
    page: u64,
    token: Option<String>,
) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in echo {
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

/// The first non-empty value of `key` in a query.
pub(crate) fn query_param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// `PageSize` (default 50; above 1000, the spec's maximum, it is capped at 1000) and `Page`
/// (default 0) of a list query. Twilio does not document the code for a `PageSize` below 1 or
/// not a whole number, nor for a bad `Page`: 20001 here.
pub(crate) fn size_and_page(pairs: &[(String, String)]) -> Result<(u64, u64), ApiError> {
    let size = match query_param(pairs, "PageSize") {
        None => DEFAULT_PAGE_SIZE,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n >= 1 => n.min(MAX_PAGE_SIZE),
            _ => return Err(ApiError::invalid_parameter("Invalid PageSize")),
        },
    };
    let page = match query_param(pairs, "Page") {
        None => 0,
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| ApiError::invalid_parameter("Invalid Page"))?,
    };
    Ok((size, page))
}

/// `GET Messages.json`: filters, `PageSize`, `Page`, `PageToken`, and Twilio's envelope.
pub(crate) fn list(shared: &Shared, query: &str) -> Result<Response, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |key: &str| query_param(&pairs, key);
    let filters = Filters::parse(&pairs)?;
    let (size, page) = size_and_page(&pairs)?;
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
            &filters.echo,
            size,
            page.saturating_add(1),
            Some(format!("PA{:x}", last.seq)),
        )
    });
    let previous_page_uri = (page > 0).then(|| {
        let token = items.first().map(|first| format!("PB{:x}", first.seq));
        page_uri(&base, &filters.echo, size, page - 1, token)
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
            &filters.echo,
            size,
            page,
            token.map(|_| get("PageToken").unwrap_or_default().to_owned()),
        ),
        first_page_uri: page_uri(&base, &filters.echo, size, 0, None),
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
            page_uri("/x.json", &f.echo, 2, 1, Some("PA1f".into())),
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
        assert_eq!(when("DateSent", "yesterday").unwrap_err().code, 20001);
    }
}
