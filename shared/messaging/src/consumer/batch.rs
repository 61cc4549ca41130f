//! Events handed to a domain actor a batch at a time, and answered one
//! result per event.

use std::fmt::Display;

use actix::Message;

use foundation::failure::{Classify, FailureKind};

/// The answer to a batch: an error for the batch as a whole (every event
/// in it shares the failure, e.g. the database is down), or one result per
/// event, in order.
pub type BatchResult<T, E> = Result<Vec<Result<T, E>>, E>;

/// Runs `work` on the whole batch in one go (one transaction, say). If that
/// fails for a reason other than an outage, runs it on each item alone, so
/// that one bad item fails only itself; an outage fails the batch.
pub async fn batch_or_each<T, R, E>(
    items: &[T],
    work: impl AsyncFn(&[T]) -> Result<Vec<R>, E>,
) -> BatchResult<R, E>
where
    E: Classify,
{
    match work(items).await {
        Ok(results) => Ok(results.into_iter().map(Ok).collect()),
        Err(e) if items.len() <= 1 || e.kind() == FailureKind::Outage => Err(e),
        Err(_) => {
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                let alone = work(std::slice::from_ref(item)).await;
                results.push(alone.map(|mut result| result.remove(0)));
            }
            Ok(results)
        }
    }
}

/// A domain message made from a batch of events `E`: what a consumer of
/// `E` sends.
pub trait FromEvents<E>:
    Message<Result = BatchResult<Self::Done, Self::Error>> + From<Vec<E>> + Send + 'static
{
    type Done: Send + 'static;
    type Error: Classify + Display + Send + 'static;
}

impl<E, M, T, Er> FromEvents<E> for M
where
    M: Message<Result = BatchResult<T, Er>> + From<Vec<E>> + Send + 'static,
    T: Send + 'static,
    Er: Classify + Display + Send + 'static,
{
    type Done = T;
    type Error = Er;
}
