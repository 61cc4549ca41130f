//! The `OrderDesk` owns the orders. Each accepted order is stored with its
//! `OrderCreated` event in one transaction (the outbox), so it is never lost,
//! also while RabbitMQ is down; the `OutboxRelay` publishes the event. Stock
//! outcomes from the product service move orders to `confirmed` or
//! `rejected`.

use actix::prelude::*;
use contracts::events::{Event, StockEvent};
use foundation::db::{bounded, failure_kind};
use foundation::failure::FailureKind;
use foundation::outage::{Gate, GateState};
use foundation::telemetry::{event_logger, with_request_id};
use messaging::consumer::{BatchResult, batch_or_each};
use messaging::outbox::relay::{OutboxRelay, WakeRelay};
use prometheus::Histogram;
use sea_orm::DbErr;
use slog::{Logger, info};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::domain::order::{
    self, Effects, OrderCounter, OrderCounters, OrderView, OutcomeApplied, Placed,
};
use crate::domain::order_request::{IdempotencyKey, OrderRequest};
use crate::domain::order_status::OrderStatus;
use crate::store::PlaceError;
use crate::store::{NewOrder, OrderStore};

/// Accept `order`, once per `idempotency_key` when one is given. Answered
/// at once: refused (nothing is ordered), or taken to wait for a commit,
/// with the [`Ticket`] its outcome comes by.
#[derive(Debug, Message)]
#[rtype(result = "Result<Ticket, PlaceError>")]
pub struct PlaceOrder {
    pub order: OrderRequest,
    pub idempotency_key: Option<IdempotencyKey>,
    /// The HTTP request's id, carried by the order's events.
    pub request_id: Option<String>,
}

/// An order waiting for its commit. Dropped before the order's group is
/// taken (its client went away, or gave up), the order is given up: never
/// stored, so nobody is told "not placed" of an order that is.
#[derive(Debug)]
pub struct Ticket(oneshot::Receiver<Result<Placed, PlaceError>>);

impl Ticket {
    pub async fn outcome(self) -> Result<Placed, PlaceError> {
        self.0.await.unwrap_or_else(|_| {
            // The desk stopped with the order's commit in flight.
            Err(PlaceError::OutcomeUnknown(DbErr::Custom(
                "the order desk stopped".into(),
            )))
        })
    }
}

/// How the desk takes orders in.
pub struct Intake {
    /// The most orders committed together.
    pub max_group: u16,
    /// The most orders waiting for a commit.
    pub max_waiting: u16,
    /// Paused while the database is known to be down; the service's
    /// consumers share it, and its probe reopens it.
    pub database: Gate,
}

/// One order by id.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<OrderView>, DbErr>")]
pub struct GetOrder(pub Uuid);

/// A page of orders, oldest first: those after `after`, with `status` if given.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<OrderView>, DbErr>")]
pub struct ListOrders {
    pub status: Option<OrderStatus>,
    pub after: Option<Uuid>,
    pub limit: u64,
}

/// Move the orders these stock outcomes are about to their final status.
#[derive(Debug, Message)]
#[rtype(result = "BatchResult<OutcomeApplied, DbErr>")]
pub struct RecordStockOutcome(pub Vec<StockEvent>);

impl From<Vec<StockEvent>> for RecordStockOutcome {
    fn from(events: Vec<StockEvent>) -> Self {
        Self(events)
    }
}

/// What the desk has done so far.
#[derive(Debug, Message)]
#[rtype(result = "OrderCounters")]
pub struct GetOrderCounters;

pub struct OrderDesk {
    store: OrderStore,
    relay: Addr<OutboxRelay>,
    /// Orders waiting for the commit in flight to finish.
    queued: Vec<Queued>,
    committing: bool,
    /// The most orders committed together.
    max_group: usize,
    max_waiting: usize,
    database: Gate,
    counters: OrderCounters,
    accepted_to_final: Histogram,
    log: Logger,
}

/// An order waiting for its group's commit, and where to answer.
struct Queued {
    request: NewOrder,
    answer: oneshot::Sender<Result<Placed, PlaceError>>,
}

impl OrderDesk {
    /// `accepted_to_final` observes, in seconds, how long each order took
    /// from accepted to final.
    pub fn new(
        store: OrderStore,
        relay: Addr<OutboxRelay>,
        intake: Intake,
        accepted_to_final: Histogram,
        log: Logger,
    ) -> Self {
        Self {
            store,
            relay,
            accepted_to_final,
            queued: Vec::new(),
            committing: false,
            max_group: usize::from(intake.max_group.max(1)),
            max_waiting: usize::from(intake.max_waiting),
            database: intake.database,
            counters: OrderCounters::default(),
            log,
        }
    }

    /// Commits what is queued, unless a commit is in flight: orders that
    /// arrive meanwhile go together into the next one (a group commit), so
    /// intake costs one commit per group rather than per order.
    fn commit_next(&mut self, ctx: &mut Context<Self>) {
        if self.committing {
            return;
        }
        self.give_up_abandoned();
        if self.queued.is_empty() {
            return;
        }
        let size = self.queued.len().min(self.max_group);
        let group: Vec<Queued> = self.queued.drain(..size).collect();
        let requests: Vec<NewOrder> = group.iter().map(|queued| queued.request.clone()).collect();
        self.committing = true;
        let store = self.store.clone();
        ctx.spawn(
            async move { store.place_all(&requests).await }
                .into_actor(self)
                .map(move |placed, desk, ctx| {
                    desk.committing = false;
                    desk.watch_database(&placed);
                    let mut wake_relay = false;
                    for (queued, placed) in group.into_iter().zip(placed) {
                        let log = with_request_id(&desk.log, queued.request.request_id.as_deref());
                        let effects = order::after_placing(&placed);
                        wake_relay |= effects.wake_relay;
                        desk.apply(
                            Effects {
                                wake_relay: false,
                                ..effects
                            },
                            &log,
                        );
                        // The client may have gone: its order stands all the same.
                        let _ = queued.answer.send(placed);
                    }
                    if wake_relay {
                        desk.relay.do_send(WakeRelay);
                    }
                    desk.commit_next(ctx);
                }),
        );
    }

    /// Orders whose callers dropped their tickets are never committed: their
    /// clients have gone, or were told by a proxy that they failed.
    fn give_up_abandoned(&mut self) {
        let waiting = self.queued.len();
        self.queued.retain(|queued| !queued.answer.is_closed());
        let abandoned = waiting - self.queued.len();
        if abandoned == 0 {
            return;
        }
        for _ in 0..abandoned {
            self.counters.count(OrderCounter::Abandoned);
        }
        info!(self.log, "orders given up by their callers before their commit: not stored";
            "orders" => abandoned);
    }

    /// An outage met by a commit closes the gate, and the orders waiting are
    /// refused at once: their commit would only fail too, later. Orders are
    /// refused from then on until the gate's probe finds the database back.
    fn watch_database(&mut self, placed: &[Result<Placed, PlaceError>]) {
        let outage = placed.iter().find_map(|placed| match placed {
            Err(PlaceError::Storage(e) | PlaceError::OutcomeUnknown(e))
                if failure_kind(e) == FailureKind::Outage =>
            {
                Some(e)
            }
            _ => None,
        });
        let Some(outage) = outage else {
            if placed.iter().any(Result::is_ok) {
                self.database.report_success();
            }
            return;
        };
        self.database.report_outage(outage);
        self.give_up_abandoned();
        for queued in std::mem::take(&mut self.queued) {
            let refused = Err(PlaceError::DatabaseDown);
            self.apply(order::after_placing(&refused), &self.log.clone());
            let _ = queued.answer.send(refused);
        }
    }

    /// Does what the domain decided should follow a store call.
    fn apply(&mut self, effects: Effects, log: &Logger) {
        if let Some(counter) = effects.count {
            self.counters.count(counter);
        }
        if let Some(line) = effects.log {
            line.write(log);
        }
        if effects.wake_relay {
            self.relay.do_send(WakeRelay);
        }
        if let Some(elapsed) = effects.accepted_to_final {
            self.accepted_to_final.observe(elapsed.as_secs_f64());
        }
    }
}

impl Actor for OrderDesk {
    type Context = Context<Self>;
}

impl Handler<PlaceOrder> for OrderDesk {
    type Result = Result<Ticket, PlaceError>;

    fn handle(&mut self, request: PlaceOrder, ctx: &mut Context<Self>) -> Self::Result {
        if self.queued.len() >= self.max_waiting {
            // Orders already given up hold no place.
            self.give_up_abandoned();
        }
        let database_down = self.database.state() == GateState::Paused;
        if let Err(refused) = order::admit(self.queued.len(), self.max_waiting, database_down) {
            let log = with_request_id(&self.log, request.request_id.as_deref());
            self.apply(order::after_placing(&Err(refused.clone())), &log);
            return Err(refused);
        }
        self.counters.count(OrderCounter::Queued);
        let (answer, answered) = oneshot::channel();
        self.queued.push(Queued {
            request: NewOrder {
                order: request.order,
                key: request.idempotency_key,
                request_id: request.request_id,
            },
            answer,
        });
        self.commit_next(ctx);
        Ok(Ticket(answered))
    }
}

impl Handler<GetOrder> for OrderDesk {
    type Result = ResponseFuture<Result<Option<OrderView>, DbErr>>;

    fn handle(&mut self, GetOrder(id): GetOrder, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        Box::pin(async move { bounded(store.get(id)).await })
    }
}

impl Handler<ListOrders> for OrderDesk {
    type Result = ResponseFuture<Result<Vec<OrderView>, DbErr>>;

    fn handle(&mut self, query: ListOrders, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        Box::pin(async move { bounded(store.list(query.status, query.after, query.limit)).await })
    }
}

impl Handler<RecordStockOutcome> for OrderDesk {
    type Result = ResponseActFuture<Self, BatchResult<OutcomeApplied, DbErr>>;

    fn handle(
        &mut self,
        RecordStockOutcome(events): RecordStockOutcome,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let store = self.store.clone();
        Box::pin(
            async move {
                let applied = batch_or_each(&events, async |events| {
                    bounded(store.record_outcomes(events)).await
                })
                .await;
                (events, applied)
            }
            .into_actor(self)
            .map(move |(events, applied), desk, _| {
                let applied = applied?;
                for (event, applied) in events.iter().zip(&applied) {
                    if let Ok(applied) = applied {
                        let log = event_logger(
                            &desk.log,
                            event.event_id(),
                            event.order_id(),
                            event.request_id(),
                        );
                        desk.apply(
                            order::after_outcome(event, *applied, chrono::Utc::now()),
                            &log,
                        );
                    }
                }
                Ok(applied)
            }),
        )
    }
}

impl Handler<GetOrderCounters> for OrderDesk {
    type Result = MessageResult<GetOrderCounters>;

    fn handle(&mut self, _: GetOrderCounters, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.counters)
    }
}
