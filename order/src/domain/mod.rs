pub mod order_request;
