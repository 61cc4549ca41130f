mod create_order;
mod helpers;
