//! The email ledger (`sent_emails`): each email is recorded once, as pending,
//! before it goes out, and marked sent after. `claimed_at` is a lease: a
//! pending email claimed long ago lost its sender (a crash between sending
//! and marking), and any replica may take it over. `claimed_by` names the
//! sender: one that finds a pending email of its own that it is not
//! handling (its record committed, the answer lost) takes it back at once.
//! A plain struct over SeaORM.

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
    /// This sender's id in `claimed_by`: one per ledger (per process).
    sender: Uuid,
}

/// A pending email taken over, and whether it was this sender's own claim
/// (never sent: its record's answer was lost) or another's (sent, perhaps,
/// by a sender that died before marking it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOver {
    pub email: Email,
    pub own: bool,
}

impl EmailLedger {
    /// `lease`: how long a sender may hold a pending email before another
    /// takes it over.
    pub fn new(db: DatabaseConnection, lease: Duration) -> Self {
        Self {
            db,
            lease,
            sender: Uuid::new_v4(),
        }
    }

    /// Records a batch of emails in one statement, claimed by this sender;
    /// answers, for each in order, what the ledger knew of it. An event twice
    /// in the batch is sent by its first occurrence. `in_hand`: this
    /// sender's emails that other work of its own is sending or marking,
    /// never taken back here.
    pub async fn record_all(
        &self,
        emails: &[Email],
        in_hand: &[Uuid],
    ) -> Result<Vec<Recorded>, DbErr> {
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
                sent_emails::Column::ClaimedBy,
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
                self.sender.into(),
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
            let recorded = if let Some(taken) = self.take_over(Some(id), 1, in_hand).await?.pop() {
                if taken.own {
                    Recorded::New
                } else {
                    Recorded::TakenOver
                }
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
    /// first, and this sender's own that it is not handling (`in_hand`);
    /// replicas sweeping at once claim different ones.
    pub async fn take_over_unsent(
        &self,
        limit: u64,
        in_hand: &[Uuid],
    ) -> Result<Vec<TakenOver>, DbErr> {
        self.take_over(None, limit, in_hand).await
    }

    async fn take_over(
        &self,
        event_id: Option<Uuid>,
        limit: u64,
        in_hand: &[Uuid],
    ) -> Result<Vec<TakenOver>, DbErr> {
        let statement = Statement::from_sql_and_values(
            self.db.get_database_backend(),
            r#"WITH taken AS (
                   SELECT event_id, claimed_by AS previous FROM sent_emails
                   WHERE sent_at IS NULL
                     AND (claimed_at < now() - make_interval(secs => $1) OR claimed_by = $4)
                     AND NOT event_id = ANY($5::uuid[])
                     AND ($2::uuid IS NULL OR event_id = $2)
                   ORDER BY claimed_at
                   LIMIT $3
                   FOR UPDATE SKIP LOCKED)
               UPDATE sent_emails e SET claimed_at = now(), claimed_by = $4
               FROM taken WHERE e.event_id = taken.event_id
               RETURNING e.kind, e.event_id, e.order_id, e.product_id, e.quantity,
                         e.recipient, taken.previous IS NOT DISTINCT FROM $4 AS own"#,
            [
                self.lease.as_secs_f64().into(),
                event_id.into(),
                (limit as i64).into(),
                self.sender.into(),
                uuid_array(in_hand).into(),
            ],
        );
        let rows = TakenRow::find_by_statement(statement).all(&self.db).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(TakenOver {
                    email: Email {
                        kind: EmailKind::parse(&row.kind)?,
                        event_id: row.event_id,
                        order_id: row.order_id,
                        product_id: row.product_id,
                        quantity: u32::try_from(row.quantity).ok()?,
                        to: row.recipient,
                        request_id: None,
                    },
                    own: row.own,
                })
            })
            .collect())
    }
}

/// A PostgreSQL array literal of `ids`, for `$n::uuid[]`.
fn uuid_array(ids: &[Uuid]) -> String {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    format!("{{{}}}", ids.join(","))
}

#[derive(Debug, FromQueryResult)]
struct TakenRow {
    kind: String,
    event_id: Uuid,
    order_id: Uuid,
    product_id: String,
    quantity: i32,
    recipient: Option<String>,
    own: bool,
}
