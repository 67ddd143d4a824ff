//! The `raven pkg` REST shim under /api/v1: thin handlers that call service/ and shape the v1 JSON.
pub mod auth;
pub mod events;
pub mod health;
pub mod openapi;
pub mod owners;
pub mod packages;
pub mod publish;
pub mod resolve;
pub mod search;
pub mod stats;
pub mod users;
pub mod yank;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// A JSON body computed (or cached) by the read model, answered as is.
pub fn json_body(body: bytes::Bytes) -> crate::error::AppResult<axum::response::Response> {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

/// Unknown paths answer in the v1 error shape too.
pub async fn not_found() -> AppError {
    AppError::NotFound("no such endpoint".into())
}

/// A known path with a method it does not serve: the v1 error body (axum adds `Allow`).
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// A JSON body whose rejections (bad syntax, wrong content type, missing fields) come back in the
/// v1 error shape instead of axum's plain text.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::BytesRejection(e)) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(AppError::PayloadTooLarge("the request body is too large".into()))
            }
            Err(e) => Err(AppError::BadRequest(e.body_text())),
        }
    }
}

/// Path parameters whose rejections (e.g. invalid UTF-8 once percent-decoded) come back in the v1
/// error shape instead of axum's plain text. Used like `axum::extract::Path`.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) if e.status().is_server_error() => Err(AppError::internal(anyhow::anyhow!(e.body_text()))),
            Err(e) => Err(AppError::BadRequest(e.body_text())),
        }
    }
}

/// A query string whose rejections (e.g. a repeated parameter) come back in the v1 error shape.
/// Used like `axum::extract::Query`.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e| AppError::BadRequest(e.body_text()))
    }
}

/// A multipart body whose rejection (wrong content type, missing boundary) is a v1 error.
pub struct ApiMultipart(pub axum::extract::Multipart);

impl<S> FromRequest<S> for ApiMultipart
where
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Multipart::from_request(req, state)
            .await
            .map(ApiMultipart)
            .map_err(|e| AppError::BadRequest(format!("expected a multipart/form-data body: {}", e.body_text())))
    }
}
