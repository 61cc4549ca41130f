use sea_orm::entity::prelude::*;

/// An event committed with the change that caused it, waiting to be
/// published (`published_at` is null) or kept until pruned.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: Uuid,
    /// The service whose relay publishes this row.
    pub source: String,
    pub exchange: String,
    pub payload: String,
    pub created_at: DateTimeWithTimeZone,
    pub published_at: Option<DateTimeWithTimeZone>,
    /// A relay is publishing the row until then; after that, any relay may.
    pub claimed_until: Option<DateTimeWithTimeZone>,
    /// The id of the request that caused the event, if known.
    pub request_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
