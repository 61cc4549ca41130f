mod create_order;
mod helpers;
mod lifecycle;
mod outages;
mod relay;
