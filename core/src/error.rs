//! The one error type of the node library, with the HTTP status each kind answers with.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What went wrong, and so which status a client is told.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong (malformed SDP, no usable media, bad name). Retrying the
    /// same request will not help.
    #[error("{0}")]
    BadRequest(String),
    /// The body is not of the type the endpoint takes (WHIP/WHEP take `application/sdp`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No such room or session.
    #[error("{0}")]
    NotFound(String),
    /// No valid credentials (`auth`: a missing, forged or expired bearer token).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this: from where it is (drain from another machine), or with the
    /// token it has (another room's, or one that does not grant it).
    #[error("{0}")]
    Forbidden(String),
    /// The room is already published.
    #[error("{0}")]
    Conflict(String),
    /// Temporarily unable (no media port, room not ready, routing store down). A retry may help.
    #[error("{0}")]
    Unavailable(String),
    /// The upstream node failed or answered with an error.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The WebRTC stack refused (most often: an offer it cannot negotiate).
    #[error("webrtc: {0}")]
    WebRtc(#[from] rtc::shared::error::Error),
    /// The routing store failed.
    #[error("routing store: {0}")]
    Routing(String),
    /// Our bug or an unexpected state.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
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
    pub fn code(&self) -> &'static str {
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

    /// Whether the same request may succeed later.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable(_) | Error::Upstream(_) | Error::Routing(_)
        )
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

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::BadRequest(_) | Error::WebRtc(_) | Error::UnsupportedMediaType(_) => {
                tonic::Status::invalid_argument(msg)
            }
            Error::NotFound(_) => tonic::Status::not_found(msg),
            Error::Unauthorized(_) => tonic::Status::unauthenticated(msg),
            Error::Forbidden(_) => tonic::Status::permission_denied(msg),
            Error::Conflict(_) => tonic::Status::already_exists(msg),
            Error::Unavailable(_) | Error::Routing(_) | Error::Upstream(_) => {
                tonic::Status::unavailable(msg)
            }
            Error::Internal(_) => tonic::Status::internal(msg),
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        match s.code() {
            tonic::Code::NotFound => Error::NotFound(s.message().to_string()),
            tonic::Code::InvalidArgument => Error::BadRequest(s.message().to_string()),
            _ => Error::Upstream(format!("{}: {}", s.code(), s.message())),
        }
    }
}
