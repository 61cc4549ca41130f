use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One row per service, rewritten by a paused consumer's probe: proof that
/// the database takes writes again, not only answers reads, before the
/// consumers resume.
const UP: &str = "CREATE TABLE heartbeats (
    service text PRIMARY KEY,
    beaten_at timestamptz NOT NULL DEFAULT now()
);";

const DOWN: &str = "DROP TABLE heartbeats;";

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
