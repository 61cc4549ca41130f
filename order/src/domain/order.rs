//! An order as the service shows it, and what storing one or applying a
//! stock outcome to it came to.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::order_status::{ForbiddenTransition, OrderStatus};

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderView {
    pub order_id: Uuid,
    pub product_id: String,
    pub quantity: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    pub status: OrderStatus,
    /// Why a rejected order was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    Created(OrderView),
    /// The same request came with this key before: its order, unchanged.
    Replayed(OrderView),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeApplied {
    Moved(OrderStatus),
    AlreadyThere,
    /// Not an order of ours; acknowledged and logged.
    UnknownOrder,
    /// Contradicts a final status; acknowledged and logged.
    Forbidden(ForbiddenTransition),
}

/// What the `OrderDesk` has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderCounters {
    pub accepted: u64,
    pub replayed: u64,
    pub storage_failures: u64,
    pub confirmed: u64,
    pub rejected: u64,
}
