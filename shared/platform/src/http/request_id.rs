//! The id of each HTTP request: `x-request-id` when the caller sends a
//! usable one, else the trace id of a W3C `traceparent`, else a new one (32
//! hex digits, itself a valid trace id). It is echoed in the response,
//! written on the request's log lines ([`RequestLog`], and an access line at
//! `debug`), and carried with the order's events to every service.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use slog::{Logger, o};
use uuid::Uuid;

use contracts::events::valid_request_id;
use foundation::telemetry::{trace_id, with_request_id};

pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub use foundation::telemetry::TRACEPARENT_HEADER;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The id a request with `headers` goes by.
    pub fn of(headers: &HeaderMap) -> Self {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        if let Some(id) = header(REQUEST_ID_HEADER)
            .map(str::trim)
            .filter(|id| valid_request_id(id))
        {
            return Self(id.to_string());
        }
        if let Some(trace) = header(TRACEPARENT_HEADER).and_then(trace_id) {
            return Self(trace.to_string());
        }
        Self(Uuid::new_v4().simple().to_string())
    }
}

impl RequestId {
    /// The id the edge gave `request` (or, without the edge, one read now).
    pub fn of_request(request: &HttpRequest) -> Self {
        let id = request.extensions().get::<RequestId>().cloned();
        id.unwrap_or_else(|| RequestId::of(request.headers()))
    }
}

impl FromRequest for RequestId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(RequestId::of_request(request)))
    }
}

/// The service's logger with the request's id: for a handler's own lines.
pub struct RequestLog(pub Logger);

impl FromRequest for RequestLog {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = RequestId::of_request(request);
        let log = match request.app_data::<web::Data<Logger>>() {
            Some(log) => with_request_id(log, Some(&id.0)),
            None => Logger::root(slog::Discard, o!()),
        };
        ready(Ok(RequestLog(log)))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_callers_request_id_wins_then_the_trace_id_then_a_new_one() {
        let given = RequestId::of(&headers(&[
            (REQUEST_ID_HEADER, "checkout-42"),
            (TRACEPARENT_HEADER, TRACEPARENT),
        ]));
        let traced = RequestId::of(&headers(&[(TRACEPARENT_HEADER, TRACEPARENT)]));
        let unusable = RequestId::of(&headers(&[
            (REQUEST_ID_HEADER, "has spaces"),
            (TRACEPARENT_HEADER, "00-garbage"),
        ]));
        let new = RequestId::of(&HeaderMap::new());

        assert_eq!(given.0, "checkout-42");
        assert_eq!(traced.0, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(unusable.0.len(), 32);
        assert!(trace_id(&format!("00-{}-00f067aa0ba902b7-01", new.0)).is_some());
        assert_ne!(new, RequestId::of(&HeaderMap::new()));
    }
}

/// Properties over generated headers, 256 cases each (stated so that the
/// unit tests stay fast).
#[cfg(test)]
mod properties {
    use actix_web::http::header::{HeaderName, HeaderValue};
    use proptest::prelude::*;

    use super::*;

    fn headers(request_id: &[u8], traceparent: &[u8]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in [
            (REQUEST_ID_HEADER, request_id),
            (TRACEPARENT_HEADER, traceparent),
        ] {
            // What a client cannot send (CR, LF, NUL) never reaches a handler.
            if let Ok(value) = HeaderValue::from_bytes(value) {
                map.insert(HeaderName::from_static(name), value);
            }
        }
        map
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_headers_give_a_request_id_worth_carrying(
            request_id in prop::collection::vec(any::<u8>(), 0..140),
            traceparent in prop::collection::vec(any::<u8>(), 0..60),
        ) {
            let id = RequestId::of(&headers(&request_id, &traceparent));

            prop_assert!(valid_request_id(&id.0), "{:?}", id.0);
        }

        #[test]
        fn a_usable_request_id_is_kept_as_sent(
            request_id in "[!-~]{1,128}",
            traceparent in ".{0,60}",
        ) {
            let id = RequestId::of(&headers(request_id.as_bytes(), traceparent.as_bytes()));

            prop_assert_eq!(id.0, request_id);
        }
    }
}
