//! The HTTP side: routes of the Messages API, Basic auth, form bodies and Twilio's JSON.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use tokio::sync::Notify;

use super::api_error::ApiError;
use super::lifecycle::{self, Lifecycle, Start};
use super::model::{self, Page, StoredMessage};
use super::segments;
use super::state::{Inner, Shared, hex32, message_rng};
use super::truth::Truth;
use super::validate;
use crate::ids::MessageSid;
use crate::status::MessageStatus;

/// The largest request body accepted.
const MAX_BODY: usize = 256 * 1024;
/// `PageSize` when none is given.
const DEFAULT_PAGE_SIZE: u64 = 50;
/// The largest `PageSize` Twilio honours.
const MAX_PAGE_SIZE: u64 = 1000;

/// The emulator's router: everything goes through [`dispatch`], which routes by hand so that
/// every unknown path or method gets Twilio's error JSON.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(dispatch).with_state(shared)
}

/// Answers one request.
async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(&shared, &method, &uri, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// The resource a path names.
enum Resource<'a> {
    List,
    Message(&'a str),
}

async fn handle(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let path = uri.path();
    let not_found = || ApiError::not_found(path);
    let rest = path
        .strip_prefix("/2010-04-01/Accounts/")
        .ok_or_else(not_found)?;
    let (account, resource) = rest.split_once('/').ok_or_else(not_found)?;
    shared.credentials.check(headers, account)?;
    let resource = match resource {
        "Messages.json" => Resource::List,
        other => other
            .strip_prefix("Messages/")
            .and_then(|s| s.strip_suffix(".json"))
            .filter(|s| !s.contains('/'))
            .map(Resource::Message)
            .ok_or_else(not_found)?,
    };
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::too_large())?;
    match (resource, method) {
        (Resource::List, &Method::GET) => list(shared, uri.query().unwrap_or("")),
        (Resource::List, &Method::POST) => create(shared, &form(headers, &bytes)),
        (Resource::Message(sid), &Method::GET) => fetch(shared, path, sid),
        (Resource::Message(sid), &Method::POST) => {
            update(shared, path, sid, &form(headers, &bytes))
        }
        (Resource::Message(sid), &Method::DELETE) => delete(shared, path, sid),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The pairs of a form body; any other content type (JSON included) carries no parameters,
/// as with Twilio.
fn form(headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Vec::new();
    }
    form_urlencoded::parse(body).into_owned().collect()
}

/// JSON with a status code.
fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}

/// A SID from the path, or 404.
fn path_sid(path: &str, sid: &str) -> Result<MessageSid, ApiError> {
    MessageSid::new(sid).map_err(|_| ApiError::not_found(path))
}

/// `POST Messages.json`.
fn create(shared: &Arc<Shared>, params: &[(String, String)]) -> Result<Response, ApiError> {
    let now = OffsetDateTime::now_utc();
    let req = validate::create(params, now)?;
    let settings = &shared.settings;
    if shared.activity.lifecycles() >= settings.max_messages.max(1) {
        return Err(ApiError::too_many_requests());
    }
    let start = match (req.send_at, &req.messaging_service_sid) {
        (Some(send_at), _) => {
            let ahead = Duration::try_from(send_at - now).unwrap_or_default();
            let scaled = ahead.as_secs_f64() * settings.chaos.time_scale_factor();
            // Tokio treats a wait too long to represent as "far in the future".
            Start::Scheduled(Duration::try_from_secs_f64(scaled).unwrap_or(Duration::MAX))
        }
        (None, Some(_)) => Start::Accepted,
        (None, None) => Start::Queued,
    };
    let account = shared.credentials.account_sid.as_str();
    let mut inner = shared.lock();
    let seq = inner.next_seq;
    inner.next_seq = seq.wrapping_add(1);
    let mut rng = message_rng(settings.seed, seq);
    let prefix = if req.num_media > 0 { "MM" } else { "SM" };
    let sid = MessageSid::new(format!("{prefix}{}", hex32(&mut rng)))
        .map_err(|_| ApiError::invalid_parameter("could not make a message SID"))?;
    let plan = lifecycle::plan(&settings.chaos, &mut rng, start);
    let cancel = matches!(start, Start::Scheduled(_)).then(|| Arc::new(Notify::new()));
    let message = StoredMessage {
        seq,
        sid: sid.clone(),
        to: req.to.clone(),
        from: req.from.clone(),
        body: req.body.clone(),
        num_media: req.num_media,
        segments: if req.num_media > 0 {
            1
        } else {
            segments::count(&req.body)
        },
        messaging_service_sid: req.messaging_service_sid.clone(),
        status: start.status(),
        error_code: None,
        date_created: now,
        date_updated: now,
        date_sent: None,
        price: None,
        cancel: cancel.clone(),
        lifecycle_done: false,
    };
    let body = message.to_json(account);
    inner.insert(message, plan.truth.clone(), settings.max_messages);
    drop(inner);
    let busy = shared.activity.enter_lifecycle();
    let life = Lifecycle {
        seq,
        sid,
        to: req.to,
        from: req.from,
        messaging_service_sid: req.messaging_service_sid,
        status_callback: req
            .status_callback
            .or_else(|| settings.default_status_callback.clone()),
        plan,
        cancel,
    };
    tokio::spawn(lifecycle::drive(Arc::clone(shared), life, busy));
    Ok(json(StatusCode::CREATED, body))
}

/// `GET Messages/{Sid}.json`.
fn fetch(shared: &Shared, path: &str, sid: &str) -> Result<Response, ApiError> {
    let sid = path_sid(path, sid)?;
    let mut inner = shared.lock();
    let m = inner
        .message_mut(&sid)
        .ok_or_else(|| ApiError::not_found(path))?;
    Ok(json(
        StatusCode::OK,
        m.to_json(shared.credentials.account_sid.as_str()),
    ))
}

/// `POST Messages/{Sid}.json`: `Status=canceled` cancels a scheduled message, `Body=` redacts.
fn update(
    shared: &Shared,
    path: &str,
    sid: &str,
    params: &[(String, String)],
) -> Result<Response, ApiError> {
    let sid = path_sid(path, sid)?;
    let status = params.iter().find(|(k, _)| k == "Status").map(|(_, v)| v);
    let body = params.iter().find(|(k, _)| k == "Body").map(|(_, v)| v);
    if status.is_some_and(|s| s != "canceled") {
        return Err(ApiError::invalid_parameter(
            "Status can only be updated to 'canceled'",
        ));
    }
    if body.is_some_and(|b| !b.is_empty()) {
        return Err(ApiError::invalid_parameter(
            "Body can only be updated to an empty string, to redact the message",
        ));
    }
    let mut inner = shared.lock();
    let now = OffsetDateTime::now_utc();
    let m = inner
        .message_mut(&sid)
        .ok_or_else(|| ApiError::not_found(path))?;
    if status.is_some() {
        if m.status != MessageStatus::Scheduled {
            return Err(ApiError::bad_request(
                30409,
                "This message cannot be canceled",
            ));
        }
        m.status = MessageStatus::Canceled;
        m.date_updated = now;
        if let Some(n) = &m.cancel {
            n.notify_one();
        }
    }
    if body.is_some() {
        m.body.clear();
        m.date_updated = now;
    }
    let value = m.to_json(shared.credentials.account_sid.as_str());
    if status.is_some() {
        inner.set_truth(
            &sid,
            Truth {
                status: MessageStatus::Canceled,
                error_code: None,
            },
        );
    }
    Ok(json(StatusCode::OK, value))
}

/// `DELETE Messages/{Sid}.json`: 204, or 20009 while the message is still in progress.
fn delete(shared: &Shared, path: &str, sid: &str) -> Result<Response, ApiError> {
    let sid = path_sid(path, sid)?;
    let mut inner = shared.lock();
    let m = inner
        .message_mut(&sid)
        .ok_or_else(|| ApiError::not_found(path))?;
    if !(m.status.is_final() || m.lifecycle_done) {
        return Err(ApiError::bad_request(
            20009,
            format!(
                "Cannot delete message in state {}",
                m.status.as_str().to_uppercase()
            ),
        ));
    }
    inner.remove(&sid);
    Ok(StatusCode::NO_CONTENT.into_response())
}

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
fn list(shared: &Shared, query: &str) -> Result<Response, ApiError> {
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
