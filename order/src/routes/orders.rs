use actix::Addr;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use platform::http::{self, ErrorBody, RequestId, RequestLog, StaffOnly};
use platform::rate_limit::ClientLimit;
use serde::Serialize;

use utoipa::ToSchema;
use uuid::Uuid;

use crate::actors::order_desk::{GetOrder, OrderDesk, PlaceOrder};
use crate::domain::order::{OrderView, Placed};
use crate::domain::order_request::OrderRequest;
use crate::domain::order_status::OrderStatus;
use crate::routes::error::ApiError;
use crate::routes::params::{self, ListParams, parse_uuid};

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
    let idempotency_key = params::idempotency_key(&request)?;
    // Before the desk sees it: a refused order is never stored, and the
    // orders already taken are not touched.
    params::within_rate(&limit, &request)?;
    let ticket = desk
        .send(PlaceOrder {
            order,
            idempotency_key,
            request_id: Some(request_id.0),
        })
        .await??;
    // Should this request be dropped while the order waits (its client went
    // away), the ticket goes with it and the order is not placed.
    Ok(created(ticket.outcome().await?))
}

/// `201 Created` for a placed order, new or replayed by its key.
fn created(placed: Placed) -> HttpResponse {
    let (order, replayed) = match placed {
        Placed::Created(order) => (order, false),
        Placed::Replayed(order) => (order, true),
    };
    HttpResponse::Created()
        .insert_header((LOCATION, format!("/orders/{}", order.order_id)))
        .insert_header((
            "idempotent-replayed",
            if replayed { "true" } else { "false" },
        ))
        .json(CreatedOrder {
            message: "Order created and message sent!",
            order,
        })
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
    let query = params.parse()?;
    let orders = desk
        .send(query.message())
        .await?
        .map_err(|e| ApiError::read_failed(&log, e))?;
    Ok(HttpResponse::Ok().json(OrderPage::of(orders, query.limit)))
}

impl OrderPage {
    /// At most `limit` of `orders`, which hold one more when another page
    /// follows.
    fn of(mut orders: Vec<OrderView>, limit: u64) -> Self {
        let next_after = (orders.len() as u64 > limit).then(|| {
            orders.truncate(limit as usize);
            orders.last().map(|o| o.order_id)
        });
        Self {
            orders,
            next_after: next_after.flatten(),
        }
    }
}
