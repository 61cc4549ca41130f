use actix::Addr;
use actix_web::http::header::{AUTHORIZATION, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use shared::http;
use slog::{Logger, warn};

use crate::actors::stock_keeper::{CreateProduct, GetProduct, ListProducts, Restock, StockKeeper};
use crate::domain::catalogue::{Access, NewProduct, RestockRequest, check_access};
use crate::error::ApiError;

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
pub async fn list_products(keeper: web::Data<Addr<StockKeeper>>) -> Result<HttpResponse, ApiError> {
    let products = keeper.send(ListProducts).await??;
    Ok(HttpResponse::Ok().json(products))
}

/// `GET /products/{id}`.
pub async fn get_product(
    id: web::Path<String>,
    keeper: web::Data<Addr<StockKeeper>>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let product = keeper
        .send(GetProduct(id.clone()))
        .await??
        .ok_or(ApiError::ProductNotFound(id))?;
    Ok(HttpResponse::Ok().json(product))
}

/// `POST /products` (staff): `{"id", "name", "stock", "price_cents"}`.
pub async fn create_product(
    request: HttpRequest,
    staff: web::Data<StaffAccess>,
    payload: web::Payload,
    keeper: web::Data<Addr<StockKeeper>>,
) -> Result<HttpResponse, ApiError> {
    staff.check(&request)?;
    let product = http::read_json::<NewProduct>(&request, payload)
        .await?
        .validate()?;
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
    payload: web::Payload,
    keeper: web::Data<Addr<StockKeeper>>,
) -> Result<HttpResponse, ApiError> {
    staff.check(&request)?;
    let quantity = http::read_json::<RestockRequest>(&request, payload)
        .await?
        .validate()?;
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
