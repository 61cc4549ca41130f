mod create_order;
mod helpers;
mod relay;
