//! The staff token: checked before anything reads the request.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use slog::{Logger, warn};
use subtle::ConstantTimeEq;

use super::error_response;

/// The staff token of a service (`ADMIN_TOKEN`), if it has one: app data
/// for [`StaffOnly`].
pub struct StaffAccess {
    token: Option<String>,
    service: &'static str,
    log: Logger,
}

impl StaffAccess {
    pub fn new(token: Option<String>, service: &'static str, log: Logger) -> Self {
        if token.is_none() {
            warn!(
                log,
                "ADMIN_TOKEN is not set: staff endpoints are disabled (they answer 403)"
            );
        }
        Self {
            token,
            service,
            log,
        }
    }

    fn check(&self, request: &HttpRequest) -> Result<(), AccessError> {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        match check_access(self.token.as_deref(), header) {
            Access::Granted => Ok(()),
            Access::Unauthenticated => Err(AccessError::Unauthenticated),
            Access::NotConfigured => {
                warn!(self.log, "refused a staff request: ADMIN_TOKEN is not set, so staff endpoints are disabled";
                    "method" => %request.method(), "path" => request.path());
                Err(AccessError::Disabled(self.service))
            }
        }
    }
}

/// A request that carries the staff token. Put it first among a handler's
/// arguments: extractors run in order, so a request without the token is
/// refused (401) before anything reads its body (which would give 400, 413
/// or 415 and tell a stranger about the endpoint).
pub struct StaffOnly;

impl FromRequest for StaffOnly {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(staff) = request.app_data::<web::Data<StaffAccess>>() else {
            let message = "staff access is not set up in this service";
            let response = error_response(StatusCode::INTERNAL_SERVER_ERROR, message, None);
            return ready(Err(InternalError::from_response(message, response).into()));
        };
        ready(staff.check(request).map(|()| StaffOnly).map_err(Into::into))
    }
}

/// Why a staff endpoint refused a request.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("send the staff token as Authorization: Bearer <ADMIN_TOKEN>")]
    Unauthenticated,
    #[error("staff endpoints are disabled: the {0} service has no ADMIN_TOKEN")]
    Disabled(&'static str),
}

impl ResponseError for AccessError {
    fn status_code(&self) -> StatusCode {
        match self {
            AccessError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AccessError::Disabled(_) => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = error_response(self.status_code(), self, None);
        if matches!(self, AccessError::Unauthenticated) {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Whether a request may use the staff endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Granted,
    /// No or a wrong bearer token.
    Unauthenticated,
    /// The service has no `ADMIN_TOKEN`: nobody may.
    NotConfigured,
}

/// Compares the `Authorization` header with `Bearer <expected>` in constant
/// time, so the time taken says nothing about how much of a guess was right.
pub fn check_access(expected: Option<&str>, authorization: Option<&str>) -> Access {
    let Some(expected) = expected else {
        return Access::NotConfigured;
    };
    let Some(presented) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
        return Access::Unauthenticated;
    };
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Access::Granted
    } else {
        Access::Unauthenticated
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test as actix_test};
    use serde_json::{Value, json};

    use super::*;
    use actix_web::http::header::CONTENT_TYPE;

    use crate::http::{BodyError, MAX_BODY_BYTES, read_json};

    #[test]
    fn only_the_exact_bearer_token_is_granted() {
        assert_eq!(
            check_access(Some("s3cret"), Some("Bearer s3cret")),
            Access::Granted
        );
        assert_eq!(
            check_access(Some("s3cret"), Some("Bearer s3cre")),
            Access::Unauthenticated
        );
        assert_eq!(
            check_access(Some("s3cret"), Some("s3cret")),
            Access::Unauthenticated
        );
        assert_eq!(check_access(Some("s3cret"), None), Access::Unauthenticated);
        assert_eq!(
            check_access(None, Some("Bearer s3cret")),
            Access::NotConfigured
        );
    }

    async fn staff_call(
        token: Option<&str>,
        authorization: Option<&str>,
        content_type: &str,
        body: String,
    ) -> (u16, Option<String>, Value) {
        async fn staff_only(
            _: StaffOnly,
            request: HttpRequest,
            payload: web::Payload,
        ) -> Result<HttpResponse, BodyError> {
            let value: Value = read_json(&request, payload).await?;
            Ok(HttpResponse::Ok().json(value))
        }
        let staff = web::Data::new(StaffAccess::new(
            token.map(str::to_string),
            "test",
            Logger::root(slog::Discard, slog::o!()),
        ));
        let app = actix_test::init_service(
            App::new()
                .app_data(staff)
                .route("/staff", web::post().to(staff_only)),
        )
        .await;
        let mut request = actix_test::TestRequest::post()
            .uri("/staff")
            .insert_header((CONTENT_TYPE, content_type))
            .set_payload(body);
        if let Some(authorization) = authorization {
            request = request.insert_header((AUTHORIZATION, authorization));
        }
        let response = actix_test::call_service(&app, request.to_request()).await;
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_string());
        (
            status,
            challenge,
            actix_test::read_body_json(response).await,
        )
    }

    #[actix_web::test]
    async fn staff_endpoints_check_the_token_before_reading_the_body() {
        let token = Some("0123456789abcdef");
        let bodies = [
            ("application/json", r#"{"a":1}"#.to_string()),
            ("application/json", "{oops".to_string()),
            ("application/json", "x".repeat(MAX_BODY_BYTES + 1)),
            ("application/x-www-form-urlencoded", "a=1".to_string()),
        ];
        for authorization in [
            None,
            Some("Bearer wrong-token-00000"),
            Some("0123456789abcdef"),
        ] {
            for (content_type, body) in bodies.clone() {
                let answer = staff_call(token, authorization, content_type, body).await;

                assert_eq!(
                    answer,
                    (
                        401,
                        Some("Bearer".to_string()),
                        json!({ "error": "send the staff token as Authorization: Bearer <ADMIN_TOKEN>" })
                    ),
                    "{authorization:?} {content_type}"
                );
            }
        }
    }

    #[actix_web::test]
    async fn the_staff_token_opens_staff_endpoints() {
        let answer = staff_call(
            Some("0123456789abcdef"),
            Some("Bearer 0123456789abcdef"),
            "application/json",
            r#"{"a":1}"#.into(),
        )
        .await;

        assert_eq!(answer, (200, None, json!({ "a": 1 })));
    }

    #[actix_web::test]
    async fn without_an_admin_token_staff_endpoints_are_forbidden() {
        let answer = staff_call(
            None,
            Some("Bearer 0123456789abcdef"),
            "application/json",
            "{}".into(),
        )
        .await;

        assert_eq!(
            answer,
            (
                403,
                None,
                json!({ "error": "staff endpoints are disabled: the test service has no ADMIN_TOKEN" })
            )
        );
    }
}
