//! What a request carries besides its body, parsed before any handler
//! acts on it: path and query parameters, the `Idempotency-Key` header and
//! the client's address for the rate limit. Each failure names its field.

use actix_web::HttpRequest;
use platform::rate_limit::ClientLimit;
use serde::Deserialize;
use uuid::Uuid;

use crate::actors::order_desk::ListOrders;
use crate::domain::order_request::{IdempotencyKey, InvalidOrder};
use crate::domain::order_status::OrderStatus;
use crate::routes::error::ApiError;

pub const DEFAULT_PAGE: u64 = 50;
pub const MAX_PAGE: u64 = 200;

/// A path or query parameter that does not parse; `field` names it, when
/// one is to blame. Answered like an invalid body: 400 with the JSON error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidParameter {
    pub message: String,
    pub field: Option<&'static str>,
}

impl InvalidParameter {
    fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: Some(field),
        }
    }
}

/// The query of `GET /orders`, as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    status: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// A page asked for: which orders, and how many at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    pub status: Option<OrderStatus>,
    pub after: Option<Uuid>,
    pub limit: u64,
}

impl ListParams {
    pub fn parse(&self) -> Result<PageQuery, InvalidParameter> {
        let status = self
            .status
            .as_deref()
            .map(|s| {
                OrderStatus::parse(s).ok_or_else(|| {
                    InvalidParameter::field(
                        "status",
                        "status must be pending, confirmed or rejected",
                    )
                })
            })
            .transpose()?;
        let limit = match self.limit.as_deref() {
            None => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    InvalidParameter::field(
                        "limit",
                        format!("limit must be a whole number from 1 to {MAX_PAGE}"),
                    )
                })?,
        };
        let after = self
            .after
            .as_deref()
            .map(|a| parse_uuid(a, "after"))
            .transpose()?;
        Ok(PageQuery {
            status,
            after,
            limit,
        })
    }
}

impl PageQuery {
    /// The desk's query: one more than asked tells whether another page follows.
    pub fn message(&self) -> ListOrders {
        ListOrders {
            status: self.status,
            after: self.after,
            limit: self.limit + 1,
        }
    }
}

/// Query strings that do not parse get the same JSON errors as bodies.
pub fn query_error(
    error: actix_web::error::QueryPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    ApiError::from(InvalidParameter {
        message: format!("invalid query string: {error}; known parameters: status, limit, after"),
        field: None,
    })
    .into()
}

pub fn parse_uuid(raw: &str, field: &'static str) -> Result<Uuid, InvalidParameter> {
    raw.parse().map_err(|_| {
        InvalidParameter::field(
            field,
            format!("{field} must be an order id (a UUID), got {raw:?}"),
        )
    })
}

/// The `Idempotency-Key` header, if sent.
pub fn idempotency_key(request: &HttpRequest) -> Result<Option<IdempotencyKey>, InvalidOrder> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| InvalidOrder {
        message: "Idempotency-Key must be printable ASCII".into(),
        field: Some("Idempotency-Key".into()),
    })?;
    IdempotencyKey::try_from(text).map(Some)
}

/// Whether the client of `request` (its address, or behind a trusted
/// proxy the address it forwarded) is within `limit`.
pub fn within_rate(limit: &ClientLimit, request: &HttpRequest) -> Result<(), ApiError> {
    limit
        .check(
            request.peer_addr().map(|peer| peer.ip()),
            request
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|value| value.to_str().ok()),
        )
        .map_err(|refused| ApiError::RateLimited {
            retry_after_secs: refused.retry_after_secs(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(status: Option<&str>, limit: Option<&str>, after: Option<&str>) -> ListParams {
        ListParams {
            status: status.map(String::from),
            limit: limit.map(String::from),
            after: after.map(String::from),
        }
    }

    #[test]
    fn a_page_query_defaults_and_names_each_bad_parameter() {
        let id = Uuid::nil();

        let default = params(None, None, None).parse().unwrap();
        let full = params(Some("confirmed"), Some("200"), Some(&id.to_string()))
            .parse()
            .unwrap();
        let bad = [
            params(Some("shipped"), None, None),
            params(None, Some("0"), None),
            params(None, Some("201"), None),
            params(None, Some("ten"), None),
            params(None, None, Some("x")),
        ]
        .map(|p| p.parse().unwrap_err().field);

        assert_eq!(
            (default.status, default.after, default.limit),
            (None, None, 50)
        );
        assert_eq!(
            (full.status, full.after, full.limit, full.message().limit),
            (Some(OrderStatus::Confirmed), Some(id), 200, 201)
        );
        assert_eq!(
            bad,
            [
                Some("status"),
                Some("limit"),
                Some("limit"),
                Some("limit"),
                Some("after")
            ]
        );
    }
}
