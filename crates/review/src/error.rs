//! Errors: [`ReviewError`] for callers of the library, [`ApiError`] for
//! what a client sees (status, message, the offending field).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hashscan_store::StoreError;

/// Why the service could not start or a library call failed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Listening or serving failed.
    #[error("network: {0}")]
    Io(std::io::Error),
    /// The store has no enabled user, so nobody could log in.
    #[error(
        "no review users yet: add one with `hashscan user add NAME --role admin` (it reads the password from stdin)"
    )]
    NoUsers,
    /// A password was refused.
    #[error("{0}")]
    Password(String),
    /// A setting is out of range.
    #[error("configuration: {0}")]
    Config(String),
}

/// An error answer: JSON `{"error": …, "field": …}` for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), field: None, retry_after: None }
    }

    /// 400 naming the field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self { field: Some(field.to_string()), ..Self::new(StatusCode::BAD_REQUEST, message) }
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "log in first, or send an API token (Authorization: Bearer …)")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, what)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error (see the service log)")
    }

    pub fn body(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "error": self.message });
        if let Some(f) = &self.field {
            v["field"] = serde_json::Value::String(f.clone());
        }
        v
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = json_response(self.status, &self.body());
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a JSON answer");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"error\":\"internal\"}",
            )
                .into_response()
        }
    }
}
