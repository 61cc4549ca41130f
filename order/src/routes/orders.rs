use actix::Addr;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use shared::http::{self, StaffOnly};
use slog::Logger;
use uuid::Uuid;

use crate::actors::order_desk::{GetOrder, ListOrders, OrderDesk, PlaceOrder};
use crate::domain::order::{OrderView, Placed};
use crate::domain::order_request::{IdempotencyKey, InvalidOrder, OrderRequest};
use crate::domain::order_status::OrderStatus;
use crate::error::ApiError;

pub const DEFAULT_PAGE: u64 = 50;
pub const MAX_PAGE: u64 = 200;

/// `POST /create_order` (and `POST /orders`): no body orders one Laptop
/// (product "123"); a JSON body `{"product_id": "456", "quantity": 2,
/// "customer_email": "..."}` orders that instead.
pub async fn create_order(
    request: HttpRequest,
    payload: web::Payload,
    desk: web::Data<Addr<OrderDesk>>,
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
    let placed = desk
        .send(PlaceOrder {
            order,
            idempotency_key,
        })
        .await??;
    let (order, replayed) = match placed {
        Placed::Created(order) => (order, false),
        Placed::Replayed(order) => (order, true),
    };
    let mut body = json!({ "message": "Order created and message sent!" });
    body.as_object_mut().expect("an object").extend(
        serde_json::to_value(&order)
            .expect("an order serializes")
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/orders/{}", order.order_id)))
        .insert_header((
            "idempotent-replayed",
            if replayed { "true" } else { "false" },
        ))
        .json(body))
}

/// `GET /orders/{id}`: anyone holding the id may ask, so without the
/// customer's email.
pub async fn get_order(
    id: web::Path<String>,
    desk: web::Data<Addr<OrderDesk>>,
    log: web::Data<Logger>,
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

/// `GET /orders?status=&limit=&after=` (staff): oldest first; `next_after`
/// is the cursor of the next page, `null` on the last one.
pub async fn list_orders(
    _: StaffOnly,
    params: web::Query<ListParams>,
    desk: web::Data<Addr<OrderDesk>>,
    log: web::Data<Logger>,
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
    Ok(HttpResponse::Ok().json(json!({ "orders": orders, "next_after": next_after.flatten() })))
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
