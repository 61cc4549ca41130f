use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use sea_orm::DbErr;
use shared::consumer::Transience;

#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

impl Transience for StockError {
    fn is_transient(&self) -> bool {
        // A database that is down or restarting comes back; a message that
        // keeps failing is dead-lettered by the queue's delivery limit.
        match self {
            StockError::Database(_) => true,
        }
    }
}

/// Errors of the HTTP API, each mapped to a status and a JSON body here.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("stock is unavailable right now, try again: {0}")]
    Unavailable(String),
}

impl From<StockError> for ApiError {
    fn from(e: StockError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(serde_json::json!({ "error": self.to_string() }))
    }
}
