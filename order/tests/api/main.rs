mod create_order;
mod group_commit;
mod helpers;
mod lifecycle;
mod metrics;
mod outages;
mod relay;
mod request_ids;
