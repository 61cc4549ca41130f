use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use platform::http::{self, BodyError};
use sea_orm::DbErr;
use slog::{Logger, warn};

use crate::domain::order_request::InvalidOrder;
use crate::routes::params::InvalidParameter;
use crate::store::PlaceError;

/// Errors of the HTTP API, each mapped to a status and a JSON body here.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    InvalidOrder(#[from] InvalidOrder),
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("this Idempotency-Key was already used with a different order")]
    IdempotencyKeyReused,
    #[error("no order {0}")]
    OrderNotFound(uuid::Uuid),
    // The 503s say what failed in plain words; the database's own error is
    // for the log (the OrderDesk's, or `read_failed`'s), never the client.
    #[error(
        "the order could not be stored: the database is unavailable; nothing was ordered, retry later"
    )]
    NotStored,
    #[error(
        "the database did not confirm the order: it may or may not have been stored; retry with the same Idempotency-Key to find out without ordering twice"
    )]
    OutcomeUnknown,
    #[error("too many orders are waiting to be stored; nothing was ordered, retry later")]
    Busy,
    /// The client is over its rate (`ORDER_RATE_LIMIT`): nothing ordered.
    #[error(
        "too many orders from your address; nothing was ordered, retry after {retry_after_secs} s"
    )]
    RateLimited { retry_after_secs: u64 },
    #[error("orders cannot be read right now: the database is unavailable; retry later")]
    Unreadable,
    #[error("the order service is shutting down, retry later")]
    ShuttingDown(#[from] actix::MailboxError),
}

impl ApiError {
    /// Orders could not be read: logged here, answered in plain words.
    pub fn read_failed(log: &Logger, e: DbErr) -> Self {
        warn!(log, "orders could not be read"; "err" => %e);
        ApiError::Unreadable
    }
}

impl From<PlaceError> for ApiError {
    fn from(e: PlaceError) -> Self {
        // The OrderDesk has logged the cause.
        match e {
            PlaceError::KeyReused => ApiError::IdempotencyKeyReused,
            PlaceError::Storage(_) | PlaceError::DatabaseDown => ApiError::NotStored,
            PlaceError::QueueFull => ApiError::Busy,
            PlaceError::OutcomeUnknown(_) => ApiError::OutcomeUnknown,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidOrder(_) | ApiError::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            ApiError::Body(e) => e.status_code(),
            ApiError::IdempotencyKeyReused => StatusCode::CONFLICT,
            ApiError::OrderNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotStored
            | ApiError::Busy
            | ApiError::OutcomeUnknown
            | ApiError::Unreadable
            | ApiError::ShuttingDown(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let field = match self {
            ApiError::InvalidOrder(InvalidOrder { field, .. }) => field.as_deref(),
            ApiError::InvalidParameter(InvalidParameter { field, .. }) => *field,
            _ => None,
        };
        let mut response = http::error_response(self.status_code(), self, field);
        if let ApiError::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}
