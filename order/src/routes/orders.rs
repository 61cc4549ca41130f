use actix::Addr;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::json;

use crate::actors::order_desk::{OrderDesk, PlaceOrder};
use crate::domain::order_request::{MAX_BODY_BYTES, OrderRequest};
use crate::error::ApiError;

/// `POST /create_order`: no body orders one Laptop (product "123"); a JSON
/// body `{"product_id": "456", "quantity": 2}` orders that instead.
pub async fn create_order(
    request: HttpRequest,
    payload: web::Payload,
    desk: web::Data<Addr<OrderDesk>>,
) -> Result<HttpResponse, ApiError> {
    let body = read_limited(payload, MAX_BODY_BYTES).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        require_json(&request)?;
    }
    let order = OrderRequest::parse(&body)?;
    let event = desk.send(PlaceOrder(order)).await??;
    Ok(HttpResponse::Created().json(json!({
        "message": "Order created and message sent!",
        "order_id": event.order_id,
        "event_id": event.event_id,
        "product_id": event.product_id,
        "quantity": event.quantity,
    })))
}

/// A body without a content type is read as JSON, so `curl -X POST` with
/// `--data` and no header still works only when the header says JSON or
/// nothing at all.
fn require_json(request: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = request.headers().get(CONTENT_TYPE) else {
        return Ok(());
    };
    let value = value.to_str().unwrap_or("<not text>");
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(value.to_string()))
    }
}

async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::UnreadableBody(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
