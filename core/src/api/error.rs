//! The one place errors become HTTP answers: each kind's status, its stable code, and the
//! JSON body (`{"code", "message"}`) with `WWW-Authenticate` or `Retry-After` where they apply.

use crate::error::Error;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error's HTTP status and machine-readable code.
pub trait HttpError {
    /// The HTTP status this error answers with.
    fn status(&self) -> StatusCode;
    /// A stable machine-readable code for JSON error bodies.
    fn code(&self) -> &'static str;
}

impl HttpError for Error {
    /// The HTTP status this error answers with.
    fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Unavailable(_) | Error::Routing(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Upstream(_) => StatusCode::BAD_GATEWAY,
            // The stack rejects offers it cannot negotiate; that is the client's offer.
            Error::WebRtc(_) => StatusCode::BAD_REQUEST,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code for JSON error bodies.
    fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::NotFound(_) => "not_found",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::Conflict(_) => "conflict",
            Error::Unavailable(_) => "unavailable",
            Error::Upstream(_) => "upstream_failed",
            Error::WebRtc(_) => "negotiation_failed",
            Error::Routing(_) => "routing_unavailable",
            Error::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "code": self.code(), "message": self.to_string() });
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(self, Error::Unauthorized(_)) {
            // RFC 6750 §3: the scheme the client must use.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"cascade\""),
            );
        }
        if self.retryable() {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("2"),
            );
        }
        response
    }
}
