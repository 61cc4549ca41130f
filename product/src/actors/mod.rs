pub mod stock_keeper;

use shared::consumer::EventConsumer;
use shared::events::OrderCreated;

/// The AMQP consumer of this service: `OrderCreated` in, `ReserveStock` out.
pub type AmqpConsumer = EventConsumer<OrderCreated, stock_keeper::ReserveStock>;
