//! The outbox rows of one service, as its relay uses them. A row is leased
//! (`claimed_until`) for the time of one publish in a short statement of its
//! own; no transaction or row lock is held while the broker is reached.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, Statement,
};
use uuid::Uuid;

use super::entity as outbox;
use crate::broker::{BrokerError, OutgoingMessage, Publisher};
use foundation::db::bounded;

/// The result of one round: rows claimed, rows published, and the broker
/// failure that kept the others back, if any.
#[derive(Debug)]
pub struct Round {
    pub claimed: u64,
    pub published: u64,
    pub failure: Option<BrokerError>,
}

/// What one prune deleted, and in how many statements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub rows: u64,
    pub statements: u64,
}

#[derive(Clone)]
pub struct Outbox {
    db: DatabaseConnection,
    service: &'static str,
}

impl Outbox {
    pub fn new(db: DatabaseConnection, service: &'static str) -> Self {
        Self { db, service }
    }

    /// Leases up to `limit` unpublished rows nobody holds, oldest first.
    /// `SKIP LOCKED` lets replicas claim side by side without waiting.
    pub async fn claim(&self, limit: u64, lease: Duration) -> Result<Vec<outbox::Model>, DbErr> {
        let statement = Statement::from_sql_and_values(
            self.db.get_database_backend(),
            r#"UPDATE outbox SET claimed_until = now() + make_interval(secs => $3)
               WHERE event_id IN (
                   SELECT event_id FROM outbox
                   WHERE source = $1 AND published_at IS NULL
                     AND (claimed_until IS NULL OR claimed_until < now())
                   ORDER BY created_at
                   LIMIT $2
                   FOR UPDATE SKIP LOCKED)
               RETURNING *"#,
            [
                self.service.into(),
                (limit as i64).into(),
                lease.as_secs_f64().into(),
            ],
        );
        let mut rows = outbox::Model::find_by_statement(statement)
            .all(&self.db)
            .await?;
        rows.sort_by_key(|row| row.created_at);
        Ok(rows)
    }

    pub async fn mark_published(&self, event_ids: &[Uuid]) -> Result<(), DbErr> {
        if event_ids.is_empty() {
            return Ok(());
        }
        outbox::Entity::update_many()
            .col_expr(outbox::Column::PublishedAt, Expr::current_timestamp())
            .col_expr(
                outbox::Column::ClaimedUntil,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(outbox::Column::EventId.is_in(event_ids.iter().copied()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Gives rows back before their lease ends, so the next round retries them.
    pub async fn release(&self, event_ids: &[Uuid]) -> Result<(), DbErr> {
        if event_ids.is_empty() {
            return Ok(());
        }
        outbox::Entity::update_many()
            .col_expr(
                outbox::Column::ClaimedUntil,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(outbox::Column::EventId.is_in(event_ids.iter().copied()))
            .filter(outbox::Column::PublishedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Claims, publishes and marks what the broker confirmed. A crash
    /// between the confirm and the mark only means the row is published
    /// again once its lease ends; consumers are idempotent.
    pub async fn publish_pending(
        &self,
        publisher: &dyn Publisher,
        limit: u64,
        lease: Duration,
    ) -> Result<Round, DbErr> {
        let rows = bounded(self.claim(limit, lease)).await?;
        if rows.is_empty() {
            return Ok(Round {
                claimed: 0,
                published: 0,
                failure: None,
            });
        }
        let messages = rows
            .iter()
            .map(|row| OutgoingMessage {
                exchange: row.exchange.clone(),
                message_id: row.event_id.to_string(),
                body: row.payload.clone().into_bytes(),
                correlation_id: row.request_id.clone(),
            })
            .collect();
        let results = publisher.publish_all(messages).await;
        let (mut confirmed, mut refused, mut failure) = (vec![], vec![], None);
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(()) => confirmed.push(row.event_id),
                Err(e) => {
                    refused.push(row.event_id);
                    failure = failure.or(Some(e));
                }
            }
        }
        bounded(self.mark_published(&confirmed)).await?;
        bounded(self.release(&refused)).await?;
        Ok(Round {
            claimed: rows.len() as u64,
            published: confirmed.len() as u64,
            failure,
        })
    }

    /// Deletes rows published more than `retention` ago, at most `batch`
    /// per statement: after a long downtime one DELETE of everything could
    /// outlast the statement timeout on every attempt and never finish.
    pub async fn prune(&self, retention: Duration, batch: u64) -> Result<Pruned, DbErr> {
        let cutoff = chrono::Utc::now() - retention;
        let batch = batch.max(1);
        let mut pruned = Pruned::default();
        loop {
            let statement = Statement::from_sql_and_values(
                self.db.get_database_backend(),
                r#"DELETE FROM outbox WHERE event_id IN (
                       SELECT event_id FROM outbox
                       WHERE source = $1 AND published_at < $2
                       LIMIT $3)"#,
                [self.service.into(), cutoff.into(), (batch as i64).into()],
            );
            let deleted = bounded(self.db.execute_raw(statement))
                .await?
                .rows_affected();
            pruned.rows += deleted;
            pruned.statements += 1;
            if deleted < batch {
                return Ok(pruned);
            }
        }
    }

    /// How many rows are not published yet, and the age in seconds of the
    /// oldest of them (0 when none).
    pub async fn pending_summary(&self) -> Result<(u64, f64), DbErr> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
                 FROM outbox WHERE source = $1 AND published_at IS NULL",
                [self.service.into()],
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("the backlog query returned no row".into()))?;
        let count: i64 = row.try_get_by_index(0)?;
        let oldest: f64 = row.try_get_by_index(1)?;
        Ok((count.max(0) as u64, oldest.max(0.0)))
    }
}
