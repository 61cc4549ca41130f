pub mod processed_events;
pub mod products;
