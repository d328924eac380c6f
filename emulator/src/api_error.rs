//! Twilio's error JSON (`{"code","message","more_info","status"}`) and the errors the API answers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answered by the emulated API, shaped exactly like Twilio's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) code: u32,
    pub(crate) message: String,
    pub(crate) detail: Option<&'static str>,
}

impl ApiError {
    /// A 400 error with a Twilio error code.
    pub(crate) fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// A parameter the emulator cannot accept (Twilio's generic code 20001).
    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::bad_request(20001, message)
    }

    /// 401, code 20003, with Twilio's `detail`.
    pub(crate) fn authenticate() -> Self {
        Self {
            status: 401,
            code: 20003,
            message: "Authenticate".to_owned(),
            detail: Some("Your AccountSid or AuthToken was incorrect."),
        }
    }

    /// 404, code 20404, naming the path that was requested.
    pub(crate) fn not_found(path: &str) -> Self {
        Self {
            status: 404,
            code: 20404,
            message: format!("The requested resource {path} was not found"),
            detail: None,
        }
    }

    /// 405, code 20004.
    pub(crate) fn method_not_allowed() -> Self {
        Self {
            status: 405,
            code: 20004,
            message: "Method not allowed".to_owned(),
            detail: None,
        }
    }

    /// 413: the request body is larger than the emulator accepts.
    pub(crate) fn too_large() -> Self {
        Self {
            status: 413,
            code: 20001,
            message: "Request body too large".to_owned(),
            detail: None,
        }
    }

    /// 429, code 20429: too many messages in flight.
    pub(crate) fn too_many_requests() -> Self {
        Self {
            status: 429,
            code: 20429,
            message: "Too Many Requests".to_owned(),
            detail: None,
        }
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "code": self.code,
            "message": self.message,
            "more_info": twilio_delivery::ErrorCode::new(self.code).more_info(),
            "status": self.status,
        });
        if let (Some(detail), Some(map)) = (self.detail, v.as_object_mut()) {
            map.insert("detail".to_owned(), detail.into());
        }
        v
    }
}

impl IntoResponse for ApiError {
    /// The error JSON with its status (and `WWW-Authenticate` on 401).
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, axum::Json(self.body())).into_response();
        if self.status == 401 {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        response
    }
}
