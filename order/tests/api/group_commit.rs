//! Intake commits orders in groups: each request still gets its own answer.

use order::domain::order::Placed;
use order::domain::order_request::{IdempotencyKey, OrderRequest, ProductId, Quantity};
use order::store::PlaceError;
use order::store::{NewOrder, OrderStore};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use testkit::{TestDatabase, count, eventually};

use crate::helpers::WAIT;

async fn database() -> (TestDatabase, DatabaseConnection) {
    let database = TestDatabase::create().await.unwrap();
    let db = database.connect().await;
    migration::migrate(&db).await.unwrap();
    (database, db)
}

fn order(product_id: &str, quantity: u32, key: Option<&str>) -> NewOrder {
    NewOrder {
        order: OrderRequest {
            product_id: ProductId::try_from(product_id).unwrap(),
            quantity: Quantity::try_from(quantity).unwrap(),
            ..OrderRequest::default()
        },
        key: key.map(|key| IdempotencyKey::try_from(key).unwrap()),
        request_id: None,
    }
}

fn id_of(placed: &Result<Placed, PlaceError>) -> uuid::Uuid {
    match placed {
        Ok(Placed::Created(order) | Placed::Replayed(order)) => order.order_id,
        other => panic!("an order, got {other:?}"),
    }
}

#[actix_web::test]
async fn each_order_of_a_group_gets_its_own_answer_and_each_key_one_order() {
    // Arrange: a key used by an earlier order.
    let (_database, db) = database().await;
    let store = OrderStore::new(db.clone());
    let earlier = store.place_all(&[order("123", 1, Some("earlier"))]).await;

    // Act: one group with a new key twice (same body), that key with
    // another body, an order without key, and the earlier key again.
    let placed = store
        .place_all(&[
            order("123", 1, Some("k1")),
            order("123", 1, Some("k1")),
            order("456", 2, Some("k1")),
            order("456", 1, None),
            order("123", 1, Some("earlier")),
        ])
        .await;

    // Assert
    assert!(
        matches!(placed[0], Ok(Placed::Created(_))),
        "{:?}",
        placed[0]
    );
    assert!(
        matches!(placed[1], Ok(Placed::Replayed(_))),
        "{:?}",
        placed[1]
    );
    assert_eq!(id_of(&placed[1]), id_of(&placed[0]));
    assert!(
        matches!(placed[2], Err(PlaceError::KeyReused)),
        "{:?}",
        placed[2]
    );
    assert!(
        matches!(placed[3], Ok(Placed::Created(_))),
        "{:?}",
        placed[3]
    );
    assert!(
        matches!(placed[4], Ok(Placed::Replayed(_))),
        "{:?}",
        placed[4]
    );
    assert_eq!(id_of(&placed[4]), id_of(&earlier[0]));
    assert_eq!(count(&db, "SELECT count(*) FROM orders").await, 3);
    assert_eq!(count(&db, "SELECT count(*) FROM outbox").await, 3);
    assert_eq!(count(&db, "SELECT count(*) FROM idempotency_keys").await, 2);
}

#[actix_web::test]
async fn a_row_the_database_refuses_fails_only_its_own_order() {
    // Arrange: the database refuses orders for product "refused".
    let (_database, db) = database().await;
    db.execute_unprepared(
        "CREATE FUNCTION refuse() RETURNS trigger AS $$
         BEGIN RAISE EXCEPTION 'refused for the test'; END $$ LANGUAGE plpgsql;
         CREATE TRIGGER refuse BEFORE INSERT ON orders FOR EACH ROW
         WHEN (NEW.product_id = 'refused') EXECUTE FUNCTION refuse();",
    )
    .await
    .unwrap();
    let store = OrderStore::new(db.clone());

    // Act
    let placed = store
        .place_all(&[
            order("123", 1, None),
            order("refused", 1, None),
            order("456", 1, None),
        ])
        .await;

    // Assert: the group was retried order by order.
    assert!(
        matches!(placed[0], Ok(Placed::Created(_))),
        "{:?}",
        placed[0]
    );
    assert!(
        matches!(placed[1], Err(PlaceError::Storage(_))),
        "{:?}",
        placed[1]
    );
    assert!(
        matches!(placed[2], Ok(Placed::Created(_))),
        "{:?}",
        placed[2]
    );
    assert_eq!(count(&db, "SELECT count(*) FROM orders").await, 2);
    assert_eq!(count(&db, "SELECT count(*) FROM outbox").await, 2);
}

#[actix_web::test]
async fn replicas_whose_groups_cross_the_same_keys_never_refuse_an_order() {
    // Arrange: two replicas, each with its own sessions; in each round one
    // holds 200 new keys in ascending order, the other the same keys
    // descending, as two desks can when clients retry on both. A table lock
    // of ours holds both groups at their first key until both wait, so that
    // they run at the same moment.
    let (database, db) = database().await;
    let (first, second) = (
        OrderStore::new(database.connect().await),
        OrderStore::new(database.connect().await),
    );
    for round in 0..5 {
        let keys: Vec<String> = (0..200).map(|n| format!("r{round}-k{n:03}")).collect();
        let ascending: Vec<NewOrder> = keys.iter().map(|k| order("123", 1, Some(k))).collect();
        let descending: Vec<NewOrder> = ascending.iter().rev().cloned().collect();
        let gate = db.begin().await.unwrap();
        gate.execute_unprepared("LOCK TABLE idempotency_keys IN SHARE MODE")
            .await
            .unwrap();

        // Act
        let placing =
            async { tokio::join!(first.place_all(&ascending), second.place_all(&descending)) };
        let opening = async {
            eventually(WAIT, "both groups waiting at the table lock", || async {
                let waiting = count(
                    &db,
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND database = \
                     (SELECT oid FROM pg_database WHERE datname = current_database())",
                )
                .await;
                (waiting == 2).then_some(())
            })
            .await;
            gate.commit().await.unwrap();
        };
        let ((a, b), ()) = tokio::join!(placing, opening);

        // Assert: every request answered with an order, each key's one.
        for placed in a.iter().chain(&b) {
            assert!(placed.is_ok(), "round {round}: {placed:?}");
        }
        let mut from_b: Vec<_> = b.iter().map(id_of).collect();
        from_b.reverse();
        assert_eq!(
            a.iter().map(id_of).collect::<Vec<_>>(),
            from_b,
            "round {round}"
        );
    }
    assert_eq!(count(&db, "SELECT count(*) FROM orders").await, 1000);
    assert_eq!(count(&db, "SELECT count(*) FROM outbox").await, 1000);
}
