//! The email ledger (`sent_emails`): each email is recorded once, as pending,
//! before it goes out, and marked sent after. `claimed_at` is a lease: a
//! pending email claimed long ago lost its sender (a crash between sending
//! and marking), and any replica may take it over. A plain struct over SeaORM.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, Statement, TryInsertResult,
};
use uuid::Uuid;

use crate::domain::mailing::Recorded;
use crate::domain::{Email, EmailKind};
use crate::entity::sent_emails;

#[derive(Clone)]
pub struct EmailLedger {
    db: DatabaseConnection,
    lease: Duration,
}

impl EmailLedger {
    /// `lease`: how long a sender may hold a pending email before another
    /// takes it over.
    pub fn new(db: DatabaseConnection, lease: Duration) -> Self {
        Self { db, lease }
    }

    pub async fn record(&self, email: &Email) -> Result<Recorded, DbErr> {
        let inserted = sent_emails::Entity::insert(sent_emails::ActiveModel {
            event_id: Set(email.event_id),
            order_id: Set(email.order_id),
            product_id: Set(email.product_id.clone()),
            kind: Set(email.kind.as_str().to_string()),
            recipient: Set(email.to.clone()),
            quantity: Set(i32::try_from(email.quantity).unwrap_or(i32::MAX)),
            ..Default::default()
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&self.db)
        .await?;
        if matches!(inserted, TryInsertResult::Inserted(1)) {
            return Ok(Recorded::New);
        }
        if !self.take_over(Some(email.event_id), 1).await?.is_empty() {
            return Ok(Recorded::TakenOver);
        }
        let earlier = sent_emails::Entity::find_by_id(email.event_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("email of event {}", email.event_id)))?;
        Ok(match earlier.sent_at {
            Some(_) => Recorded::AlreadySent,
            None => Recorded::InProgress,
        })
    }

    pub async fn mark_sent(&self, event_id: Uuid) -> Result<(), DbErr> {
        sent_emails::Entity::update_many()
            .col_expr(sent_emails::Column::SentAt, Expr::current_timestamp())
            .filter(sent_emails::Column::EventId.eq(event_id))
            .filter(sent_emails::Column::SentAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Claims up to `limit` pending emails whose lease ran out, oldest
    /// first; replicas sweeping at once claim different ones.
    pub async fn take_over_unsent(&self, limit: u64) -> Result<Vec<Email>, DbErr> {
        self.take_over(None, limit).await
    }

    async fn take_over(&self, event_id: Option<Uuid>, limit: u64) -> Result<Vec<Email>, DbErr> {
        let statement = Statement::from_sql_and_values(
            self.db.get_database_backend(),
            r#"UPDATE sent_emails SET claimed_at = now()
               WHERE event_id IN (
                   SELECT event_id FROM sent_emails
                   WHERE sent_at IS NULL
                     AND claimed_at < now() - make_interval(secs => $1)
                     AND ($2::uuid IS NULL OR event_id = $2)
                   ORDER BY claimed_at
                   LIMIT $3
                   FOR UPDATE SKIP LOCKED)
               RETURNING *"#,
            [
                self.lease.as_secs_f64().into(),
                event_id.into(),
                (limit as i64).into(),
            ],
        );
        let rows = sent_emails::Model::find_by_statement(statement)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(Email {
                    kind: EmailKind::parse(&row.kind)?,
                    event_id: row.event_id,
                    order_id: row.order_id,
                    product_id: row.product_id,
                    quantity: u32::try_from(row.quantity).ok()?,
                    to: row.recipient,
                })
            })
            .collect())
    }
}
