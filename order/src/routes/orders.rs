use actix::Addr;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use platform::http::{self, ErrorBody, RequestId, RequestLog, StaffOnly};
use platform::rate_limit::ClientLimit;
use serde::{Deserialize, Serialize};

use utoipa::ToSchema;
use uuid::Uuid;

use crate::actors::order_desk::{GetOrder, ListOrders, OrderDesk, PlaceOrder};
use crate::domain::order::{OrderView, Placed};
use crate::domain::order_request::{IdempotencyKey, InvalidOrder, OrderRequest};
use crate::domain::order_status::OrderStatus;
use crate::routes::error::ApiError;

pub const DEFAULT_PAGE: u64 = 50;
pub const MAX_PAGE: u64 = 200;

/// The answer to a placed order: the original's message and the order.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedOrder {
    #[schema(example = "Order created and message sent!")]
    message: &'static str,
    #[serde(flatten)]
    order: OrderView,
}

/// A page of `GET /orders`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    orders: Vec<OrderView>,
    /// `after` for the next page; `null` on the last one.
    next_after: Option<Uuid>,
}

/// The `Idempotency-Key` header of placing an order.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // describes the header; `create_order` reads it
struct IdempotencyHeader {
    /// A retry with the same key and body returns the same order; another
    /// body gets 409. Printable ASCII, not all blank.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[ -~]*[!-~][ -~]*$"
    )]
    idempotency_key: Option<String>,
}

/// Place an order. No body orders one of product `123`, as the original
/// did. `POST /orders` is the same operation under its REST name.
#[utoipa::path(
    post,
    path = "/create_order",
    tag = "orders",
    params(IdempotencyHeader),
    request_body(content = OrderRequest, description = "What to order; may be left out"),
    responses(
        (status = 201, description = "Stored (status pending) and queued for publishing; Location: /orders/{id}", body = CreatedOrder),
        (status = 400, description = "Invalid body or header; `field` names the culprit", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the service's body timeout (10 s); the connection is closed", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with a different body", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 429, description = "Too many orders from this client (ORDER_RATE_LIMIT, per address; behind TRUSTED_PROXIES, per forwarded address): nothing was ordered", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds to wait before this client's next order, at least 1"))),
        (status = 503, description = "The database is unavailable or too many orders are waiting to be stored (nothing was ordered; answered at once while the database is known to be down), or the database did not confirm the order (retry with the same Idempotency-Key to find out); Retry-After: 1", body = ErrorBody),
    ),
)]
pub async fn create_order(
    request: HttpRequest,
    request_id: RequestId,
    payload: web::Payload,
    desk: web::Data<Addr<OrderDesk>>,
    limit: web::Data<ClientLimit>,
) -> Result<HttpResponse, ApiError> {
    let body = http::read_json_body(&request, payload).await?;
    let order = OrderRequest::parse(&body)?;
    let idempotency_key = match request.headers().get("idempotency-key") {
        None => None,
        Some(value) => Some(IdempotencyKey::try_from(value.to_str().map_err(|_| {
            InvalidOrder {
                message: "Idempotency-Key must be printable ASCII".into(),
                field: Some("Idempotency-Key".into()),
            }
        })?)?),
    };
    // Before the desk sees it: a refused order is never stored, and the
    // orders already taken are not touched.
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
        })?;
    let ticket = desk
        .send(PlaceOrder {
            order,
            idempotency_key,
            request_id: Some(request_id.0),
        })
        .await??;
    // Should this request be dropped while the order waits (its client went
    // away), the ticket goes with it and the order is not placed.
    let placed = ticket.outcome().await?;
    let (order, replayed) = match placed {
        Placed::Created(order) => (order, false),
        Placed::Replayed(order) => (order, true),
    };
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/orders/{}", order.order_id)))
        .insert_header((
            "idempotent-replayed",
            if replayed { "true" } else { "false" },
        ))
        .json(CreatedOrder {
            message: "Order created and message sent!",
            order,
        }))
}

/// One order, without the customer's email: anyone holding the id may ask.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "orders",
    params(("id" = Uuid, Path, description = "The order id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 400, description = "Not a UUID", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 503, description = "The database is unavailable; Retry-After: 1", body = ErrorBody),
    ),
)]
pub async fn get_order(
    id: web::Path<String>,
    desk: web::Data<Addr<OrderDesk>>,
    RequestLog(log): RequestLog,
) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid(&id, "id")?;
    let order = desk
        .send(GetOrder(id))
        .await?
        .map_err(|e| ApiError::read_failed(&log, e))?
        .ok_or(ApiError::OrderNotFound(id))?;
    Ok(HttpResponse::Ok().json(OrderView {
        customer_email: None,
        ..order
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    status: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// Orders, oldest first, a page at a time (staff).
#[utoipa::path(
    get,
    path = "/orders",
    tag = "orders",
    security(("staffToken" = [])),
    params(
        ("status" = Option<OrderStatus>, Query, description = "Only orders in this status"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 200, description = "Page size (50)"),
        ("after" = Option<Uuid>, Query, description = "`next_after` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page", body = OrderPage),
        (status = 400, description = "Invalid query parameter; `field` names it", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "Staff endpoints are disabled (no ADMIN_TOKEN)", body = ErrorBody),
        (status = 503, description = "The database is unavailable; Retry-After: 1", body = ErrorBody),
    ),
)]
pub async fn list_orders(
    _: StaffOnly,
    params: web::Query<ListParams>,
    desk: web::Data<Addr<OrderDesk>>,
    RequestLog(log): RequestLog,
) -> Result<HttpResponse, ApiError> {
    let status = params
        .status
        .as_deref()
        .map(|s| {
            OrderStatus::parse(s).ok_or_else(|| {
                InvalidParameter::field("status", "status must be pending, confirmed or rejected")
            })
        })
        .transpose()?;
    let limit = match params.limit.as_deref() {
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
    let after = params
        .after
        .as_deref()
        .map(|a| parse_uuid(a, "after"))
        .transpose()?;
    // One more than asked tells whether another page follows.
    let mut orders = desk
        .send(ListOrders {
            status,
            after,
            limit: limit + 1,
        })
        .await?
        .map_err(|e| ApiError::read_failed(&log, e))?;
    let next_after = (orders.len() as u64 > limit).then(|| {
        orders.truncate(limit as usize);
        orders.last().map(|o| o.order_id)
    });
    Ok(HttpResponse::Ok().json(OrderPage {
        orders,
        next_after: next_after.flatten(),
    }))
}

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

fn parse_uuid(raw: &str, field: &'static str) -> Result<Uuid, InvalidParameter> {
    raw.parse().map_err(|_| {
        InvalidParameter::field(
            field,
            format!("{field} must be an order id (a UUID), got {raw:?}"),
        )
    })
}
