use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each outbox row keeps the id of the request that caused it, which the
/// relay sends as the message's `correlation_id` (and `traceparent`).
const UP: &str = "ALTER TABLE outbox ADD COLUMN request_id text NULL;";

const DOWN: &str = "ALTER TABLE outbox DROP COLUMN request_id;";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
