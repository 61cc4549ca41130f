pub mod stock_keeper;

use shared::consumer::EventConsumer;

/// The AMQP consumer of this service: `OrderCreated` in, `ReserveStock` out.
pub type AmqpConsumer = EventConsumer<stock_keeper::ReserveStock>;
