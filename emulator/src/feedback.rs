//! The Message Feedback subresource: `POST Messages/{MessageSid}/Feedback.json` with
//! `Outcome=confirmed|unconfirmed` (the spec's `CreateMessageFeedback`, answered 200 with
//! `api.v2010.account.message.message_feedback`).
//!
//! Twilio does not document the answer to a missing or unknown `Outcome`: the emulator takes a
//! missing one as `confirmed` (the value the documentation's examples send) and answers an
//! unknown one with its generic 20001.

use axum::http::StatusCode;
use axum::response::Response;

use super::api::{json, path_sid};
use super::api_error::ApiError;
use super::model::StoredFeedback;
use super::state::Shared;

/// The outcome named by the `Outcome` parameter (`message_feedback_enum_outcome`).
fn outcome(params: &[(String, String)]) -> Result<&'static str, ApiError> {
    match params
        .iter()
        .find(|(k, _)| k == "Outcome")
        .map(|(_, v)| v.as_str())
    {
        None | Some("confirmed") => Ok("confirmed"),
        Some("unconfirmed") => Ok("unconfirmed"),
        Some(other) => Err(ApiError::invalid_parameter(format!(
            "Outcome must be 'confirmed' or 'unconfirmed', got {other:?}"
        ))),
    }
}

/// `POST Messages/{MessageSid}/Feedback.json`: records (or replaces) the message's feedback.
pub(crate) fn create(
    shared: &Shared,
    path: &str,
    sid: &str,
    params: &[(String, String)],
) -> Result<Response, ApiError> {
    let sid = path_sid(path, sid)?;
    let outcome = outcome(params)?;
    let now = shared.clock.now();
    let mut inner = shared.lock();
    let message = inner
        .message_mut(&sid)
        .ok_or_else(|| ApiError::not_found(path))?;
    let date_created = message.feedback.as_ref().map_or(now, |f| f.date_created);
    let feedback = StoredFeedback {
        outcome,
        date_created,
        date_updated: now,
    };
    let value = feedback.to_json(shared.credentials.account_sid.as_str(), sid.as_str());
    message.feedback = Some(feedback);
    Ok(json(StatusCode::OK, value))
}
