//! Settling one delivery with the broker, counted.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use slog::{Logger, warn};

use super::ConsumerStats;
use crate::broker::{IncomingMessage, Settlement};

/// Settles `delivery` as decided; `None` leaves it unacknowledged.
pub(super) async fn settle(
    delivery: IncomingMessage,
    settlement: Option<Settlement>,
    stats: Arc<ConsumerStats>,
    log: Logger,
) {
    let Some(settlement) = settlement else {
        // Unacknowledged: the broker hands it out again once the
        // subscription closes.
        drop(delivery);
        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        return;
    };
    let settled = delivery.settle(settlement).await;
    stats.in_flight.fetch_sub(1, Ordering::SeqCst);
    match settled {
        Ok(()) => stats.count(settlement),
        Err(e) => {
            // The channel is gone (the settler closes one still open): the
            // broker returns the message to the queue by itself, and the
            // idempotent handler absorbs the redelivery.
            stats.settle_failures.fetch_add(1, Ordering::Relaxed);
            warn!(log, "could not settle delivery, it will be redelivered";
                "settlement" => ?settlement, "err" => %e);
        }
    }
}
