//! The HTTP side: routing, Basic auth, form bodies, and create / fetch / update / delete.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::api_error::ApiError;
use super::lifecycle::{self, Lifecycle, Start};
use super::model::StoredMessage;
use super::paging;
use super::segments;
use super::state::{Shared, hex32, message_rng};
use super::truth::Truth;
use super::validate;
use twilio_delivery::ids::MessageSid;
use twilio_delivery::status::MessageStatus;

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
        (Resource::List, &Method::GET) => paging::list(shared, uri.query().unwrap_or("")),
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
pub(super) fn json(status: StatusCode, value: serde_json::Value) -> Response {
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
