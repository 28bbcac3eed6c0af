//! The error kinds of the node library: what went wrong, said in the terms of the caller's
//! request. The HTTP status each kind answers with is decided in `api::error`, the gRPC code
//! here (gRPC is the cluster's own transport).

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
    /// Whether the same request may succeed later.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable(_) | Error::Upstream(_) | Error::Routing(_)
        )
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
