use actix::Addr;
use actix_web::error::JsonPayloadError;
use actix_web::http::header::{AUTHORIZATION, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use slog::{Logger, warn};

use crate::actors::catalogue::{Catalogue, GetProduct, ListProducts};
use crate::actors::stock_keeper::{CreateProduct, Restock, StockKeeper};
use crate::domain::catalogue::{Access, NewProduct, RestockRequest, check_access};
use crate::error::ApiError;

/// Largest JSON body the staff endpoints read.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The staff token (`ADMIN_TOKEN`), if the service has one.
pub struct StaffAccess {
    pub token: Option<String>,
    pub log: Logger,
}

impl StaffAccess {
    fn check(&self, request: &HttpRequest) -> Result<(), ApiError> {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        match check_access(self.token.as_deref(), header) {
            Access::Granted => Ok(()),
            Access::Unauthenticated => Err(ApiError::Unauthenticated),
            Access::NotConfigured => {
                warn!(self.log, "refused a staff request: ADMIN_TOKEN is not set, so staff endpoints are disabled";
                    "path" => request.path());
                Err(ApiError::StaffDisabled)
            }
        }
    }
}

/// `GET /products`: `{"123":{"name":"Laptop","stock":10},...}`.
pub async fn list_products(catalogue: web::Data<Addr<Catalogue>>) -> Result<HttpResponse, ApiError> {
    let products = catalogue.send(ListProducts).await??;
    Ok(HttpResponse::Ok().json(products))
}

/// `GET /products/{id}`.
pub async fn get_product(
    id: web::Path<String>,
    catalogue: web::Data<Addr<Catalogue>>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let product = catalogue
        .send(GetProduct(id.clone()))
        .await??
        .ok_or(ApiError::ProductNotFound(id))?;
    Ok(HttpResponse::Ok().json(product))
}

/// `POST /products` (staff): `{"id", "name", "stock", "price_cents"}`.
pub async fn create_product(
    request: HttpRequest,
    staff: web::Data<StaffAccess>,
    body: web::Json<NewProduct>,
    keeper: web::Data<Addr<StockKeeper>>,
) -> Result<HttpResponse, ApiError> {
    staff.check(&request)?;
    let product = body.into_inner().validate()?;
    let created = keeper.send(CreateProduct(product)).await??;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/products/{}", created.id)))
        .json(created))
}

/// `POST /products/{id}/restock` (staff): `{"quantity": n}`.
pub async fn restock(
    request: HttpRequest,
    staff: web::Data<StaffAccess>,
    id: web::Path<String>,
    body: web::Json<RestockRequest>,
    keeper: web::Data<Addr<StockKeeper>>,
) -> Result<HttpResponse, ApiError> {
    staff.check(&request)?;
    let quantity = body.validate()?;
    let product_id = id.into_inner();
    let restocked = keeper
        .send(Restock {
            product_id: product_id.clone(),
            quantity,
        })
        .await??
        .ok_or(ApiError::ProductNotFound(product_id))?;
    Ok(HttpResponse::Ok().json(restocked))
}

/// JSON bodies that do not parse get the API's JSON errors.
pub fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    match error {
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("unsupported content type".into())
        }
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge(format!("body is larger than {MAX_BODY_BYTES} bytes"))
        }
        other => ApiError::BadRequest(format!("invalid JSON body: {other}")),
    }
    .into()
}
