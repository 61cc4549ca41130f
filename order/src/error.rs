use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use sea_orm::DbErr;
use shared::http;

use crate::actors::order_desk::PlaceError;
use crate::domain::order_request::{InvalidOrder, MAX_BODY_BYTES};

/// Errors of the HTTP API, each mapped to a status and a JSON body here.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    InvalidOrder(#[from] InvalidOrder),
    #[error("body is larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    #[error("unsupported content type {0:?}: send JSON with Content-Type: application/json")]
    UnsupportedMediaType(String),
    #[error("could not read the request body: {0}")]
    UnreadableBody(String),
    #[error("this Idempotency-Key was already used with a different order")]
    IdempotencyKeyReused,
    #[error("no order {0}")]
    OrderNotFound(uuid::Uuid),
    #[error("the order could not be stored or read; nothing was changed, retry later ({0})")]
    Storage(#[from] DbErr),
    #[error("the order service is shutting down, retry later")]
    ShuttingDown(#[from] actix::MailboxError),
}

impl From<PlaceError> for ApiError {
    fn from(e: PlaceError) -> Self {
        match e {
            PlaceError::KeyReused => ApiError::IdempotencyKeyReused,
            PlaceError::Storage(e) => ApiError::Storage(e),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidOrder(_) | ApiError::UnreadableBody(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::IdempotencyKeyReused => StatusCode::CONFLICT,
            ApiError::OrderNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Storage(_) | ApiError::ShuttingDown(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let field = match self {
            ApiError::InvalidOrder(InvalidOrder { field, .. }) => field.as_deref(),
            _ => None,
        };
        http::error_response(self.status_code(), self, field)
    }
}
