//! The email ledger (`sent_emails`): each email is recorded once, as pending,
//! before it goes out, and marked sent after. `claimed_at` is a lease: a
//! pending email claimed long ago lost its sender (a crash between sending
//! and marking), and any replica may take it over. A plain struct over SeaORM.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, Statement,
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

    /// Records a batch of emails in one statement; answers, for each in order,
    /// what the ledger knew of it. An event twice in the batch is sent by its
    /// first occurrence.
    pub async fn record_all(&self, emails: &[Email]) -> Result<Vec<Recorded>, DbErr> {
        // A batch whose emails were all sent before an outage took their
        // marks records nothing (an INSERT without VALUES is a syntax error).
        if emails.is_empty() {
            return Ok(vec![]);
        }
        let mut insert = Query::insert();
        insert
            .into_table(sent_emails::Entity)
            .columns([
                sent_emails::Column::EventId,
                sent_emails::Column::OrderId,
                sent_emails::Column::ProductId,
                sent_emails::Column::Kind,
                sent_emails::Column::Recipient,
                sent_emails::Column::Quantity,
            ])
            .on_conflict(
                OnConflict::column(sent_emails::Column::EventId)
                    .do_nothing()
                    .to_owned(),
            )
            .returning_col(sent_emails::Column::EventId);
        for email in emails {
            insert.values_panic([
                email.event_id.into(),
                email.order_id.into(),
                email.product_id.clone().into(),
                email.kind.as_str().into(),
                email.to.clone().into(),
                i32::try_from(email.quantity).unwrap_or(i32::MAX).into(),
            ]);
        }
        let inserted: HashSet<Uuid> = self
            .db
            .query_all_raw(self.db.get_database_backend().build(&insert))
            .await?
            .iter()
            .map(|row| row.try_get_by_index::<Uuid>(0))
            .collect::<Result<_, _>>()?;
        let mut known = HashMap::new();
        for email in emails {
            let id = email.event_id;
            if inserted.contains(&id) || known.contains_key(&id) {
                continue;
            }
            // Seen before: a redelivery, rare enough to look at one by one.
            let recorded = if !self.take_over(Some(id), 1).await?.is_empty() {
                Recorded::TakenOver
            } else {
                match sent_emails::Entity::find_by_id(id).one(&self.db).await? {
                    Some(earlier) if earlier.sent_at.is_some() => Recorded::AlreadySent,
                    _ => Recorded::InProgress,
                }
            };
            known.insert(id, recorded);
        }
        let mut first = HashSet::new();
        Ok(emails
            .iter()
            .map(|email| {
                let id = email.event_id;
                if !first.insert(id) {
                    Recorded::InProgress
                } else if inserted.contains(&id) {
                    Recorded::New
                } else {
                    known[&id]
                }
            })
            .collect())
    }

    pub async fn mark_all_sent(&self, event_ids: &[Uuid]) -> Result<(), DbErr> {
        if event_ids.is_empty() {
            return Ok(());
        }
        sent_emails::Entity::update_many()
            .col_expr(sent_emails::Column::SentAt, Expr::current_timestamp())
            .filter(sent_emails::Column::EventId.is_in(event_ids.iter().copied()))
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
                    request_id: None,
                })
            })
            .collect())
    }
}
