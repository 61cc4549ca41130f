use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The notification service's ledger: one row per event whose email went
/// out, so a redelivery or a restart never sends it again.
#[derive(DeriveIden)]
enum SentEmails {
    Table,
    EventId,
    OrderId,
    ProductId,
    SentAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SentEmails::Table)
                    .col(
                        ColumnDef::new(SentEmails::EventId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(SentEmails::OrderId).uuid().not_null())
                    .col(ColumnDef::new(SentEmails::ProductId).text().not_null())
                    .col(
                        ColumnDef::new(SentEmails::SentAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(Expr::current_timestamp()),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SentEmails::Table).to_owned())
            .await
    }
}
