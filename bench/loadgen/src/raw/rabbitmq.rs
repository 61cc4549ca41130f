//! RabbitMQ: persistent publishes with confirms to a quorum queue, and
//! consuming with acks, in a scratch vhost.

use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio::runtime::Runtime;
use uuid::Uuid;

use crate::management::Management;
use crate::progress::{Meter, Ticker, stop_requested};
use crate::stats::{self};
use crate::urls::{credentials, redact, with_vhost};

use super::{RabbitRaw, RawConfig, Throughput, throughput};

const QUEUE: &str = "loadgen.scratch";

pub(super) fn rabbitmq(
    rt: &Runtime,
    amqp_url: &str,
    management: &Management,
    config: &RawConfig,
    quiet: bool,
) -> anyhow::Result<RabbitRaw> {
    let version = management.version()?;
    let (user, _) = credentials(amqp_url)?;
    let vhost = format!("loadgen-scratch-{}", Uuid::new_v4().simple());
    management
        .create_vhost(&vhost, &user)
        .with_context(|| format!("creating the scratch vhost {vhost}"))?;
    let measured =
        with_vhost(amqp_url, &vhost).and_then(|url| rt.block_on(broker(&url, config, quiet)));
    if let Err(e) = management.delete_vhost(&vhost) {
        eprintln!("warning: could not delete the scratch vhost {vhost}: {e:#}");
    }
    let (message_bytes, publish, consume) = measured?;
    Ok(RabbitRaw {
        version,
        message_bytes,
        window: config.amqp_window,
        publish,
        consume,
    })
}

/// The body of an `OrderCreated` as the order service publishes it.
pub fn order_created_body() -> Vec<u8> {
    let event = contracts::events::OrderCreated::new("bench".to_string(), 1);
    serde_json::to_vec(&event).expect("an event serializes")
}

async fn broker(
    url: &str,
    config: &RawConfig,
    quiet: bool,
) -> anyhow::Result<(usize, Throughput, Throughput)> {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .with_context(|| {
            format!(
                "RabbitMQ is not reachable at {} (start it, or pass --amqp-url)",
                redact(url)
            )
        })?;
    let body = order_created_body();
    let result = async {
        let publish = publish(&connection, &body, config, quiet).await?;
        let consume = consume(&connection, publish.operations, config, quiet).await?;
        Ok::<_, anyhow::Error>((body.len(), publish, consume))
    }
    .await;
    let _ = connection.close(200, "done".into()).await;
    result
}

async fn publish(
    connection: &Connection,
    body: &[u8],
    config: &RawConfig,
    quiet: bool,
) -> anyhow::Result<Throughput> {
    let channel = connection.create_channel().await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(QUEUE.into(), QueueDeclareOptions::durable(), arguments)
        .await
        .context("declaring the scratch quorum queue")?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;

    let meter = Meter::new();
    let ticker = Ticker::start(
        "raw rabbitmq publish",
        "confirmed",
        meter.clone(),
        quiet,
        |_, _| None,
    );
    let window = usize::from(config.amqp_window);
    let mut histogram = stats::new_histogram();
    let mut in_flight = FuturesUnordered::new();
    let (mut nacked, mut first_error) = (0u64, None);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(config.seconds);
    loop {
        let publishing = Instant::now() < deadline && !stop_requested();
        while publishing && in_flight.len() < window {
            let properties = BasicProperties::default()
                .with_content_type(contracts::events::JSON_CONTENT_TYPE.into())
                .with_delivery_mode(2)
                .with_message_id(Uuid::new_v4().to_string().into());
            let confirm = channel
                .basic_publish(
                    "".into(),
                    QUEUE.into(),
                    BasicPublishOptions::default(),
                    body,
                    properties,
                )
                .await?;
            let sent = Instant::now();
            in_flight.push(async move { (confirm.await, sent) });
        }
        meter.set_backlog(in_flight.len() as u64);
        match in_flight.next().await {
            Some((Ok(confirmation), sent)) if confirmation.is_ack() => {
                stats::record(&mut histogram, sent.elapsed());
                meter.done(1);
            }
            Some((Ok(_), _)) => {
                nacked += 1;
                meter.error();
            }
            Some((Err(e), _)) => {
                meter.error();
                first_error.get_or_insert(e.to_string());
                nacked += 1;
            }
            None => break,
        }
    }
    let elapsed = start.elapsed();
    let timeline = ticker.finish();
    let _ = channel.close(200, "done".into()).await;
    throughput(
        (u32::from(config.amqp_window), 1),
        1,
        elapsed,
        &histogram,
        nacked,
        timeline,
        first_error,
    )
}

async fn consume(
    connection: &Connection,
    expected: u64,
    config: &RawConfig,
    quiet: bool,
) -> anyhow::Result<Throughput> {
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(config.amqp_window, BasicQosOptions::default())
        .await?;
    let meter = Meter::new();
    let ticker = Ticker::start(
        "raw rabbitmq consume",
        "acked",
        meter.clone(),
        quiet,
        |_, _| None,
    );
    let start = Instant::now();
    let mut consumer = channel
        .basic_consume(
            QUEUE.into(),
            "loadgen".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut histogram = stats::new_histogram();
    let mut acked = 0u64;
    let mut last = Instant::now();
    while acked < expected && !stop_requested() {
        let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .map_err(|_| anyhow!("no delivery for 30 s after {acked} of {expected}"))?
            .context("the consumer closed")??;
        delivery.ack(BasicAckOptions::default()).await?;
        let now = Instant::now();
        // Time between acknowledgements: the consumer's cost per message.
        stats::record(&mut histogram, now - last);
        last = now;
        acked += 1;
        meter.done(1);
        meter.set_backlog(expected - acked);
    }
    let elapsed = start.elapsed();
    let timeline = ticker.finish();
    let _ = channel.close(200, "done".into()).await;
    throughput(
        (u32::from(config.amqp_window), 1),
        1,
        elapsed,
        &histogram,
        0,
        timeline,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_an_order_created_event() {
        let body = order_created_body();
        let event: contracts::events::OrderCreated = serde_json::from_slice(&body).unwrap();
        assert_eq!(event.product_id, "bench");
        assert!(body.len() > 100, "{} bytes", body.len());
    }
}
