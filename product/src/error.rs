use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use sea_orm::DbErr;
use serde_json::json;
use shared::consumer::{Classify, FailureKind};

use crate::domain::catalogue::InvalidProduct;

#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("product {0:?} already exists")]
    ProductExists(String),
    #[error("the restock would take the stock beyond what can be stored")]
    StockOverflow,
}

impl Classify for StockError {
    fn kind(&self) -> FailureKind {
        match self {
            StockError::Database(e) => e.kind(),
            // Not a consumer's error: a reservation never creates or restocks.
            StockError::ProductExists(_) | StockError::StockOverflow => FailureKind::Poison,
        }
    }
}

/// Errors of the HTTP API, each mapped to a status and a JSON body here.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Invalid(#[from] InvalidProduct),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}: send JSON with Content-Type: application/json")]
    UnsupportedMediaType(String),
    #[error("send the staff token as Authorization: Bearer <ADMIN_TOKEN>")]
    Unauthenticated,
    #[error("staff endpoints are disabled: the product service has no ADMIN_TOKEN")]
    StaffDisabled,
    #[error("no product {0:?}")]
    ProductNotFound(String),
    #[error("product {0:?} already exists")]
    ProductExists(String),
    #[error("the restock would take the stock beyond what can be stored")]
    StockOverflow,
    #[error("stock is unavailable right now, try again: {0}")]
    Unavailable(String),
}

impl From<StockError> for ApiError {
    fn from(e: StockError) -> Self {
        match e {
            StockError::ProductExists(id) => ApiError::ProductExists(id),
            StockError::StockOverflow => ApiError::StockOverflow,
            StockError::Database(e) => ApiError::Unavailable(e.to_string()),
        }
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
            ApiError::Invalid(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::StaffDisabled => StatusCode::FORBIDDEN,
            ApiError::ProductNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::ProductExists(_) | ApiError::StockOverflow => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({ "error": self.to_string() });
        if let ApiError::Invalid(InvalidProduct { field, .. }) = self {
            body["field"] = json!(field);
        }
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthenticated) {
            response.insert_header(("www-authenticate", "Bearer"));
        }
        response.json(body)
    }
}
