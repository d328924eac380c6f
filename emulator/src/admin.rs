//! The emulator's own HTTP endpoints under `/emulator/`, for tests in any language: the truth,
//! the callback log, advancing the clock, waiting for quiet, reset, delivering incoming
//! messages. They take the same Basic auth as the API (account SID and auth token, or an API
//! key).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json as j};

use super::EmulatorError;
use super::api::json;
use super::api_error::ApiError;
use super::inbound::{self, Inbound, InboundDelivery};
use super::model::rfc2822;
use super::state::Shared;
use super::truth::{AttemptOutcome, CallbackAttempt};
use twilio_delivery::ids::{MessageSid, MessagingServiceSid};

/// Where the admin endpoints live.
pub(crate) const PREFIX: &str = "/emulator";

/// The longest `POST /emulator/wait-idle` waits, in seconds.
const MAX_WAIT_SECS: f64 = 600.0;

/// An attempt's outcome as JSON fields: `outcome`, `http_status`, `error`.
fn outcome_fields(outcome: &AttemptOutcome) -> (&'static str, Option<u16>, Option<&str>) {
    match outcome {
        AttemptOutcome::Response(code) => ("response", Some(*code), None),
        AttemptOutcome::ConnectFailed => ("connect_failed", None, None),
        AttemptOutcome::Timeout => ("timeout", None, None),
        AttemptOutcome::Error(e) => ("error", None, Some(e.as_str())),
        AttemptOutcome::Dropped => ("dropped", None, None),
    }
}

/// A callback attempt as JSON.
fn attempt_json(a: &CallbackAttempt) -> Value {
    let (outcome, http_status, error) = outcome_fields(&a.outcome);
    j!({
        "sid": a.sid.as_str(),
        "status": a.status.as_str(),
        "error_code": a.error_code,
        "url": a.url,
        "attempt": a.attempt,
        "idempotency_token": a.idempotency_token,
        "outcome": outcome,
        "http_status": http_status,
        "error": error,
        "duplicate": a.duplicate,
        "dropped": a.dropped,
    })
}

/// An incoming-message delivery attempt as JSON: what the app answered, the parameters sent
/// and the replies sent for its TwiML.
fn inbound_json(d: &InboundDelivery) -> Value {
    let (outcome, status, error) = outcome_fields(&d.outcome);
    let params: serde_json::Map<String, Value> = d
        .params
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    let replies: Vec<Value> = d
        .replies
        .iter()
        .map(|r| {
            j!({
                "to": r.to,
                "from": r.from,
                "body": r.body,
                "media": r.media,
                "message_sid": r.message_sid.as_ref().map(MessageSid::as_str),
                "error_code": r.error_code,
            })
        })
        .collect();
    j!({
        "message_sid": d.message_sid.as_str(),
        "status": status,
        "content_type": d.content_type,
        "body": d.body,
        "url": d.url,
        "attempt": d.attempt,
        "redelivery": d.redelivery,
        "idempotency_token": d.idempotency_token,
        "outcome": outcome,
        "error": error,
        "params": params,
        "replies": replies,
    })
}

/// Every value of a parameter, in order.
fn all<'a>(params: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    params
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The last value of a parameter.
fn one<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    all(params, key).pop()
}

/// `POST /emulator/inbound`: delivers the incoming message the parameters describe (`Url`,
/// `From`, `To`, `Body`, `MediaUrl`/`MediaContentType` repeated, `MessagingServiceSid`,
/// `OptOutType`, `ProfileName`, `WaId`, `SendReplies`, `MessageSid`), or, given only
/// `MessageSid`, redelivers an earlier one.
async fn deliver_inbound(
    shared: &Arc<Shared>,
    params: &[(String, String)],
) -> Result<Response, ApiError> {
    let sid = one(params, "MessageSid")
        .map(|v| {
            MessageSid::new(v.trim()).map_err(|_| {
                ApiError::invalid_parameter(format!("MessageSid is not a message SID: {v:?}"))
            })
        })
        .transpose()?;
    let result = match (one(params, "Url"), sid) {
        (None, Some(sid)) => inbound::redeliver(shared, &sid).await,
        (None, None) => {
            return Err(ApiError::invalid_parameter(
                "Url is required (or MessageSid alone, to redeliver)",
            ));
        }
        (Some(url), sid) => {
            let required = |key: &str| {
                one(params, key)
                    .ok_or_else(|| ApiError::invalid_parameter(format!("{key} is required")))
            };
            let mut message = Inbound::new(
                url,
                required("From")?,
                required("To")?,
                one(params, "Body").unwrap_or_default(),
            );
            let types = all(params, "MediaContentType");
            for (n, media) in all(params, "MediaUrl").into_iter().enumerate() {
                message = match types.get(n).filter(|t| !t.trim().is_empty()) {
                    Some(content_type) => message.media_with_type(media, *content_type),
                    None => message.media(media),
                };
            }
            if let Some(service) = one(params, "MessagingServiceSid") {
                let service = MessagingServiceSid::new(service.trim()).map_err(|_| {
                    ApiError::invalid_parameter(format!(
                        "MessagingServiceSid is not a Messaging Service SID: {service:?}"
                    ))
                })?;
                message = message.messaging_service_sid(service);
            }
            message = match one(params, "OptOutType") {
                Some(v) if v.trim().is_empty() => message.no_opt_out_type(),
                Some(v) => message.opt_out_type(v.trim()),
                None => message,
            };
            if let Some(name) = one(params, "ProfileName") {
                message = message.profile_name(name);
            }
            if let Some(wa_id) = one(params, "WaId") {
                message = message.wa_id(wa_id);
            }
            match one(params, "SendReplies").map(str::trim) {
                None | Some("true") => {}
                Some("false") => message = message.send_replies(false),
                Some(other) => {
                    return Err(ApiError::invalid_parameter(format!(
                        "SendReplies must be true or false, got {other:?}"
                    )));
                }
            }
            if let Some(sid) = sid {
                message = message.message_sid(sid);
            }
            inbound::deliver(shared, &message).await
        }
    };
    match result {
        Ok(delivery) => Ok(json(StatusCode::OK, inbound_json(&delivery))),
        Err(EmulatorError::InvalidInbound(reason)) => Err(ApiError::invalid_parameter(reason)),
        Err(EmulatorError::UnknownInbound(sid)) => Err(ApiError {
            status: 404,
            code: 20404,
            message: format!("no incoming message {sid} was delivered"),
            detail: None,
        }),
        Err(e) => Err(ApiError {
            status: 502,
            code: 11200,
            message: format!("HTTP retrieval failure: {e}"),
            detail: None,
        }),
    }
}

/// A number of seconds from a parameter (`Seconds`, `Timeout`), finite and not negative.
fn seconds(params: &[(String, String)], key: &str) -> Result<Option<f64>, ApiError> {
    let Some((_, value)) = params.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) else {
        return Ok(None);
    };
    match value.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(Some(s)),
        _ => Err(ApiError::invalid_parameter(format!(
            "{key} must be a number of seconds, got {value:?}"
        ))),
    }
}

/// `GET /emulator/info`: what a client needs to know, without secrets.
fn info(shared: &Shared) -> Value {
    let inner = shared.lock();
    j!({
        "account_sid": shared.credentials.account_sid.as_str(),
        "seed": shared.settings.seed,
        "messages": inner.messages.len(),
        "callback_attempts": inner.log.len(),
        "inbound_deliveries": inner.inbound_log.len(),
        "busy": shared.activity.busy(),
        "now": rfc2822(shared.clock.now()),
        "advanced_seconds": shared.clock.advanced().as_secs_f64(),
        "default_messaging_service_sid": shared.settings.default_service_sid,
        "default_status_callback": shared
            .settings
            .default_status_callback
            .as_ref()
            .map(|t| t.url.signed.as_str()),
    })
}

/// Answers `/emulator{path}`; `params` are the query and form pairs together.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &str,
    form: &[(String, String)],
) -> Result<Response, ApiError> {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    params.extend_from_slice(form);
    match (method, path) {
        (&Method::GET, "" | "/" | "/info") => Ok(json(StatusCode::OK, info(shared))),
        (&Method::GET, "/truth") => {
            let truth: Vec<Value> = shared
                .lock()
                .truth
                .values()
                .map(|(sid, t)| {
                    j!({"sid": sid.as_str(), "status": t.status.as_str(), "error_code": t.error_code})
                })
                .collect();
            Ok(json(StatusCode::OK, j!({ "truth": truth })))
        }
        (&Method::GET, "/callbacks") => {
            let log: Vec<Value> = shared.lock().log.iter().map(attempt_json).collect();
            Ok(json(StatusCode::OK, j!({ "callbacks": log })))
        }
        (&Method::POST, "/time/advance") => {
            let by = seconds(&params, "Seconds")?
                .ok_or_else(|| ApiError::invalid_parameter("Seconds is required"))?;
            // An advance past the last date the API can show would have nowhere to go.
            let headroom = shared.clock.headroom();
            let by = Duration::try_from_secs_f64(by)
                .ok()
                .filter(|by| *by <= headroom)
                .ok_or_else(|| {
                    ApiError::invalid_parameter(format!(
                        "Seconds would move the emulated clock past the end of the year 9999 \
                         (at most {} more seconds)",
                        headroom.as_secs()
                    ))
                })?;
            shared.clock.advance(by);
            Ok(json(StatusCode::OK, info(shared)))
        }
        (&Method::POST, "/wait-idle") => {
            let timeout = seconds(&params, "Timeout")?
                .unwrap_or(30.0)
                .min(MAX_WAIT_SECS);
            let timeout = Duration::try_from_secs_f64(timeout).unwrap_or_default();
            match shared.activity.wait_idle(timeout).await {
                Ok(()) => Ok(json(StatusCode::OK, info(shared))),
                Err(busy) => Err(ApiError {
                    status: 503,
                    code: 20503,
                    message: format!("still busy after the timeout: {busy} tasks in flight"),
                    detail: None,
                }),
            }
        }
        (&Method::GET, "/inbound") => {
            let log: Vec<Value> = shared.lock().inbound_log.iter().map(inbound_json).collect();
            Ok(json(StatusCode::OK, j!({ "inbound": log })))
        }
        (&Method::POST, "/inbound") => deliver_inbound(shared, &params).await,
        (&Method::POST, "/reset") => {
            shared.reset();
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (
            _,
            "" | "/" | "/info" | "/truth" | "/callbacks" | "/time/advance" | "/wait-idle"
            | "/reset" | "/inbound",
        ) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found(&format!("{PREFIX}{path}"))),
    }
}
