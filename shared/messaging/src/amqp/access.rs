//! What a service's broker user may do, checked on a connection of its own
//! before it counts on it ([`super::check_access`]).

use lapin::options::{BasicPublishOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ExchangeKind};

use super::topology::look_up_queue;
use contracts::topology::Needs;

use super::{Endpoint, SETUP_TIMEOUT, is_access_refused, is_not_found};

/// The outcome of one check.
pub(super) enum Checked {
    Granted,
    /// A permission is missing: why, naming the user and what it may not do.
    Refused(String),
    /// An exchange or queue does not exist yet: which.
    NoTopology(String),
    /// The broker did not answer, or the connection failed.
    Unavailable,
}

/// Looks for every exchange and queue in `needs` (passive declarations,
/// which need no permission), then publishes once to each exchange inside
/// a transaction that is rolled back: RabbitMQ checks the write permission
/// when the message arrives, and a rolled-back message reaches no queue.
pub(super) async fn check(connection: &Connection, endpoint: &Endpoint, needs: &Needs) -> Checked {
    for exchange in &needs.publishes {
        if let Err(outcome) = exists(connection, Kind::Exchange, exchange).await {
            return outcome;
        }
    }
    for queue in &needs.consumes {
        if let Err(outcome) = exists(connection, Kind::Queue, queue).await {
            return outcome;
        }
    }
    for exchange in &needs.publishes {
        match may_publish(connection, exchange).await {
            Ok(()) => {}
            Err(Some(e)) if is_access_refused(&e) => {
                return Checked::Refused(format!(
                    "the broker refuses {} publishing to exchange {exchange} ({e}); the `topology` command grants it",
                    endpoint.user()
                ));
            }
            Err(_) => return Checked::Unavailable,
        }
    }
    Checked::Granted
}

#[derive(Clone, Copy)]
enum Kind {
    Exchange,
    Queue,
}

/// Whether `name` exists, on a channel of its own (a refused declaration
/// closes its channel).
async fn exists(connection: &Connection, kind: Kind, name: &str) -> Result<(), Checked> {
    let looked = tokio::time::timeout(SETUP_TIMEOUT, async {
        let channel = connection.create_channel().await?;
        match kind {
            Kind::Exchange => {
                let passive = ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                channel
                    .exchange_declare(
                        name.into(),
                        ExchangeKind::Fanout,
                        passive,
                        FieldTable::default(),
                    )
                    .await?;
            }
            Kind::Queue => look_up_queue(&channel, name).await?,
        }
        let _ = channel.close(200, "looked".into()).await;
        lapin::Result::Ok(())
    })
    .await;
    match looked {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if is_not_found(&e) => Err(Checked::NoTopology(match kind {
            Kind::Exchange => format!("exchange {name}"),
            Kind::Queue => format!("queue {name}"),
        })),
        _ => Err(Checked::Unavailable),
    }
}

/// Publishes an empty message to `exchange` in a transaction and rolls it
/// back: the broker answers 403 if the user may not write there. `None`:
/// no answer in time.
async fn may_publish(connection: &Connection, exchange: &str) -> Result<(), Option<lapin::Error>> {
    let tried = tokio::time::timeout(SETUP_TIMEOUT, async {
        let channel = connection.create_channel().await?;
        channel.tx_select().await?;
        channel
            .basic_publish(
                exchange.into(),
                "".into(),
                BasicPublishOptions::default(),
                b"",
                BasicProperties::default(),
            )
            .await?;
        channel.tx_rollback().await?;
        let _ = channel.close(200, "checked".into()).await;
        lapin::Result::Ok(())
    })
    .await;
    match tried {
        Ok(answered) => answered.map_err(Some),
        Err(_) => Err(None),
    }
}
