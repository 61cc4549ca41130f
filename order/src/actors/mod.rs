pub mod order_desk;
