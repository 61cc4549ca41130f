//! What every request goes through on its way in and out: it gets its id
//! (echoed in `x-request-id`), is counted with its latency in `/metrics`,
//! and gets an access line in the log (at `debug`: intake's hot path logs
//! only the original system's lines).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use slog::{Logger, debug};

use super::{REQUEST_ID_HEADER, RequestId};
use crate::metrics::Metrics;

/// The middleware (`App::wrap(from_fn(observe))`); reads the [`Metrics`]
/// and the [`Logger`] from the app's data.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = RequestId::of(request.headers());
    request.extensions_mut().insert(id.clone());
    let started = Instant::now();
    let metrics = request.app_data::<web::Data<Metrics>>().cloned();
    let log = request.app_data::<web::Data<Logger>>().cloned();

    let mut response = next.call(request).await?;

    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let request = response.request();
    if let Some(metrics) = metrics {
        // The route's pattern (`/orders/{id}`), so ids do not multiply series.
        let route = request.match_pattern();
        metrics.observe_request(
            request.method().as_str(),
            route.as_deref().unwrap_or("unmatched"),
            status,
            seconds,
        );
    }
    if let Some(log) = log {
        debug!(log, "request";
            "method" => %request.method(), "path" => request.path(), "status" => status,
            "latency_ms" => seconds * 1000.0, "request_id" => &id.0);
    }
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}
