//! The emulator's own HTTP endpoints under `/emulator/`, for tests in any language: the truth,
//! the callback log, advancing the clock, waiting for quiet, reset. They take the same Basic
//! auth as the API (account SID and auth token, or an API key).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json as j};

use super::api::json;
use super::api_error::ApiError;
use super::model::rfc2822;
use super::state::Shared;
use super::truth::{AttemptOutcome, CallbackAttempt};

/// Where the admin endpoints live.
pub(crate) const PREFIX: &str = "/emulator";

/// The longest `POST /emulator/wait-idle` waits, in seconds.
const MAX_WAIT_SECS: f64 = 600.0;

/// A callback attempt as JSON.
fn attempt_json(a: &CallbackAttempt) -> Value {
    let (outcome, http_status, error) = match &a.outcome {
        AttemptOutcome::Response(code) => ("response", Some(*code), None),
        AttemptOutcome::ConnectFailed => ("connect_failed", None, None),
        AttemptOutcome::Timeout => ("timeout", None, None),
        AttemptOutcome::Error(e) => ("error", None, Some(e.as_str())),
        AttemptOutcome::Dropped => ("dropped", None, None),
    };
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
            let by = Duration::try_from_secs_f64(by).unwrap_or(Duration::MAX);
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
        (&Method::POST, "/reset") => {
            shared.reset();
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (
            _,
            "" | "/" | "/info" | "/truth" | "/callbacks" | "/time/advance" | "/wait-idle"
            | "/reset",
        ) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found(&format!("{PREFIX}{path}"))),
    }
}
