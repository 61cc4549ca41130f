use sea_orm::entity::prelude::*;

/// One row per event that calls for an email: recorded before the email
/// goes out, `sent_at` set once it has.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sent_emails")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub product_id: String,
    /// Null while the email is pending.
    pub sent_at: Option<DateTimeWithTimeZone>,
    /// Which email: order_received, order_confirmed, out_of_stock, unknown_product.
    pub kind: String,
    /// When a sender last took the email on; one that has held it
    /// unsent for long is taken to have died.
    pub claimed_at: DateTimeWithTimeZone,
    /// The sender (a process's random id) that last took the email on.
    pub claimed_by: Option<Uuid>,
    pub recipient: Option<String>,
    pub quantity: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
