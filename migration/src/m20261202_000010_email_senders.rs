use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Which sender (a process, by a random id of its own) holds a pending
/// email: a sender whose record of an email committed without it learning
/// so (the answer lost in a failover) finds its own claim and sends the
/// email at once, instead of every other sender waiting out the lease.
const UP: &str = "ALTER TABLE sent_emails ADD COLUMN claimed_by uuid NULL;";

const DOWN: &str = "ALTER TABLE sent_emails DROP COLUMN claimed_by;";

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
