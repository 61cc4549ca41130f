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

#[actix_web::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let client = awc::Client::default();

    let mut unknown = client
        .get(format!("{}/nope", app.address))
        .send()
        .await
        .unwrap();
    let mut wrong_method = client
        .delete(format!("{}/products", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(unknown.status().as_u16(), 404);
    assert_eq!(
        unknown.json::<serde_json::Value>().await.unwrap(),
        json!({"error": "no route for GET /nope"})
    );
    assert_eq!(wrong_method.status().as_u16(), 405);
    assert_eq!(wrong_method.headers().get("allow").unwrap(), "GET, POST");
    assert_eq!(
        wrong_method.json::<serde_json::Value>().await.unwrap(),
        json!({"error": "DELETE is not allowed on /products; use GET, POST"})
    );
}
