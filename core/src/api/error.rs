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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::{AuthError, Grant};
    use crate::cluster::relay_client::RelayError;
    use crate::rtc::negotiate::NegotiationError;

    /// Each layer's errors reach a client with one status, whichever path raised them.
    #[test]
    fn each_layers_errors_answer_with_one_status() {
        let status = |e: Error| e.status();
        assert_eq!(status(AuthError::Missing.into()), StatusCode::UNAUTHORIZED);
        assert_eq!(
            status(AuthError::Invalid("expired".into()).into()),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(
                AuthError::OtherRoom {
                    token: "a".into(),
                    asked: "b".into()
                }
                .into()
            ),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(AuthError::NotGranted(Grant::Publish).into()),
            StatusCode::FORBIDDEN
        );
        for e in [
            NegotiationError::BadOffer("x".into()),
            NegotiationError::NoMedia(true),
            NegotiationError::NoMedia(false),
            NegotiationError::NoMatchingTrack("r".into()),
            NegotiationError::NoCodecAccepted("video/VP8".into()),
        ] {
            assert_eq!(status(e.into()), StatusCode::BAD_REQUEST);
        }
        assert_eq!(
            status(NegotiationError::RoomNotFound("r".into()).into()),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(NegotiationError::RoomUnavailable("r".into()).into()),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(RelayError::RoomEnded("over".into()).into()),
            StatusCode::NOT_FOUND
        );
        assert_eq!(status(RelayError::NoAnswer.into()), StatusCode::BAD_GATEWAY);
        assert_eq!(
            status(RelayError::Status(tonic::Status::not_found("no room")).into()),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(RelayError::Status(tonic::Status::unavailable("down")).into()),
            StatusCode::BAD_GATEWAY
        );
    }

    #[test]
    fn retryable_errors_say_when_to_come_back() {
        let response = Error::Unavailable("full".into()).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        let response = Error::Unauthorized("no token".into()).into_response();
        assert!(response.headers().contains_key("www-authenticate"));
    }
}
