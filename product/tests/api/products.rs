use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn get_products_returns_the_original_catalogue() {
    let app = spawn_app().await;

    let (status, body) = app.get_products().await;

    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"123": {"name": "Laptop", "stock": 10}, "456": {"name": "Mouse", "stock": 50}})
    );
}

#[actix_web::test]
async fn health_answers_ok() {
    let app = spawn_app().await;

    let response = awc::Client::default()
        .get(format!("{}/health", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 200);
}

#[actix_web::test]
async fn openapi_describes_exactly_the_routes_served() {
    let app = spawn_app().await;

    testkit::openapi::assert_describes(&app.address, &product::routes::route_table()).await;
}
