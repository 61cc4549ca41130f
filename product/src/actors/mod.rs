pub mod catalogue;
pub mod stock_keeper;

use shared::consumer::EventConsumer;
use shared::events::OrderCreated;

/// Consumes `OrderCreated`: each becomes a `ReserveStock`.
pub type OrderCreatedConsumer = EventConsumer<OrderCreated, stock_keeper::ReserveStock>;
