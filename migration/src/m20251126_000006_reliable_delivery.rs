use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Delivery that survives long outages and crashes: outbox rows are leased
/// by a relay for the time of a publish instead of locked in a transaction
/// held across network I/O; emails are recorded as pending before they go
/// out and marked sent after, so one lost to a crash is sent again;
/// `claimed_at` says when a sender last took an email on.
const UP: &str = r#"
ALTER TABLE outbox ADD COLUMN claimed_until timestamptz NULL;
CREATE INDEX outbox_published_idx ON outbox (source, published_at) WHERE published_at IS NOT NULL;

ALTER TABLE sent_emails ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE sent_emails ALTER COLUMN sent_at DROP NOT NULL;
ALTER TABLE sent_emails ALTER COLUMN sent_at DROP DEFAULT;
ALTER TABLE sent_emails ADD COLUMN recipient text NULL;
ALTER TABLE sent_emails ADD COLUMN quantity integer NOT NULL DEFAULT 1 CHECK (quantity > 0);
CREATE INDEX sent_emails_pending_idx ON sent_emails (claimed_at) WHERE sent_at IS NULL;
"#;

const DOWN: &str = r#"
DROP INDEX sent_emails_pending_idx;
ALTER TABLE sent_emails DROP COLUMN quantity;
ALTER TABLE sent_emails DROP COLUMN recipient;
UPDATE sent_emails SET sent_at = claimed_at WHERE sent_at IS NULL;
ALTER TABLE sent_emails ALTER COLUMN sent_at SET DEFAULT now();
ALTER TABLE sent_emails ALTER COLUMN sent_at SET NOT NULL;
ALTER TABLE sent_emails DROP COLUMN claimed_at;

DROP INDEX outbox_published_idx;
ALTER TABLE outbox DROP COLUMN claimed_until;
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
