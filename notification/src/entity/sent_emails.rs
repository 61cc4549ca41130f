use sea_orm::entity::prelude::*;

/// One row per event whose email went out.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sent_emails")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub product_id: String,
    pub sent_at: DateTimeWithTimeZone,
    /// Which email: order_received, order_confirmed, out_of_stock, unknown_product.
    pub kind: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
