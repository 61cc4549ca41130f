use serde_json::Value;
use testkit::eventually;

use crate::helpers::{TestApp, WAIT, WORK_QUEUE, spawn_app_with};

async fn ready(app: &TestApp) -> (u16, Value) {
    let mut response = awc::Client::default()
        .get(format!("{}/ready", app.admin_address))
        .send()
        .await
        .expect("GET /ready");
    let body = response.json().await.unwrap_or(Value::Null);
    (response.status().as_u16(), body)
}

async fn wait_ready(app: &TestApp, what: &str, wanted: impl Fn(u16, &Value) -> bool) -> Value {
    eventually(WAIT, what, || async {
        let (status, body) = ready(app).await;
        wanted(status, &body).then_some(body)
    })
    .await
}

#[actix_web::test]
async fn readiness_follows_the_database_and_the_broker_both_ways() {
    // Arrange: PostgreSQL and RabbitMQ each through a proxy that can cut
    // them off.
    let proxy = testkit::TcpProxy::start(testkit::pg_address());
    let broker_proxy = testkit::TcpProxy::start(testkit::amqp_address());
    let app = spawn_app_with(|settings, database| {
        settings.common.database_url = database.url_via(proxy.port());
        settings.common.amqp_url =
            testkit::via_port(&settings.common.amqp_url, broker_proxy.port());
    })
    .await;
    let up = wait_ready(&app, "ready once consuming", |status, _| status == 200).await;

    // Act: the database goes away, then comes back.
    proxy.cut();
    let database_down = wait_ready(&app, "503 naming the database", |status, body| {
        status == 503 && body["checks"]["database"] != "ok"
    })
    .await;
    proxy.restore();
    wait_ready(&app, "ready after the database", |status, _| status == 200).await;

    // Act: the broker goes away, then comes back.
    broker_proxy.cut();
    let broker_down = wait_ready(&app, "503 naming the queue", |status, body| {
        status == 503 && body["checks"][WORK_QUEUE] != "ok"
    })
    .await;
    broker_proxy.restore();
    let back = wait_ready(&app, "ready after the broker", |status, _| status == 200).await;

    // Assert: each answer names what was wrong, and only that.
    assert_eq!(up["status"], "ready");
    assert_eq!(up["checks"]["database"], "ok");
    assert_eq!(up["checks"][WORK_QUEUE], "ok");
    assert_eq!(database_down["status"], "not ready");
    assert_eq!(broker_down["checks"]["database"], "ok");
    assert!(
        broker_down["checks"][WORK_QUEUE]
            .as_str()
            .unwrap()
            .starts_with("not consuming")
    );
    assert_eq!(back["status"], "ready");
}
