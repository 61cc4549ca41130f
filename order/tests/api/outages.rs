//! What clients are told when the database fails: plain words, never the
//! database's own error, and `Retry-After`.

use awc::ClientResponse;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use testkit::TcpProxy;

use crate::helpers::{TestApp, WAIT, spawn_app, spawn_app_with};

async fn orders(app: &TestApp) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT count(*) FROM orders",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn post_order(app: &TestApp, key: &str) -> (u16, Option<String>, Value) {
    let response = awc::Client::default()
        .post(format!("{}/create_order", app.address))
        .insert_header(("idempotency-key", key))
        .send()
        .await
        .unwrap();
    read(response).await
}

async fn read<S>(mut response: ClientResponse<S>) -> (u16, Option<String>, Value)
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.json::<Value>().await.unwrap();
    (response.status().as_u16(), retry_after, body)
}

#[actix_web::test]
async fn with_the_database_down_nothing_is_ordered_and_the_client_is_told_so() {
    // Arrange: the service reaches PostgreSQL through a proxy, then cannot.
    let proxy = TcpProxy::start(testkit::pg_address());
    let app = spawn_app_with(|settings, database| {
        settings.common.database_url = database.url_via(proxy.port());
    })
    .await;
    proxy.cut();

    // Act
    let (placed, read_back) = futures_util::future::join(post_order(&app, "down-1"), async {
        let response = awc::Client::default()
            .get(format!(
                "{}/orders/00000000-0000-0000-0000-000000000000",
                app.address
            ))
            .send()
            .await
            .unwrap();
        read(response).await
    })
    .await;

    // Assert
    assert_eq!(
        placed,
        (
            503,
            Some("1".to_string()),
            json!({"error": "the order could not be stored: the database is unavailable; nothing was ordered, retry later"})
        )
    );
    assert_eq!(
        read_back,
        (
            503,
            Some("1".to_string()),
            json!({"error": "orders cannot be read right now: the database is unavailable; retry later"})
        )
    );
    assert_eq!(orders(&app).await, 0);
    proxy.restore();
    // Refused at once until the probe finds the database back.
    testkit::eventually(WAIT, "orders to be served again", || async {
        (post_order(&app, "down-1").await.0 == 201).then_some(())
    })
    .await;
}

#[actix_web::test]
async fn a_failed_commit_is_reported_as_an_unknown_outcome() {
    // Arrange: PostgreSQL refuses every new order at COMMIT, the one step
    // whose failure leaves the client unsure whether the order was stored.
    let app = spawn_app().await;
    app.db
        .execute_unprepared(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$; \
             CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON orders \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await
        .unwrap();

    // Act
    let answer = post_order(&app, "checkout-7").await;

    // Assert: no trace of the database's words; the retry settles it.
    assert_eq!(
        answer,
        (
            503,
            Some("1".to_string()),
            json!({"error": "the database did not confirm the order: it may or may not have been stored; retry with the same Idempotency-Key to find out without ordering twice"})
        )
    );
    app.db
        .execute_unprepared("DROP TRIGGER refuse_at_commit ON orders")
        .await
        .unwrap();
    assert_eq!(post_order(&app, "checkout-7").await.0, 201);
    assert_eq!(post_order(&app, "checkout-7").await.0, 201, "replayed");
    assert_eq!(orders(&app).await, 1);
}
