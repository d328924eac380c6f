//! The HTTP side: routing, Basic auth and form bodies; each resource is handled in its own
//! module (`messages`, `media`, `feedback`, `admin`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::admin;
use super::api_error::ApiError;
use super::feedback;
use super::media;
use super::messages;
use super::paging;
use super::state::Shared;
use twilio_delivery::ids::MessageSid;

/// The largest request body accepted.
const MAX_BODY: usize = 256 * 1024;

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

/// The resource a path under `/2010-04-01/Accounts/{AccountSid}/` names.
enum Resource<'a> {
    /// `Messages.json`
    List,
    /// `Messages/{Sid}.json`
    Message(&'a str),
    /// `Messages/{Sid}/Media.json`
    MediaList(&'a str),
    /// `Messages/{Sid}/Media/{MediaSid}.json`
    Media(&'a str, &'a str),
    /// `Messages/{Sid}/Feedback.json`
    Feedback(&'a str),
}

impl<'a> Resource<'a> {
    /// The resource of the part of a path after the account SID.
    fn parse(rest: &'a str) -> Option<Self> {
        if rest == "Messages.json" {
            return Some(Self::List);
        }
        let rest = rest.strip_prefix("Messages/")?;
        if let Some(sid) = rest.strip_suffix(".json")
            && !sid.contains('/')
        {
            return Some(Self::Message(sid));
        }
        let (sid, sub) = rest.split_once('/')?;
        match sub {
            "Media.json" => Some(Self::MediaList(sid)),
            "Feedback.json" => Some(Self::Feedback(sid)),
            _ => sub
                .strip_prefix("Media/")
                .and_then(|m| m.strip_suffix(".json"))
                .filter(|m| !m.contains('/'))
                .map(|media| Self::Media(sid, media)),
        }
    }
}

/// Authenticates, routes and answers one request (admin endpoints included).
async fn handle(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    let not_found = || ApiError::not_found(path);
    if let Some(admin_path) = path.strip_prefix(admin::PREFIX) {
        shared
            .credentials
            .check(headers, shared.credentials.account_sid.as_str())?;
        let bytes = read(body).await?;
        return admin::handle(shared, method, admin_path, query, &form(headers, &bytes)).await;
    }
    let rest = path
        .strip_prefix("/2010-04-01/Accounts/")
        .ok_or_else(not_found)?;
    let (account, resource) = rest.split_once('/').ok_or_else(not_found)?;
    shared.credentials.check(headers, account)?;
    let resource = Resource::parse(resource).ok_or_else(not_found)?;
    let bytes = read(body).await?;
    let params = || form(headers, &bytes);
    match (resource, method) {
        (Resource::List, &Method::GET) => paging::list(shared, query),
        (Resource::List, &Method::POST) => messages::create(shared, &params()),
        (Resource::Message(sid), &Method::GET) => messages::fetch(shared, path, sid),
        (Resource::Message(sid), &Method::POST) => messages::update(shared, path, sid, &params()),
        (Resource::Message(sid), &Method::DELETE) => messages::delete(shared, path, sid),
        (Resource::MediaList(sid), &Method::GET) => media::list(shared, path, sid, query),
        (Resource::Media(sid, media), &Method::GET) => media::fetch(shared, path, sid, media),
        (Resource::Media(sid, media), &Method::DELETE) => media::delete(shared, path, sid, media),
        (Resource::Feedback(sid), &Method::POST) => feedback::create(shared, path, sid, &params()),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Reads a request body of at most [`MAX_BODY`] bytes.
async fn read(body: Body) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::too_large())
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
pub(crate) fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}

/// A message SID from the path, or 404.
pub(crate) fn path_sid(path: &str, sid: &str) -> Result<MessageSid, ApiError> {
    MessageSid::new(sid).map_err(|_| ApiError::not_found(path))
}
