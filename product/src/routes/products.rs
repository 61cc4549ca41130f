use actix::Addr;
use actix_web::{HttpResponse, web};

use crate::actors::stock_keeper::{ListProducts, StockKeeper};
use crate::error::ApiError;

/// `GET /products`: `{"123":{"name":"Laptop","stock":10},...}`.
pub async fn list_products(keeper: web::Data<Addr<StockKeeper>>) -> Result<HttpResponse, ApiError> {
    let products = keeper.send(ListProducts).await??;
    Ok(HttpResponse::Ok().json(products))
}
