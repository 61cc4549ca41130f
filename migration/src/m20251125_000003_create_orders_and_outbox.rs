use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    ProductId,
    Quantity,
    Status,
    CreatedAt,
    UpdatedAt,
}

/// The order service's transactional outbox: events committed with the order
/// that caused them, published by the relay, pruned after a retention period.
#[derive(DeriveIden)]
enum Outbox {
    Table,
    EventId,
    Exchange,
    Payload,
    CreatedAt,
    PublishedAt,
}

const PENDING_INDEX: &str = "outbox_pending_idx";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let now = || Expr::current_timestamp();
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(ColumnDef::new(Orders::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Orders::ProductId).text().not_null())
                    .col(
                        ColumnDef::new(Orders::Quantity)
                            .integer()
                            .not_null()
                            .check(Expr::col(Orders::Quantity).gt(0)),
                    )
                    .col(ColumnDef::new(Orders::Status).text().not_null())
                    .col(
                        ColumnDef::new(Orders::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(now()),
                    )
                    .col(
                        ColumnDef::new(Orders::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(now()),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(
                        ColumnDef::new(Outbox::EventId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Outbox::Exchange).text().not_null())
                    .col(ColumnDef::new(Outbox::Payload).text().not_null())
                    .col(
                        ColumnDef::new(Outbox::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(now()),
                    )
                    .col(
                        ColumnDef::new(Outbox::PublishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // The relay only ever looks for unpublished rows, oldest first.
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE INDEX {PENDING_INDEX} ON outbox (created_at) WHERE published_at IS NULL"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Orders::Table).to_owned())
            .await
    }
}
