use actix::Addr;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use platform::http::{self, ErrorBody, RequestLog, StaffOnly};

use crate::actors::catalogue::{Catalogue, GetProduct, ListProducts};
use crate::actors::stock_keeper::{CreateProduct, Restock, StockKeeper};
use crate::domain::ProductView;
use crate::domain::catalogue::{self, NewProduct, ProductDetails, RestockRequest};
use crate::routes::error::ApiError;

/// Every product with its stock, keyed by id (the original shape).
///
/// `{"123":{"name":"Laptop","stock":10},...}`
#[utoipa::path(
    get,
    path = "/products",
    tag = "products",
    responses(
        (status = 200, description = "The catalogue, keyed by product id", body = BTreeMap<String, ProductView>,
            example = json!({"123": {"name": "Laptop", "stock": 10}})),
        (status = 503, description = "The database is unavailable; Retry-After: 1", body = ErrorBody),
    ),
)]
pub async fn list_products(
    catalogue: web::Data<Addr<Catalogue>>,
    RequestLog(log): RequestLog,
) -> Result<HttpResponse, ApiError> {
    let products = catalogue
        .send(ListProducts)
        .await?
        .map_err(|e| ApiError::from_stock(&log, e))?;
    Ok(HttpResponse::Ok().json(products))
}

/// One product.
#[utoipa::path(
    get,
    path = "/products/{id}",
    tag = "products",
    params(("id" = String, Path, description = "Product id", min_length = 1, max_length = 64,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000-\\u001F\\u007F-\\u009F]*$")),
    responses(
        (status = 200, description = "The product", body = ProductDetails),
        (status = 400, description = "An id no product can have (a control character, or over 64 characters); `field` is `id`", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 503, description = "The database is unavailable; Retry-After: 1", body = ErrorBody),
    ),
)]
pub async fn get_product(
    id: web::Path<String>,
    catalogue: web::Data<Addr<Catalogue>>,
    RequestLog(log): RequestLog,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    catalogue::check_id(&id)?;
    let product = catalogue
        .send(GetProduct(id.clone()))
        .await?
        .map_err(|e| ApiError::from_stock(&log, e))?
        .ok_or(ApiError::ProductNotFound(id))?;
    Ok(HttpResponse::Ok().json(product))
}

/// Add a product (staff).
#[utoipa::path(
    post,
    path = "/products",
    tag = "products",
    security(("staffToken" = [])),
    request_body = NewProduct,
    responses(
        (status = 201, description = "Created; Location: /products/{id}", body = ProductDetails),
        (status = 400, description = "Invalid body; `field` names the culprit", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "Staff endpoints are disabled (no ADMIN_TOKEN)", body = ErrorBody),
        (status = 409, description = "A product with this id exists", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the service's body timeout (10 s); the connection is closed", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 503, description = "The database is unavailable; Retry-After: 1", body = ErrorBody),
    ),
)]
pub async fn create_product(
    _: StaffOnly,
    request: HttpRequest,
    payload: web::Payload,
    keeper: web::Data<Addr<StockKeeper>>,
    RequestLog(log): RequestLog,
) -> Result<HttpResponse, ApiError> {
    let product = http::read_json::<NewProduct>(&request, payload)
        .await?
        .validate()?;
    let created = keeper
        .send(CreateProduct(product))
        .await?
        .map_err(|e| ApiError::from_stock(&log, e))?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/products/{}", path_segment(&created.id))))
        .json(created))
}

/// Add stock (staff); goes through the StockKeeper like every stock change.
#[utoipa::path(
    post,
    path = "/products/{id}/restock",
    tag = "products",
    security(("staffToken" = [])),
    params(("id" = String, Path, description = "Product id", min_length = 1, max_length = 64,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000-\\u001F\\u007F-\\u009F]*$")),
    request_body = RestockRequest,
    responses(
        (status = 200, description = "The product with its new stock", body = ProductDetails),
        (status = 400, description = "Invalid body, or an id no product can have; `field` names the culprit", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "Staff endpoints are disabled (no ADMIN_TOKEN)", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "The stock would overflow", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the service's body timeout (10 s); the connection is closed", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 503, description = "The database is unavailable; Retry-After: 1", body = ErrorBody),
    ),
)]
pub async fn restock(
    _: StaffOnly,
    request: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    keeper: web::Data<Addr<StockKeeper>>,
    RequestLog(log): RequestLog,
) -> Result<HttpResponse, ApiError> {
    let product_id = id.into_inner();
    catalogue::check_id(&product_id)?;
    let quantity = http::read_json::<RestockRequest>(&request, payload)
        .await?
        .validate()?;
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

/// `id` as one URL path segment: percent-encoded but for the unreserved
/// characters, so that a `Location` of any id is ASCII and leads back to it
/// (a raw non-ASCII header value is read as Latin-1 by clients).
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}
