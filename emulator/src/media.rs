//! The Media subresource of a message (one entry per `MediaUrl`): list with the `DateCreated`
//! filters and paging, fetch, delete. Shapes and parameters from the spec's
//! `/Messages/{MessageSid}/Media.json` and `/Media/{Sid}.json` (`ListMedia`, `FetchMedia`,
//! `DeleteMedia`).
//!
//! Twilio does not document whether media can be deleted while its message is in progress, nor
//! whether deleting media changes the message's `num_media`: the emulator allows it at any time
//! and keeps `num_media` (the count sent).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::api::{json, path_sid};
use super::api_error::ApiError;
use super::dates::When;
use super::model::{self, StoredMedia};
use super::paging::{page_uri, query_param, size_and_page, when};
use super::state::Shared;

/// The `DateCreated` filters of a media list, kept to echo them in page URIs.
#[derive(Debug, Default)]
struct Filters {
    echo: Vec<(&'static str, String)>,
    on: Option<When>,
    before: Option<When>,
    after: Option<When>,
}

impl Filters {
    /// Reads `DateCreated`, `DateCreated<` and `DateCreated>`.
    fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut f = Self::default();
        for key in ["DateCreated", "DateCreated<", "DateCreated>"] {
            let Some(value) = query_param(pairs, key) else {
                continue;
            };
            let w = Some(when(key, value)?);
            match key {
                "DateCreated" => f.on = w,
                "DateCreated<" => f.before = w,
                _ => f.after = w,
            }
            f.echo.push((key, value.to_owned()));
        }
        Ok(f)
    }

    /// Whether a media entry passes every filter.
    fn matches(&self, m: &StoredMedia) -> bool {
        let t = m.date_created;
        self.on.is_none_or(|w| w.same_day(t))
            && self.before.is_none_or(|w| w.on_or_before(t))
            && self.after.is_none_or(|w| w.on_or_after(t))
    }
}

/// `GET Messages/{MessageSid}/Media.json`: Twilio's list envelope with `media_list`.
pub(crate) fn list(
    shared: &Shared,
    path: &str,
    sid: &str,
    query: &str,
) -> Result<Response, ApiError> {
    let sid = path_sid(path, sid)?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let filters = Filters::parse(&pairs)?;
    let (size, page) = size_and_page(&pairs)?;
    let account = shared.credentials.account_sid.as_str();
    let mut inner = shared.lock();
    let message = inner
        .message_mut(&sid)
        .ok_or_else(|| ApiError::not_found(path))?;
    let matching: Vec<&StoredMedia> = message
        .media
        .iter()
        .filter(|m| filters.matches(m))
        .collect();
    let skip = usize::try_from(page.saturating_mul(size)).unwrap_or(usize::MAX);
    let take = usize::try_from(size).unwrap_or(usize::MAX);
    let items: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(take)
        .map(|m| m.to_json(account, sid.as_str()))
        .collect();
    let has_next = matching.len() > skip.saturating_add(items.len()) && !items.is_empty();
    let base = model::media_list_path(account, sid.as_str());
    let uri = |page: u64| page_uri(&base, &filters.echo, size, page, None);
    let start = page.saturating_mul(size);
    let body = serde_json::json!({
        "media_list": items,
        "page": page,
        "page_size": size,
        "start": start,
        "end": start.saturating_add((items.len() as u64).saturating_sub(1)),
        "uri": uri(page),
        "first_page_uri": uri(0),
        "next_page_uri": has_next.then(|| uri(page.saturating_add(1))),
        "previous_page_uri": (page > 0).then(|| uri(page - 1)),
    });
    Ok(json(StatusCode::OK, body))
}

/// `GET Messages/{MessageSid}/Media/{Sid}.json`.
pub(crate) fn fetch(
    shared: &Shared,
    path: &str,
    sid: &str,
    media: &str,
) -> Result<Response, ApiError> {
    let sid = path_sid(path, sid)?;
    let account = shared.credentials.account_sid.as_str();
    let mut inner = shared.lock();
    let value = inner
        .message_mut(&sid)
        .and_then(|m| m.media.iter().find(|e| e.sid == media))
        .map(|e| e.to_json(account, sid.as_str()))
        .ok_or_else(|| ApiError::not_found(path))?;
    Ok(json(StatusCode::OK, value))
}

/// `DELETE Messages/{MessageSid}/Media/{Sid}.json`: 204.
pub(crate) fn delete(
    shared: &Shared,
    path: &str,
    sid: &str,
    media: &str,
) -> Result<Response, ApiError> {
    let sid = path_sid(path, sid)?;
    let mut inner = shared.lock();
    let message = inner
        .message_mut(&sid)
        .ok_or_else(|| ApiError::not_found(path))?;
    let before = message.media.len();
    message.media.retain(|m| m.sid != media);
    if message.media.len() == before {
        return Err(ApiError::not_found(path));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
