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
async fn probes_and_metrics_are_served_on_the_admin_listener_only() {
    // Arrange
    let app = spawn_app().await;
    let client = awc::Client::default();
    let status = |address: &str, path: &str| {
        let request = client.get(format!("{address}{path}"));
        async move { request.send().await.unwrap().status().as_u16() }
    };

    for path in ["/health", "/ready", "/metrics"] {
        // Act
        let admin = status(&app.admin_address, path).await;
        let public = status(&app.address, path).await;

        // Assert
        assert_eq!(admin, 200, "{path} on the admin listener");
        assert_eq!(public, 404, "{path} on the public listener");
    }
    assert_eq!(status(&app.address, "/products").await, 200);
    assert_eq!(status(&app.admin_address, "/products").await, 404);
}

#[actix_web::test]
async fn a_failed_service_says_so_on_health_and_stops_with_an_error() {
    // Arrange
    let app = spawn_app().await;

    // Act: what the consumer does when a domain actor has died.
    app.health.fail("a domain actor has stopped");

    // Assert: the service stops by itself, with an error (a non-zero exit).
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(15), app.stopped)
        .await
        .expect("the service stops")
        .unwrap();
    let error = stopped.expect_err("a failed service stops with an error");
    assert!(
        error.to_string().contains("a domain actor has stopped"),
        "{error}"
    );
}

#[actix_web::test]
async fn health_reports_a_failure_with_its_reason() {
    // Arrange
    let health = foundation::health::ServiceHealth::new();
    let app = actix_web::test::init_service(
        actix_web::App::new()
            .app_data(actix_web::web::Data::new(health.clone()))
            .route(
                "/health",
                actix_web::web::get().to(foundation::health::health),
            ),
    )
    .await;

    // Act
    health.fail("a domain actor has stopped");
    let response = actix_web::test::call_service(
        &app,
        actix_web::test::TestRequest::get()
            .uri("/health")
            .to_request(),
    )
    .await;

    // Assert
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = actix_web::test::read_body_json(response).await;
    assert_eq!(
        body,
        json!({"status": "failing", "reason": "a domain actor has stopped"})
    );
}

#[actix_web::test]
async fn openapi_describes_exactly_the_routes_served() {
    let app = spawn_app().await;

    testkit::openapi::assert_describes(
        &app.address,
        &<product::routes::ProductApi as platform::http::Api>::route_table(),
    )
    .await;
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
