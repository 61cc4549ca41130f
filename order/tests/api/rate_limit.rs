//! A client over its order rate is refused with 429, Retry-After and a JSON
//! error before its order reaches the desk: nothing refused is stored, and
//! every order taken is stored and published. Behind a trusted proxy each
//! forwarded client has its own limit; anyone else's header is ignored.

use std::collections::BTreeSet;

use platform::rate_limit::{Rate, RateLimit, TrustedProxies};
use serde_json::{Value, json};
use testkit::openapi::document;
use testkit::{count, eventually, scrape_metrics};

use crate::helpers::{TestApp, WAIT, spawn_app_with};

/// One order in ten seconds per client, after a burst of `burst`: within a
/// test, a client gets exactly its burst.
async fn spawn_limited(burst: u32, trusted_proxies: &str) -> TestApp {
    let proxies = TrustedProxies::parse(trusted_proxies).unwrap();
    spawn_app_with(move |settings, _| {
        settings.order_rate_limit = RateLimit::PerClient(Rate {
            per_second: 0.1,
            burst,
        });
        settings.trusted_proxies = proxies;
    })
    .await
}

/// What `POST /orders` answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

/// `POST /orders` of one product `rl`, with `key` and, when given, the
/// `X-Forwarded-For` header `forwarded`.
async fn place(app: &TestApp, key: &str, forwarded: Option<&str>) -> Answer {
    let mut request = awc::Client::default()
        .post(format!("{}/orders", app.address))
        .insert_header(("content-type", "application/json"))
        .insert_header(("idempotency-key", key));
    if let Some(forwarded) = forwarded {
        request = request.insert_header(("x-forwarded-for", forwarded));
    }
    let mut response = request
        .send_body(r#"{"product_id":"rl","quantity":1}"#)
        .await
        .expect("POST /orders");
    Answer {
        status: response.status().as_u16(),
        retry_after: response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string()),
        body: response.json().await.expect("a JSON body"),
    }
}

async fn statuses(app: &TestApp, prefix: &str, forwarded: Option<&str>, n: usize) -> Vec<u16> {
    let mut statuses = vec![];
    for i in 0..n {
        statuses.push(place(app, &format!("{prefix}-{i}"), forwarded).await.status);
    }
    statuses
}

const REFUSED: &str = "too many orders from your address; nothing was ordered, retry after 10 s";

#[actix_web::test]
async fn a_client_over_its_limit_gets_a_json_429_and_only_the_orders_taken_are_stored() {
    // Arrange: a burst of 3 per client.
    let app = spawn_limited(3, "").await;

    // Act: 8 orders at once from one address.
    let app = &app;
    let answers = futures_util::future::join_all(
        (0..8).map(|i| async move { place(app, &format!("burst-{i}"), None).await }),
    )
    .await;

    // Assert: 3 taken, 5 refused with Retry-After and the JSON error.
    let taken: BTreeSet<String> = answers
        .iter()
        .filter(|a| a.status == 201)
        .map(|a| a.body["order_id"].as_str().unwrap().to_string())
        .collect();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!((taken.len(), refused.len()), (3, 5), "{answers:?}");
    for answer in refused {
        assert_eq!(answer.retry_after.as_deref(), Some("10"), "{answer:?}");
        assert_eq!(answer.body, json!({ "error": REFUSED }));
    }
    // Exactly the orders answered 201 are stored, and each is published.
    let stored = count(&app.db, "SELECT count(*) FROM orders").await;
    assert_eq!(stored, 3);
    for order_id in &taken {
        eventually(WAIT, "the order's event published", || async {
            let (status, published) = app.stored(order_id).await;
            (status == "pending" && published).then_some(())
        })
        .await;
    }
    let metrics = scrape_metrics(&app.admin_address).await;
    assert_eq!(
        metrics.get(r#"http_rate_limited_total{limit="order_intake"}"#),
        Some(&5.0)
    );
}

#[actix_web::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    // Arrange: the tests' connections come from 127.0.0.1, trusted here.
    let app = spawn_limited(2, "127.0.0.1").await;
    let first = statuses(&app, "a", Some("203.0.113.7"), 3).await;

    // Act: the same client claiming another address left of its own (as a
    // client writing the header itself would), another client, and the
    // proxy's own request.
    let spoofed = place(&app, "a-spoofed", Some("198.51.100.1, 203.0.113.7")).await;
    let other = statuses(&app, "b", Some("203.0.113.8"), 2).await;
    let proxy_itself = place(&app, "proxy", None).await;

    // Assert
    assert_eq!(first, [201, 201, 429]);
    assert_eq!(spoofed.status, 429, "{spoofed:?}");
    assert_eq!(other, [201, 201]);
    assert_eq!(proxy_itself.status, 201, "{proxy_itself:?}");
    assert_eq!(count(&app.db, "SELECT count(*) FROM orders").await, 5);
}

#[actix_web::test]
async fn a_forwarded_address_from_an_untrusted_peer_is_ignored() {
    // Arrange: only 10.0.0.0/8 is trusted; the tests connect from 127.0.0.1.
    let app = spawn_limited(2, "10.0.0.0/8").await;
    let first = statuses(&app, "a", Some("203.0.113.7"), 2).await;

    // Act: a "different client" by the header alone.
    let other = place(&app, "b", Some("203.0.113.8")).await;

    // Assert: one limit for the peer, whatever the header says.
    assert_eq!(first, [201, 201]);
    assert_eq!(other.status, 429, "{other:?}");
    assert_eq!(count(&app.db, "SELECT count(*) FROM orders").await, 2);
}

#[actix_web::test]
async fn the_document_states_the_429_as_it_is_answered() {
    // Arrange: a client at its limit, and the document served.
    let app = spawn_limited(1, "").await;
    assert_eq!(place(&app, "first", None).await.status, 201);
    let document = document(&app.address).await;

    // Act
    let refused = place(&app, "second", None).await;

    // Assert: on both paths of placing an order, 429 with an integer
    // Retry-After and the error body, as answered.
    for path in ["/orders", "/create_order"] {
        let documented = &document["paths"][path]["post"]["responses"]["429"];
        assert_eq!(
            documented["headers"]["Retry-After"]["schema"]["type"], "integer",
            "{path}: {documented}"
        );
        assert_eq!(
            documented["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{path}"
        );
    }
    assert_eq!(refused.status, 429);
    let retry_after: u64 = refused.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    assert!(refused.body["error"].is_string(), "{:?}", refused.body);
}
