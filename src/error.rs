//! The one error type of the registry. Services return it; REST turns it into the v1 JSON body and a
//! status, GraphQL into an error with `extensions.code`. Internal detail is logged here, never sent.
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sea_orm::{DbErr, RuntimeErr, SqlErr};
use serde_json::json;

use crate::domain::{PublishProblem, ValidationError};

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Validation(#[from] ValidationError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The path exists, the method does not (REST only: GraphQL answers 405 itself).
    #[error("this endpoint does not accept that method")]
    MethodNotAllowed,
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Well-formed input whose work would exceed a bound of the server (a dependency resolution
    /// past its package, step or time limit): refused rather than done.
    #[error("{0}")]
    TooComplex(String),
    #[error("rate limit exceeded, retry in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    /// A dependency (database, storage) is unreachable or overloaded: the client may retry.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// A publish refused for the problems its checks found: answered as `error` (the first
    /// problem's error, as it always has been), with every problem in REST `details.problems` and
    /// GraphQL `extensions.problems`.
    #[error("{error}")]
    Refused { error: Box<AppError>, problems: Vec<PublishProblem> },
}

impl AppError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(e.into())
    }

    /// A publish refused before its checks ran (its metadata names an invalid package, its token
    /// may publish nothing): the error, with itself as the only problem.
    pub fn refused(error: AppError, problem: PublishProblem) -> Self {
        AppError::Refused { error: Box::new(error), problems: vec![problem] }
    }

    /// The error itself, unwrapped from a refusal that carries problems.
    pub fn inner(&self) -> &AppError {
        match self {
            AppError::Refused { error, .. } => error.inner(),
            other => other,
        }
    }

    /// The problems of a refused publish (empty for every other error).
    pub fn problems(&self) -> &[PublishProblem] {
        match self {
            AppError::Refused { problems, .. } => problems,
            _ => &[],
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Refused { error, .. } => error.status(),
            AppError::Validation(_) | AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthenticated(_) | AppError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooComplex(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `error` field of the REST body (the `raven pkg` contract).
    pub fn rest_code(&self) -> &'static str {
        match self {
            AppError::Refused { error, .. } => error.rest_code(),
            AppError::Validation(_) | AppError::BadRequest(_) => "invalid_request",
            AppError::Unauthenticated(_) => "authentication_required",
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::Forbidden(_) => "permission_denied",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::TooComplex(_) => "too_complex",
            AppError::RateLimited { .. } => "rate_limit_exceeded",
            AppError::Unavailable(_) => "service_unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }

    /// The `extensions.code` of the GraphQL error.
    pub fn graphql_code(&self) -> &'static str {
        match self {
            AppError::Refused { error, .. } => error.graphql_code(),
            AppError::Validation(_) | AppError::BadRequest(_) => "BAD_USER_INPUT",
            AppError::MethodNotAllowed => "BAD_REQUEST",
            AppError::Unauthenticated(_) | AppError::InvalidCredentials => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Conflict(_) => "CONFLICT",
            AppError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            AppError::TooComplex(_) => "TOO_COMPLEX",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            AppError::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The text a client sees. Internal errors are logged with their detail and answered generically.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Refused { error, .. } => error.public_message(),
            AppError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal server error".to_owned()
            }
            AppError::Unavailable(why) => {
                tracing::warn!(reason = %why, "dependency unavailable");
                "the service is temporarily unavailable, retry shortly".to_owned()
            }
            other => other.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::Refused { error, .. } => error.retry_after(),
            AppError::RateLimited { retry_after } => Some(*retry_after),
            AppError::Unavailable(_) => Some(5),
            _ => None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({
            "error": self.rest_code(),
            "message": self.public_message(),
            "details": {},
        });
        if let AppError::Validation(v) = self.inner() {
            body["details"] = json!({ "field": v.field });
        }
        if !self.problems().is_empty() {
            body["details"]["problems"] = json!(self.problems());
        }
        if let AppError::RateLimited { retry_after } = &self {
            body["retry_after"] = json!(retry_after);
        }
        let mut res = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<DbErr> for AppError {
    fn from(e: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(_)) = e.sql_err() {
            return AppError::Conflict("the record already exists".into());
        }
        if is_unavailable(&e) {
            return AppError::Unavailable(e.to_string());
        }
        AppError::Internal(e.into())
    }
}

/// Pool exhaustion, lost connections and SQLite lock contention are the database being away or busy,
/// not a bug: they become 503 with Retry-After rather than 500.
fn is_unavailable(e: &DbErr) -> bool {
    use sea_orm::SqlxError;
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(s)) | DbErr::Query(RuntimeErr::SqlxError(s)) => match &**s {
            SqlxError::Io(_)
            | SqlxError::PoolTimedOut
            | SqlxError::PoolClosed
            | SqlxError::WorkerCrashed
            | SqlxError::Tls(_)
            | SqlxError::Protocol(_) => true,
            SqlxError::Database(db) => {
                // SQLite: SQLITE_BUSY (5) / SQLITE_LOCKED (6) and their extended codes.
                // PostgreSQL: class 08 (connection), 57P01..03 (shutdown), 53300 (too many connections),
                // 40001 / 40P01 (serialization failure, deadlock: the transaction was rolled back
                // and the same request may simply be retried).
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                matches!(
                    code.as_str(),
                    "5" | "6" | "261" | "262" | "517" | "53300" | "57P01" | "57P02" | "57P03" | "40001" | "40P01"
                ) || code.starts_with("08")
            }
            _ => false,
        },
        _ => false,
    }
}

impl From<crate::storage::StorageError> for AppError {
    fn from(e: crate::storage::StorageError) -> Self {
        match e {
            crate::storage::StorageError::NotFound(key) => AppError::NotFound(format!("blob {key} not found")),
            crate::storage::StorageError::Unavailable(why) => AppError::Unavailable(why),
        }
    }
}
