pub mod order;
pub mod order_request;
pub mod order_status;
