use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use sea_orm::DbErr;
use shared::http::{self, BodyError};

use crate::actors::order_desk::PlaceError;
use crate::domain::order_request::InvalidOrder;

/// Errors of the HTTP API, each mapped to a status and a JSON body here.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    InvalidOrder(#[from] InvalidOrder),
    #[error(transparent)]
    Body(#[from] BodyError),
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
            ApiError::InvalidOrder(_) => StatusCode::BAD_REQUEST,
            ApiError::Body(e) => e.status_code(),
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
