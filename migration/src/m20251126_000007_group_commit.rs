use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Intake commits orders in groups: the keys of a group are claimed first,
/// and only then are the orders they name inserted, so the key's reference
/// to its order is checked at commit.
const UP: &str = r#"
ALTER TABLE idempotency_keys ALTER CONSTRAINT idempotency_keys_order_id_fkey
    DEFERRABLE INITIALLY DEFERRED;
"#;

const DOWN: &str = r#"
ALTER TABLE idempotency_keys ALTER CONSTRAINT idempotency_keys_order_id_fkey
    NOT DEFERRABLE;
"#;

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
