//! The Message resource: create, fetch, update (cancel or redact) and delete.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

use super::api::{json, path_sid};
use super::api_error::ApiError;
use super::lifecycle::{self, Lifecycle, Start};
use super::model::{self, StoredMedia, StoredMessage};
use super::segments;
use super::state::{Shared, hex32, message_rng};
use super::truth::Truth;
use super::validate;
use twilio_delivery::ids::MessageSid;
use twilio_delivery::status::MessageStatus;

/// `POST Messages.json`.
pub(crate) fn create(
    shared: &Arc<Shared>,
    params: &[(String, String)],
) -> Result<Response, ApiError> {
    let (_, body) = create_message(shared, params)?;
    Ok(json(StatusCode::CREATED, body))
}

/// Creates a message from the parameters of `POST Messages.json` (validated as Twilio does)
/// and starts its lifecycle: its SID and its JSON.
pub(crate) fn create_message(
    shared: &Arc<Shared>,
    params: &[(String, String)],
) -> Result<(MessageSid, serde_json::Value), ApiError> {
    let created = shared.clock.mark();
    let now = created.now;
    let req = validate::create(params, now)?;
    let settings = &shared.settings;
    let start = match (req.send_at, &req.messaging_service_sid) {
        (Some(send_at), _) => {
            Start::Scheduled(Duration::try_from(send_at - now).unwrap_or_default())
        }
        (None, Some(_)) => Start::Accepted,
        (None, None) => Start::Queued,
    };
    let account = shared.credentials.account_sid.as_str();
    let mut inner = shared.lock();
    // Checked and counted under the same lock, so concurrent creates never exceed the cap.
    if shared.activity.lifecycles() >= settings.max_messages.max(1) {
        return Err(ApiError::too_many_requests());
    }
    let busy = shared.activity.enter_lifecycle();
    let seq = inner.next_seq;
    inner.next_seq = seq.wrapping_add(1);
    let epoch = inner.epoch;
    let mut rng = message_rng(settings.seed, seq);
    let prefix = if req.media.is_empty() { "SM" } else { "MM" };
    let sid = MessageSid::new(format!("{prefix}{}", hex32(&mut rng)))
        .map_err(|_| ApiError::invalid_parameter("could not make a message SID"))?;
    let plan = lifecycle::plan(&settings.chaos, &mut rng, start, &req.to);
    let media = req
        .media
        .iter()
        .map(|url| StoredMedia {
            sid: format!("ME{}", hex32(&mut rng)),
            content_type: model::content_type(url).to_owned(),
            date_created: now,
        })
        .collect();
    let cancel = matches!(start, Start::Scheduled(_)).then(|| Arc::new(Notify::new()));
    let message = StoredMessage {
        seq,
        sid: sid.clone(),
        to: req.to.clone(),
        from: req.from.clone(),
        body: req.body.clone(),
        num_media: req.media.len(),
        segments: if req.media.is_empty() {
            segments::count(&req.body)
        } else {
            1
        },
        service_sid: req
            .messaging_service_sid
            .clone()
            .unwrap_or_else(|| settings.default_service_sid.clone()),
        via_service: req.messaging_service_sid.is_some(),
        status: start.status(),
        error_code: None,
        date_created: now,
        date_updated: now,
        date_sent: None,
        price: None,
        cancel: cancel.clone(),
        lifecycle_done: false,
        media,
        feedback: None,
    };
    let body = message.to_json(account);
    inner.insert(message, plan.truth.clone(), settings.max_messages);
    drop(inner);
    let life = Lifecycle {
        seq,
        epoch,
        sid: sid.clone(),
        to: req.to,
        from: req.from,
        messaging_service_sid: req.messaging_service_sid,
        status_callback: req
            .status_callback
            .or_else(|| settings.default_status_callback.clone()),
        plan,
        cancel,
        created,
    };
    tokio::spawn(lifecycle::drive(Arc::clone(shared), life, busy));
    Ok((sid, body))
}

/// `GET Messages/{Sid}.json`.
pub(crate) fn fetch(shared: &Shared, path: &str, sid: &str) -> Result<Response, ApiError> {
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

/// What an update asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Update {
    Cancel,
    Redact,
}

/// Reads an update's parameters as Twilio does: exactly one of `Status=canceled` or an empty
/// `Body` (redaction). Anything else is 30400, "Parameters are not valid"
/// (<https://www.twilio.com/docs/api/errors/30400>: Body or Status missing, cancel and redact at
/// once, an invalid Status, or a Body that is not empty); the spec's `UpdateMessageRequest`
/// allows only `canceled` (`message_enum_update_status`).
fn update_kind(params: &[(String, String)]) -> Result<Update, ApiError> {
    let status = params.iter().find(|(k, _)| k == "Status").map(|(_, v)| v);
    let body = params.iter().find(|(k, _)| k == "Body").map(|(_, v)| v);
    let invalid = |message: &str| ApiError::bad_request(30400, message);
    match (status, body) {
        (None, None) => Err(invalid("Either Body or Status is required")),
        (Some(_), Some(_)) => Err(invalid(
            "A message cannot be canceled and redacted at the same time",
        )),
        (Some(s), None) if s == "canceled" => Ok(Update::Cancel),
        (Some(_), None) => Err(invalid("Status can only be updated to 'canceled'")),
        (None, Some(b)) if b.is_empty() => Ok(Update::Redact),
        (None, Some(_)) => Err(invalid(
            "Body can only be updated to an empty string, to redact the message",
        )),
    }
}

/// `POST Messages/{Sid}.json`: `Status=canceled` cancels a scheduled message, `Body=` redacts.
pub(crate) fn update(
    shared: &Shared,
    path: &str,
    sid: &str,
    params: &[(String, String)],
) -> Result<Response, ApiError> {
    let sid = path_sid(path, sid)?;
    let mut inner = shared.lock();
    let now = shared.clock.now();
    let m = inner
        .message_mut(&sid)
        .ok_or_else(|| ApiError::not_found(path))?;
    let kind = update_kind(params)?;
    match kind {
        Update::Cancel => {
            if m.status != MessageStatus::Scheduled {
                return Err(ApiError::bad_request(
                    30409,
                    "This message cannot be canceled",
                ));
            }
            m.status = MessageStatus::Canceled;
            if let Some(n) = &m.cancel {
                n.notify_one();
            }
        }
        Update::Redact => m.body.clear(),
    }
    m.date_updated = now;
    let value = m.to_json(shared.credentials.account_sid.as_str());
    if kind == Update::Cancel {
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
pub(crate) fn delete(shared: &Shared, path: &str, sid: &str) -> Result<Response, ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn update_parameters() {
        assert_eq!(
            update_kind(&p(&[("Status", "canceled")])),
            Ok(Update::Cancel)
        );
        assert_eq!(update_kind(&p(&[("Body", "")])), Ok(Update::Redact));
        for bad in [
            p(&[]),
            p(&[("Status", "sent")]),
            p(&[("Status", "")]),
            p(&[("Body", "x")]),
            p(&[("Status", "canceled"), ("Body", "")]),
            p(&[("Other", "1")]),
        ] {
            assert_eq!(update_kind(&bad).unwrap_err().code, 30400, "{bad:?}");
        }
    }
}
