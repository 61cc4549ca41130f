use actix::Addr;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use shared::http::{self, StaffOnly};
use slog::Logger;

use crate::actors::catalogue::{Catalogue, GetProduct, ListProducts};
use crate::actors::stock_keeper::{CreateProduct, Restock, StockKeeper};
use crate::domain::catalogue::{NewProduct, RestockRequest};
use crate::error::ApiError;

/// `GET /products`: `{"123":{"name":"Laptop","stock":10},...}`.
pub async fn list_products(
    catalogue: web::Data<Addr<Catalogue>>,
    log: web::Data<Logger>,
) -> Result<HttpResponse, ApiError> {
    let products = catalogue
        .send(ListProducts)
        .await?
        .map_err(|e| ApiError::from_stock(&log, e))?;
    Ok(HttpResponse::Ok().json(products))
}

/// `GET /products/{id}`.
pub async fn get_product(
    id: web::Path<String>,
    catalogue: web::Data<Addr<Catalogue>>,
    log: web::Data<Logger>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let product = catalogue
        .send(GetProduct(id.clone()))
        .await?
        .map_err(|e| ApiError::from_stock(&log, e))?
        .ok_or(ApiError::ProductNotFound(id))?;
    Ok(HttpResponse::Ok().json(product))
}

/// `POST /products` (staff): `{"id", "name", "stock", "price_cents"}`.
pub async fn create_product(
    _: StaffOnly,
    request: HttpRequest,
    payload: web::Payload,
    keeper: web::Data<Addr<StockKeeper>>,
    log: web::Data<Logger>,
) -> Result<HttpResponse, ApiError> {
    let product = http::read_json::<NewProduct>(&request, payload)
        .await?
        .validate()?;
    let created = keeper
        .send(CreateProduct(product))
        .await?
        .map_err(|e| ApiError::from_stock(&log, e))?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/products/{}", created.id)))
        .json(created))
}

/// `POST /products/{id}/restock` (staff): `{"quantity": n}`.
pub async fn restock(
    _: StaffOnly,
    request: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    keeper: web::Data<Addr<StockKeeper>>,
    log: web::Data<Logger>,
) -> Result<HttpResponse, ApiError> {
    let quantity = http::read_json::<RestockRequest>(&request, payload)
        .await?
        .validate()?;
    let product_id = id.into_inner();
    let restocked = keeper
        .send(Restock {
            product_id: product_id.clone(),
            quantity,
        })
        .await?
        .map_err(|e| ApiError::from_stock(&log, e))?
        .ok_or(ApiError::ProductNotFound(product_id))?;
    Ok(HttpResponse::Ok().json(restocked))
}
