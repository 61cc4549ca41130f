//! Clients cannot hold the service: slow bodies are cut off, the intake
//! queue is bounded, orders are refused at once while the database is known
//! to be down, and an order whose caller gave up is never stored.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use serde_json::{Value, json};
use testkit::{TcpProxy, count, eventually, scrape_metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, WAIT, spawn_app, spawn_app_with};

const NOT_STORED: &str =
    "the order could not be stored: the database is unavailable; nothing was ordered, retry later";
const BUSY: &str = "too many orders are waiting to be stored; nothing was ordered, retry later";

/// `(status, Retry-After, body)` of `POST /create_order` with `key`, or
/// `None` when no answer came within `timeout`.
async fn place(
    app: &TestApp,
    key: Option<&str>,
    timeout: Duration,
) -> Option<(u16, Option<String>, Value)> {
    let mut request = awc::Client::default()
        .post(format!("{}/create_order", app.address))
        .timeout(timeout);
    if let Some(key) = key {
        request = request.insert_header(("idempotency-key", key));
    }
    let mut response = request.send().await.ok()?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.json::<Value>().await.ok()?;
    Some((response.status().as_u16(), retry_after, body))
}

async fn orders_total(app: &TestApp, event: &str) -> f64 {
    scrape_metrics(&app.admin_address)
        .await
        .get(&format!(r#"orders_total{{event="{event}"}}"#))
        .copied()
        .unwrap_or(0.0)
}

/// Holds a lock on `orders` that stops every insert until `release`d, so
/// that a commit of the desk waits (for less than the service's 5 s lock
/// timeout), and waits until one does.
async fn hold_commits(app: &TestApp) -> DatabaseTransaction {
    let lock = app.db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE orders IN SHARE MODE")
        .await
        .unwrap();
    lock
}

async fn until_a_commit_waits(app: &TestApp) {
    eventually(WAIT, "a commit waiting for the lock", || async {
        let waiting = count(
            &app.db,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await;
        (waiting > 0).then_some(())
    })
    .await;
}

/// What a client trickling a body a byte at a time saw: the server's
/// answer (if any) and whether the server closed the connection before
/// the client gave up after `give_up`.
struct Trickled {
    answer: String,
    closed_by_server: bool,
}

async fn trickle(port: u16, chunked: bool, give_up: Duration) -> Trickled {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let framing = if chunked {
        "Transfer-Encoding: chunked"
    } else {
        "Content-Length: 1000"
    };
    let head = format!(
        "POST /create_order HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let byte: &[u8] = if chunked { b"1\r\n \r\n" } else { b" " };
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while started.elapsed() < give_up {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => {
                    return Trickled {
                        answer: String::from_utf8_lossy(&answer).into_owned(),
                        closed_by_server: true,
                    };
                }
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            },
            _ = tick.tick() => {
                // A write the server no longer reads may fail: it closed.
                let _ = stream.write_all(byte).await;
            }
        }
    }
    Trickled {
        answer: String::from_utf8_lossy(&answer).into_owned(),
        closed_by_server: false,
    }
}

#[actix_web::test]
async fn trickling_clients_are_cut_off_while_orders_keep_being_placed() {
    // Arrange: a body must arrive within 1 s.
    let app = spawn_app_with(|settings, _| {
        settings.common.http.body_timeout = Duration::from_secs(1);
    })
    .await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let give_up = Duration::from_secs(15);

    // Act: 300 connections trickle bodies a byte every 200 ms (half with a
    // length, half chunked) while a client keeps ordering.
    let tricklers: Vec<_> = (0..300)
        .map(|i| tokio::spawn(trickle(port, i % 2 == 1, give_up)))
        .collect();
    let mut placed = 0;
    while tricklers.iter().any(|trickler| !trickler.is_finished()) {
        let (status, _, body) = place(&app, None, Duration::from_secs(5))
            .await
            .expect("an answer within 5 s");
        assert_eq!(status, 201, "{body}");
        placed += 1;
    }
    let trickled = futures_util::future::join_all(tricklers).await;

    // Assert: every trickler was closed by the server, with a JSON 408
    // when it answered at all; every order was placed.
    for (i, trickled) in trickled.into_iter().enumerate() {
        let trickled = trickled.unwrap();
        assert!(
            trickled.closed_by_server,
            "connection {i} still open after {give_up:?}; it saw {:?}",
            trickled.answer
        );
        assert!(
            trickled.answer.is_empty() || trickled.answer.starts_with("HTTP/1.1 408"),
            "connection {i}: {:?}",
            trickled.answer
        );
    }
    assert!(placed > 0, "the client placed orders meanwhile");
    assert_eq!(count(&app.db, "SELECT count(*) FROM orders").await, placed);
}

#[actix_web::test]
async fn while_the_database_is_known_to_be_down_orders_are_refused_at_once_and_never_stored() {
    // Arrange: the service reaches PostgreSQL through a proxy; one order
    // goes through; the database is cut and an order meets the outage; then
    // the network swallows everything, so that reaching the database would
    // take a connect timeout (5 s).
    let proxy = TcpProxy::start(testkit::pg_address());
    let app = spawn_app_with(|settings, database| {
        settings.common.database_url = database.url_via(proxy.port());
    })
    .await;
    assert_eq!(place(&app, None, WAIT).await.unwrap().0, 201);
    proxy.cut();
    let first = place(&app, Some("down-0"), Duration::from_secs(30)).await;
    assert_eq!(first.map(|(status, _, _)| status), Some(503));
    proxy.hold();

    // Act: 20 more orders, each given 2 s, as a proxy in front might.
    let refused = futures_util::future::join_all((1..=20).map(|i| {
        let app = &app;
        async move { place(app, Some(&format!("down-{i}")), Duration::from_secs(2)).await }
    }))
    .await;

    // Assert: each refused at once, saying nothing was ordered.
    for answer in refused {
        assert_eq!(
            answer,
            Some((503, Some("1".to_string()), json!({ "error": NOT_STORED }))),
        );
    }

    // Act: the database comes back (the probe backs off up to 10 s).
    proxy.restore();
    let after = eventually(WAIT * 3, "orders to be placed again", || async {
        let (status, _, body) = place(&app, Some("after"), WAIT).await?;
        (status == 201).then_some(body)
    })
    .await;

    // Assert: only the orders answered 201 exist.
    assert_eq!(
        count(&app.db, "SELECT count(*) FROM orders").await,
        2,
        "{after}"
    );
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) FROM idempotency_keys WHERE key LIKE 'down-%'"
        )
        .await,
        0
    );
}

#[actix_web::test]
async fn more_orders_than_may_wait_are_refused_at_once() {
    // Arrange: at most 3 orders wait; a commit is held by a lock.
    let app = spawn_app_with(|settings, _| settings.intake_queue = 3).await;
    assert_eq!(place(&app, None, WAIT).await.unwrap().0, 201);
    let lock = hold_commits(&app).await;
    let committing = actix_web::rt::spawn({
        let address = app.address.clone();
        async move {
            awc::Client::default()
                .post(format!("{address}/create_order"))
                .send()
                .await
                .map(|response| response.status().as_u16())
        }
    });
    until_a_commit_waits(&app).await;

    // Act: five orders while it waits.
    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..5 {
        let address = app.address.clone();
        let answers = answers.clone();
        actix_web::rt::spawn(async move {
            let mut response = awc::Client::default()
                .post(format!("{address}/create_order"))
                .insert_header(("idempotency-key", format!("wait-{i}")))
                .timeout(WAIT)
                .send()
                .await
                .unwrap();
            let body = response.json::<Value>().await.unwrap();
            let retry_after = response.headers().get("retry-after").cloned();
            answers
                .send((response.status().as_u16(), retry_after, body))
                .unwrap();
        });
    }

    // Assert: two are refused while the commit still waits.
    for _ in 0..2 {
        let (status, retry_after, body) = tokio::time::timeout(WAIT, answered.recv())
            .await
            .expect("a refusal while the commit waits")
            .unwrap();
        assert_eq!(
            (status, body),
            (503, json!({ "error": BUSY })),
            "answered before the lock was released"
        );
        assert_eq!(retry_after.unwrap(), "1");
    }

    // Act: the commit goes through.
    lock.commit().await.unwrap();

    // Assert: the waiting ones were placed, the refused ones not.
    assert_eq!(committing.await.unwrap().unwrap(), 201);
    for _ in 0..3 {
        let (status, _, body) = answered.recv().await.unwrap();
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(count(&app.db, "SELECT count(*) FROM orders").await, 5);
}

#[actix_web::test]
async fn an_order_whose_client_went_away_before_its_commit_is_never_stored() {
    // Arrange: a commit held by a lock, and three orders waiting behind it.
    let app = spawn_app().await;
    assert_eq!(place(&app, None, WAIT).await.unwrap().0, 201);
    let lock = hold_commits(&app).await;
    let committing = actix_web::rt::spawn({
        let address = app.address.clone();
        async move {
            awc::Client::default()
                .post(format!("{address}/create_order"))
                .send()
                .await
                .map(|response| response.status().as_u16())
        }
    });
    until_a_commit_waits(&app).await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let mut leaving = Vec::new();
    for i in 0..3 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = format!(
            "POST /create_order HTTP/1.1\r\nHost: x\r\nIdempotency-Key: gone-{i}\r\nContent-Length: 0\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        leaving.push(stream);
    }
    eventually(WAIT, "five orders queued", || async {
        (orders_total(&app, "queued").await == 5.0).then_some(())
    })
    .await;

    // Act: their clients go away (as a proxy that gave up does); then the
    // commit goes through.
    for stream in &mut leaving {
        stream.shutdown().await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
            .await
            .expect("the server to drop the request")
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&rest), "", "no answer");
    }
    lock.commit().await.unwrap();

    // Assert: the order in the commit was placed; the others never are.
    assert_eq!(committing.await.unwrap().unwrap(), 201);
    eventually(WAIT, "three orders given up", || async {
        (orders_total(&app, "abandoned").await == 3.0).then_some(())
    })
    .await;
    assert_eq!(
        place(&app, None, WAIT).await.unwrap().0,
        201,
        "still serving"
    );
    assert_eq!(count(&app.db, "SELECT count(*) FROM orders").await, 3);
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) FROM idempotency_keys WHERE key LIKE 'gone-%'"
        )
        .await,
        0
    );
}

#[actix_web::test]
async fn beyond_its_connections_the_server_takes_a_new_one_only_once_another_closed() {
    // Arrange: one connection per worker thread (one per core), each taken
    // by a client that sends nothing, and closed by the server after its
    // 2 s head timeout (actix-http's timers read a clock it updates every
    // 500 ms, so that is 1.5 s at the least).
    let app = spawn_app_with(|settings, _| {
        settings.common.http.max_connections = 1;
        settings.common.http.head_timeout = Duration::from_secs(2);
    })
    .await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    // Before the idle clients connect: the server's head timeout for them
    // starts later, so no slot is free before `taken + 1.5 s`.
    let taken = std::time::Instant::now();
    let mut idle = Vec::with_capacity(workers);
    for _ in 0..workers {
        idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }

    // Act: another client asks.
    let status = awc::Client::default()
        .get(format!("{}/openapi.json", app.address))
        .timeout(WAIT)
        .send()
        .await
        .unwrap()
        .status();
    let answered_after = taken.elapsed();

    // Assert: it was served, but only once the server had closed an idle
    // connection at its head timeout; without the cap it answers at once. (Whether the idle clients' tasks have seen their EOF by now is
    // a matter of scheduling, so the server's own timer is the witness.)
    assert_eq!(status.as_u16(), 200);
    assert!(
        answered_after >= Duration::from_millis(1500),
        "answered after {answered_after:?}, while all {workers} connections were taken"
    );
    drop(idle);
}
