use contracts::events::{OrderCreated, RejectionReason};
use foundation::telemetry::LogLevel;

use super::*;

/// A refusal whose storage error is only text, as the domain sees it.
type Refused = PlaceError<&'static str>;

#[test]
fn outcomes_move_pending_orders_once_and_refuse_contradictions() {
    // Arrange: two pending orders; one outcome comes twice, one contradicts.
    let (first, second, unknown) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut current = HashMap::from([
        (first, OrderStatus::Pending),
        (second, OrderStatus::Pending),
    ]);
    let out_of_stock = Some(RejectionReason::OutOfStock);

    // Act
    let applied = apply_outcomes(
        &mut current,
        &[
            (first, None),
            (first, None),
            (second, out_of_stock),
            (second, None),
            (unknown, None),
        ],
    );

    // Assert
    assert_eq!(applied[0], OutcomeApplied::Moved(OrderStatus::Confirmed));
    assert_eq!(applied[1], OutcomeApplied::AlreadyThere);
    assert_eq!(applied[2], OutcomeApplied::Moved(OrderStatus::Rejected));
    assert!(matches!(applied[3], OutcomeApplied::Forbidden(_)));
    assert_eq!(applied[4], OutcomeApplied::UnknownOrder);
    assert_eq!(current[&first], OrderStatus::Confirmed);
    assert_eq!(current[&second], OrderStatus::Rejected);
}

fn order() -> OrderView {
    let now = Utc::now();
    OrderView {
        order_id: Uuid::now_v7(),
        product_id: "456".into(),
        quantity: 2,
        customer_email: None,
        status: OrderStatus::Pending,
        reason: None,
        created_at: now,
        updated_at: now,
    }
}

#[test]
fn only_a_new_order_wakes_the_relay() {
    let order = order();
    let created = after_placing::<&str>(&Ok(Placed::Created(order.clone())));
    assert_eq!(created.count, Some(OrderCounter::Accepted));
    assert!(created.wake_relay);
    assert_eq!(
        created.log,
        Some(
            LogLine::info("order accepted")
                .with("order_id", order.order_id.to_string())
                .with("product_id", "456")
                .with("quantity", 2u32)
        )
    );
    let replayed = after_placing::<&str>(&Ok(Placed::Replayed(order)));
    assert_eq!(replayed.count, Some(OrderCounter::Replayed));
    assert!(!replayed.wake_relay);
}

#[test]
fn failures_to_store_are_counted_and_warned_about() {
    for (failure, message) in [
        (
            Refused::Storage("refused"),
            "order not accepted: it could not be stored",
        ),
        (
            Refused::OutcomeUnknown("refused"),
            "order outcome unknown: the commit was not confirmed",
        ),
    ] {
        let effects = after_placing(&Err(failure));
        assert_eq!(effects.count, Some(OrderCounter::StorageFailures));
        let log = effects.log.expect("a log line");
        assert_eq!(
            (log.level, log.message.as_str()),
            (LogLevel::Warning, message)
        );
        assert!(!effects.wake_relay);
    }
    assert_eq!(after_placing(&Err(Refused::KeyReused)), Effects::default());
}

#[test]
fn each_applied_outcome_is_counted_and_logged() {
    let order = OrderCreated::new("123".into(), 1);
    let reserved = StockEvent::answering(&order, None);
    let rejected = StockEvent::answering(&order, Some(RejectionReason::OutOfStock));
    let forbidden = ForbiddenTransition {
        from: OrderStatus::Confirmed,
        to: OrderStatus::Rejected,
    };
    let cases = [
        (
            &reserved,
            OutcomeApplied::Moved(OrderStatus::Confirmed),
            Some(OrderCounter::Confirmed),
            LogLine::info("order confirmed"),
        ),
        (
            &rejected,
            OutcomeApplied::Moved(OrderStatus::Rejected),
            Some(OrderCounter::Rejected),
            LogLine::info("order rejected").with("reason", "out_of_stock"),
        ),
        (
            &reserved,
            OutcomeApplied::AlreadyThere,
            None,
            LogLine::info("stock outcome already recorded"),
        ),
        (
            &reserved,
            OutcomeApplied::UnknownOrder,
            None,
            LogLine::warn("stock outcome for an unknown order, ignored"),
        ),
        (
            &rejected,
            OutcomeApplied::Forbidden(forbidden),
            None,
            LogLine::warn("stock outcome contradicts the order's status, ignored")
                .with("err", forbidden.to_string()),
        ),
    ];
    for (event, applied, count, log) in cases {
        let effects = after_outcome(event, applied, Utc::now());
        assert_eq!(effects.count, count, "{applied:?}");
        assert_eq!(effects.log, Some(log), "{applied:?}");
        assert!(!effects.wake_relay, "{applied:?}");
    }
}

#[test]
fn a_final_order_reports_how_long_after_acceptance_it_became_final() {
    let order = OrderCreated::new("123".into(), 1);
    let reserved = StockEvent::answering(&order, None);
    let later = order.created_at + chrono::TimeDelta::milliseconds(250);
    let mut unstamped = reserved.clone();
    if let StockEvent::StockReserved(outcome) = &mut unstamped {
        outcome.order_created_at = None;
    }

    let moved = after_outcome(
        &reserved,
        OutcomeApplied::Moved(OrderStatus::Confirmed),
        later,
    );
    let again = after_outcome(&reserved, OutcomeApplied::AlreadyThere, later);
    let from_an_older_product = after_outcome(
        &unstamped,
        OutcomeApplied::Moved(OrderStatus::Confirmed),
        later,
    );

    assert_eq!(
        moved.accepted_to_final,
        Some(std::time::Duration::from_millis(250))
    );
    assert_eq!(again.accepted_to_final, None, "counted once, when it moved");
    assert_eq!(from_an_older_product.accepted_to_final, None);
}

#[test]
fn counters_count_what_they_are_named() {
    let mut counters = OrderCounters::default();
    counters.count(OrderCounter::Accepted);
    counters.count(OrderCounter::Rejected);
    counters.count(OrderCounter::Rejected);
    assert_eq!(
        counters,
        OrderCounters {
            accepted: 1,
            rejected: 2,
            ..OrderCounters::default()
        }
    );
}

#[test]
fn orders_wait_for_a_commit_only_while_the_database_is_up_and_there_is_room() {
    assert!(admit::<&str>(0, 2, false).is_ok());
    assert!(admit::<&str>(1, 2, false).is_ok());
    assert!(matches!(
        admit::<&str>(2, 2, false),
        Err(Refused::QueueFull)
    ));
    assert!(matches!(
        admit::<&str>(0, 2, true),
        Err(Refused::DatabaseDown)
    ));
}

#[test]
fn refusals_are_counted_without_a_log_line_each() {
    for refused in [Refused::DatabaseDown, Refused::QueueFull] {
        let effects = after_placing(&Err(refused));

        assert_eq!(effects.count, Some(OrderCounter::Refused));
        assert_eq!(effects.log, None);
        assert!(!effects.wake_relay);
    }
}
