use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use platform::http::{self, BodyError};
use slog::{Logger, warn};

use crate::domain::catalogue::InvalidProduct;
use crate::store::StockError;

/// Errors of the HTTP API, each mapped to a status and a JSON body here.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Invalid(#[from] InvalidProduct),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("no product {0:?}")]
    ProductNotFound(String),
    #[error("product {0:?} already exists")]
    ProductExists(String),
    #[error("the restock would take the stock beyond what can be stored")]
    StockOverflow,
    // The database's own error is for the log, never the client.
    #[error("stock is unavailable right now (database unavailable), try again")]
    Unavailable,
    #[error("the product service is shutting down, try again")]
    ShuttingDown(#[from] actix::MailboxError),
}

impl ApiError {
    /// What the client hears of a failed stock request; a database failure
    /// is logged here with its cause.
    pub fn from_stock(log: &Logger, e: StockError) -> Self {
        match e {
            StockError::ProductExists(id) => ApiError::ProductExists(id),
            StockError::StockOverflow => ApiError::StockOverflow,
            StockError::Database(e) => {
                warn!(log, "stock request failed: database unavailable"; "err" => %e);
                ApiError::Unavailable
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Body(e) => e.status_code(),
            ApiError::ProductNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::ProductExists(_) | ApiError::StockOverflow => StatusCode::CONFLICT,
            ApiError::Unavailable | ApiError::ShuttingDown(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let field = match self {
            ApiError::Invalid(InvalidProduct { field, .. }) => Some(*field),
            _ => None,
        };
        http::error_response(self.status_code(), self, field)
    }
}
