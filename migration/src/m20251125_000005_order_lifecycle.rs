use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Order lifecycle and catalogue: order status with its reason and the
/// customer's email, idempotency keys, product prices, the outbox shared by
/// several services, and the kind of each email sent.
const UP: &str = r#"
ALTER TABLE outbox ADD COLUMN source text NOT NULL DEFAULT 'order';
ALTER TABLE outbox ALTER COLUMN source DROP DEFAULT;
DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_pending_idx ON outbox (source, created_at) WHERE published_at IS NULL;

ALTER TABLE orders ADD COLUMN customer_email text NULL;
ALTER TABLE orders ADD COLUMN reason text NULL;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'confirmed', 'rejected'));
ALTER TABLE orders ADD CONSTRAINT orders_reason_check
    CHECK ((status = 'rejected') = (reason IS NOT NULL));
CREATE INDEX orders_status_idx ON orders (status, id);

CREATE TABLE idempotency_keys (
    key text PRIMARY KEY,
    fingerprint text NOT NULL,
    order_id uuid NOT NULL REFERENCES orders (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE products ADD COLUMN price_cents bigint NOT NULL DEFAULT 0
    CHECK (price_cents >= 0);
UPDATE products SET price_cents = 99900 WHERE id = '123';
UPDATE products SET price_cents = 1999 WHERE id = '456';

ALTER TABLE sent_emails ADD COLUMN kind text NOT NULL DEFAULT 'order_received';
"#;

const DOWN: &str = r#"
ALTER TABLE sent_emails DROP COLUMN kind;
ALTER TABLE products DROP COLUMN price_cents;
DROP TABLE idempotency_keys;
DROP INDEX orders_status_idx;
ALTER TABLE orders DROP CONSTRAINT orders_reason_check;
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders DROP COLUMN reason;
ALTER TABLE orders DROP COLUMN customer_email;
DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_pending_idx ON outbox (created_at) WHERE published_at IS NULL;
ALTER TABLE outbox DROP COLUMN source;
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
