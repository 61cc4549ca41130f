//! Reading JSON request bodies, with one limit and one set of errors.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::{MAX_BODY_BYTES, error_response};
use crate::config::HttpLimits;

/// Why a request body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("unsupported content type {0:?}: send JSON with Content-Type: application/json")]
    NotJson(String),
    #[error(
        "the request body did not arrive within {} s; send it at once",
        .0.as_secs_f32()
    )]
    TimedOut(std::time::Duration),
    #[error("could not read the request body: {0}")]
    Unreadable(String),
    #[error("invalid JSON body: {0}")]
    Invalid(String),
}

impl ResponseError for BodyError {
    fn status_code(&self) -> StatusCode {
        match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::NotJson(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Unreadable(_) | BodyError::Invalid(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        error_response(self.status_code(), self, None)
    }
}

/// Reads a body of at most [`MAX_BODY_BYTES`] that says it is JSON
/// (`application/json` or `+json`; no content type is read as JSON), within
/// the service's [`HttpLimits::body_timeout`]. A blank body needs no content
/// type: it is for the caller to say what it means.
pub async fn read_json_body(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<web::Bytes, BodyError> {
    // actix-web times only the head: a body trickled a byte at a time would
    // hold its connection (and the handler) for as long as the client likes.
    let limit = request
        .app_data::<web::Data<HttpLimits>>()
        .map_or(HttpLimits::default().body_timeout, |limits| {
            limits.body_timeout
        });
    tokio::time::timeout(limit, read_limited(request, payload))
        .await
        .map_err(|_| BodyError::TimedOut(limit))?
}

async fn read_limited(
    request: &HttpRequest,
    mut payload: web::Payload,
) -> Result<web::Bytes, BodyError> {
    // A declared length over the limit is refused without reading a byte.
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(BodyError::TooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    if !is_blank(&body) {
        require_json(request)?;
    }
    Ok(body.freeze())
}

/// Reads a JSON body (see [`read_json_body`]) into a `T`.
pub async fn read_json<T: DeserializeOwned>(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<T, BodyError> {
    let body = read_json_body(request, payload).await?;
    if is_blank(&body) {
        return Err(BodyError::Invalid("the body is empty".into()));
    }
    serde_json::from_slice(&body).map_err(|e| BodyError::Invalid(e.to_string()))
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

fn require_json(request: &HttpRequest) -> Result<(), BodyError> {
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
        Err(BodyError::NotJson(value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test as actix_test};
    use serde_json::{Value, json};

    use super::*;

    async fn post(path: &str, content_type: Option<&str>, body: &str) -> (u16, Value) {
        async fn raw(
            request: HttpRequest,
            payload: web::Payload,
        ) -> Result<HttpResponse, BodyError> {
            let body = read_json_body(&request, payload).await?;
            Ok(HttpResponse::Ok().json(json!({ "bytes": body.len() })))
        }
        async fn parsed(
            request: HttpRequest,
            payload: web::Payload,
        ) -> Result<HttpResponse, BodyError> {
            let value: Value = read_json(&request, payload).await?;
            Ok(HttpResponse::Ok().json(value))
        }
        let app = actix_test::init_service(
            App::new()
                .route("/raw", web::post().to(raw))
                .route("/parsed", web::post().to(parsed)),
        )
        .await;
        let mut request = actix_test::TestRequest::post()
            .uri(path)
            .set_payload(body.to_string());
        if let Some(content_type) = content_type {
            request = request.insert_header((CONTENT_TYPE, content_type));
        }
        let response = actix_test::call_service(&app, request.to_request()).await;
        let status = response.status().as_u16();
        (status, actix_test::read_body_json(response).await)
    }

    #[actix_web::test]
    async fn json_bodies_are_read_with_or_without_a_content_type() {
        for content_type in [
            None,
            Some("application/json; charset=utf-8"),
            Some("application/merge-patch+json"),
        ] {
            let answer = post("/parsed", content_type, r#"{"a":1}"#).await;

            assert_eq!(answer, (200, json!({ "a": 1 })), "{content_type:?}");
        }
    }

    #[actix_web::test]
    async fn a_blank_body_needs_no_content_type_but_is_no_json_value() {
        assert_eq!(
            post("/raw", Some("text/plain"), " ").await,
            (200, json!({ "bytes": 1 }))
        );
        assert_eq!(
            post("/parsed", None, "").await,
            (
                400,
                json!({ "error": "invalid JSON body: the body is empty" })
            )
        );
    }

    #[actix_web::test]
    async fn a_body_that_does_not_arrive_in_time_gets_a_json_408_closing_the_connection() {
        // Arrange: a client that sends the head and then nothing.
        async fn raw(
            request: HttpRequest,
            payload: web::Payload,
        ) -> Result<HttpResponse, BodyError> {
            read_json_body(&request, payload).await?;
            Ok(HttpResponse::Ok().finish())
        }
        let limits = HttpLimits {
            body_timeout: std::time::Duration::from_millis(50),
            ..HttpLimits::default()
        };
        let app = actix_test::init_service(
            App::new()
                .app_data(web::Data::new(limits))
                .route("/raw", web::post().to(raw)),
        )
        .await;
        let mut request = actix_test::TestRequest::post().uri("/raw").to_request();
        *request.payload() = actix_web::dev::Payload::Stream {
            payload: Box::pin(futures_util::stream::pending()),
        };

        // Act
        let response = actix_test::call_service(&app, request).await;

        // Assert
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(
            response.response().head().connection_type(),
            actix_web::http::ConnectionType::Close
        );
        let body: Value = actix_test::read_body_json(response).await;
        assert_eq!(
            body,
            json!({ "error": "the request body did not arrive within 0.05 s; send it at once" })
        );
    }

    #[actix_web::test]
    async fn bad_bodies_get_413_415_or_400() {
        let cases = [
            (
                "x".repeat(MAX_BODY_BYTES + 1),
                None,
                413,
                "body is larger than 16384 bytes".to_string(),
            ),
            (
                "a=1".to_string(),
                Some("application/x-www-form-urlencoded"),
                415,
                "unsupported content type \"application/x-www-form-urlencoded\": send JSON with Content-Type: application/json".to_string(),
            ),
            (
                "{oops".to_string(),
                None,
                400,
                "invalid JSON body: key must be a string at line 1 column 2".to_string(),
            ),
        ];
        for (body, content_type, status, error) in cases {
            let answer = post("/parsed", content_type, &body).await;

            assert_eq!(answer, (status, json!({ "error": error })), "{body:.20}");
        }
    }
}

/// Properties of the body reader over generated bodies and content types,
/// 256 cases each (stated so that the unit tests stay fast).
#[cfg(test)]
mod properties {
    use actix_web::{App, test as actix_test};
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    /// What `read_json` answers to `body` sent with `content_type`.
    fn answer(content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        async fn parsed(
            request: HttpRequest,
            payload: web::Payload,
        ) -> Result<HttpResponse, BodyError> {
            let value: Value = read_json(&request, payload).await?;
            Ok(HttpResponse::Ok().json(value))
        }
        actix_web::rt::System::new().block_on(async move {
            let app = actix_test::init_service(App::new().route("/", web::post().to(parsed))).await;
            let mut request = actix_test::TestRequest::post().uri("/").set_payload(body);
            if let Some(content_type) = content_type {
                request = request.insert_header((CONTENT_TYPE, content_type));
            }
            let response = actix_test::call_service(&app, request.to_request()).await;
            let status = response.status().as_u16();
            (status, actix_test::read_body_json(response).await)
        })
    }

    fn any_content_type() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            Just("application/json".to_string()),
            Just("application/problem+json; charset=utf-8".to_string()),
            "[a-z]{1,8}/[a-z+.-]{1,12}(; ?[a-z]{1,8}=[a-z0-9-]{1,8})?",
            "[A-Za-z]{1,8}/[a-z.-]{0,4}(json|\\+json|\\+JSON|\\+xml|-json)",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_body_is_read_as_the_json_it_holds_or_refused_with_a_json_error(
            content_type in any_content_type(),
            body in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64),
                "[ \\[\\]{}\":,0-9a-z.eE+-]{0,40}".prop_map(String::into_bytes),
                (any::<i32>(), "[a-z ]{0,8}").prop_map(|(n, text)| {
                    serde_json::json!({ "n": n, "text": text }).to_string().into_bytes()
                }),
                Just(vec![b'1'; MAX_BODY_BYTES + 1]),
            ],
        ) {
            let (status, answer) = answer(content_type.as_deref(), body.clone());

            let json = serde_json::from_slice::<Value>(&body).ok();
            let declared_json = content_type.as_deref().is_none_or(|t| {
                let essence = t.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            });
            match status {
                200 => {
                    prop_assert!(declared_json && body.len() <= MAX_BODY_BYTES);
                    prop_assert_eq!(Some(answer), json);
                }
                400 | 413 | 415 => {
                    prop_assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{}", answer);
                    prop_assert!(json.is_none() || !declared_json || body.len() > MAX_BODY_BYTES, "{}", answer);
                }
                other => prop_assert!(false, "answered {}: {}", other, answer),
            }
        }
    }
}
