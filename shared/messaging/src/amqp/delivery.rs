//! A lapin delivery as the consumers see it, and how it is settled:
//! acknowledged, returned, dead-lettered, or parked (a fresh copy back in
//! the queue).

use std::time::Duration;

use futures_util::future::BoxFuture;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicPublishOptions, BasicRejectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};

use contracts::topology::QueueNames;

use super::unavailable;
use crate::broker::{BrokerError, IncomingMessage, Settlement, Settler};

/// How long parking a message may wait for the broker's confirm.
const PARK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing a channel after a failed settle may wait for the broker.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The header counting how often a message was parked.
const PARKED_HEADER: &str = "x-parked";
const PERSISTENT: u8 = 2;

pub(super) fn incoming(
    delivery: Delivery,
    channel: &Channel,
    queues: &QueueNames,
) -> IncomingMessage {
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_string());
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let counts = (
        header_count(&headers, "x-delivery-count").unwrap_or(0),
        header_count(&headers, PARKED_HEADER).unwrap_or(0),
    );
    let redelivered = delivery.redelivered;
    let settler = LapinSettler {
        acker: delivery.acker,
        channel: channel.clone(),
        park_exchange: queues.park_exchange(),
        queue: queues.work_queue(),
        properties: delivery.properties,
        parked: counts.1,
    };
    IncomingMessage::new(delivery.data, message_id, counts, Box::new(settler))
        .with_redelivered(redelivered)
}

/// A count in a header: quorum queues add `x-delivery-count` to a
/// redelivered message; parking adds `x-parked`.
fn header_count(headers: &FieldTable, name: &str) -> Option<u32> {
    let (_, value) = headers
        .inner()
        .iter()
        .find(|(key, _)| key.as_str() == name)?;
    let wide: i64 = match value {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => *v,
        _ => return None,
    };
    u32::try_from(wide).ok()
}

/// The properties of a parked copy: the original's, with the broker's own
/// counting headers left out (the copy starts afresh) and `x-parked` set.
fn parked_properties(original: &BasicProperties, parked: u32) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(original) = original.headers() {
        for (key, value) in original.inner() {
            let broker_owned = key.as_str().starts_with("x-delivery-count")
                || key.as_str().starts_with("x-acquired-count")
                || key.as_str().starts_with("x-death")
                || key.as_str().starts_with("x-first-death")
                || key.as_str().starts_with("x-last-death")
                || key.as_str() == PARKED_HEADER;
            if !broker_owned {
                headers.insert(key.clone(), value.clone());
            }
        }
    }
    headers.insert(
        ShortString::from(PARKED_HEADER),
        AMQPValue::LongLongInt(parked.saturating_add(1).into()),
    );
    let mut properties = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_headers(headers);
    if let Some(content_type) = original.content_type() {
        properties = properties.with_content_type(content_type.clone());
    }
    if let Some(message_id) = original.message_id() {
        properties = properties.with_message_id(message_id.clone());
    }
    if let Some(timestamp) = original.timestamp() {
        properties = properties.with_timestamp(*timestamp);
    }
    properties
}

struct LapinSettler {
    acker: lapin::Acker,
    channel: Channel,
    /// Where a parked copy is published, with the queue's name as the
    /// routing key ([`QueueNames::park_exchange`]).
    park_exchange: String,
    queue: String,
    properties: BasicProperties,
    parked: u32,
}

impl LapinSettler {
    /// Puts a fresh copy at the back of the queue, confirmed, before the
    /// original is acknowledged: a crash in between leaves two copies, which
    /// the idempotent consumer absorbs, never none.
    async fn park(&self, body: &[u8]) -> Result<(), BrokerError> {
        let confirm = async {
            self.channel
                .basic_publish(
                    self.park_exchange.as_str().into(),
                    self.queue.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    body,
                    parked_properties(&self.properties, self.parked),
                )
                .await?
                .await
        };
        match tokio::time::timeout(PARK_TIMEOUT, confirm).await {
            Ok(Ok(lapin::Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(_)) => Err(unavailable("the broker refused the parked copy")),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("no confirm for the parked copy")),
        }
    }

    /// Settles on the channel the delivery came on.
    async fn settle_on_channel(
        &self,
        settlement: Settlement,
        body: &[u8],
    ) -> Result<(), BrokerError> {
        let acker = &self.acker;
        let done = match settlement {
            Settlement::Ack => acker.ack(BasicAckOptions::default()).await,
            Settlement::Park => {
                self.park(body).await?;
                acker.ack(BasicAckOptions::default()).await
            }
            // `reject` rather than `nack`: from RabbitMQ 4.3 only a
            // rejected return counts toward the delivery limit.
            Settlement::Retry => acker.reject(BasicRejectOptions { requeue: true }).await,
            Settlement::DeadLetter => acker.reject(BasicRejectOptions { requeue: false }).await,
        }
        .map_err(unavailable)?;
        if done {
            Ok(())
        } else {
            Err(unavailable(
                "the channel closed before the delivery was settled",
            ))
        }
    }
}

impl Settler for LapinSettler {
    fn settle(
        self: Box<Self>,
        settlement: Settlement,
        body: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), BrokerError>> {
        Box::pin(async move {
            let settled = self.settle_on_channel(settlement, &body).await;
            if settled.is_err() && self.channel.status().connected() {
                // Left unsettled on a live channel, the delivery would go
                // back only after the broker's consumer timeout (30 min by
                // default). Closed, the channel returns it at once, and the
                // subscription reopens as after any lost channel.
                let closing = self
                    .channel
                    .close(200, "a delivery could not be settled".into());
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
            }
            settled
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut headers = FieldTable::default();
        for (key, value) in pairs {
            headers.insert((*key).into(), value.clone());
        }
        headers
    }

    fn delivery_count(headers: &FieldTable) -> Option<u32> {
        header_count(headers, "x-delivery-count")
    }

    #[test]
    fn reads_a_count_in_any_integer_width() {
        let count = |value| delivery_count(&headers(&[("x-delivery-count", value)]));
        assert_eq!(count(AMQPValue::LongLongInt(3)), Some(3));
        assert_eq!(count(AMQPValue::ShortUInt(2)), Some(2));
        assert_eq!(count(AMQPValue::LongInt(-1)), None);
        assert_eq!(count(AMQPValue::LongString("3".into())), None);
        assert_eq!(delivery_count(&FieldTable::default()), None);
    }

    #[test]
    fn a_parked_copy_keeps_its_identity_and_starts_its_count_afresh() {
        let original = BasicProperties::default()
            .with_message_id("event-1".into())
            .with_content_type("application/json".into())
            .with_headers(headers(&[
                ("x-delivery-count", AMQPValue::LongLongInt(7)),
                ("x-parked", AMQPValue::LongLongInt(2)),
                ("traceparent", AMQPValue::LongString("00-abc-01".into())),
            ]));

        let copy = parked_properties(&original, 2);

        assert_eq!(
            copy.message_id().as_ref().map(|id| id.as_str()),
            Some("event-1")
        );
        assert_eq!(copy.delivery_mode(), &Some(PERSISTENT));
        let copied = copy.headers().clone().unwrap();
        assert_eq!(header_count(&copied, "x-delivery-count"), None);
        assert_eq!(header_count(&copied, PARKED_HEADER), Some(3));
        assert!(
            copied
                .inner()
                .iter()
                .any(|(key, _)| key.as_str() == "traceparent")
        );
    }
}

/// Properties of the header reading over generated headers, 256 cases each
/// (stated so that the unit tests stay fast).
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Any value a publisher may put in a header.
    fn any_header_value() -> impl Strategy<Value = AMQPValue> {
        prop_oneof![
            any::<bool>().prop_map(AMQPValue::Boolean),
            any::<i8>().prop_map(AMQPValue::ShortShortInt),
            any::<u8>().prop_map(AMQPValue::ShortShortUInt),
            any::<i16>().prop_map(AMQPValue::ShortInt),
            any::<u16>().prop_map(AMQPValue::ShortUInt),
            any::<i32>().prop_map(AMQPValue::LongInt),
            any::<u32>().prop_map(AMQPValue::LongUInt),
            any::<i64>().prop_map(AMQPValue::LongLongInt),
            any::<f64>().prop_map(AMQPValue::Double),
            ".{0,8}".prop_map(|s| AMQPValue::LongString(s.into())),
            Just(AMQPValue::Void),
        ]
    }

    /// The integer a header holds, if it is an integer of any width.
    fn as_integer(value: &AMQPValue) -> Option<i128> {
        Some(match value {
            AMQPValue::ShortShortInt(v) => (*v).into(),
            AMQPValue::ShortShortUInt(v) => (*v).into(),
            AMQPValue::ShortInt(v) => (*v).into(),
            AMQPValue::ShortUInt(v) => (*v).into(),
            AMQPValue::LongInt(v) => (*v).into(),
            AMQPValue::LongUInt(v) => (*v).into(),
            AMQPValue::LongLongInt(v) => (*v).into(),
            _ => return None,
        })
    }

    fn any_headers() -> impl Strategy<Value = Vec<(String, AMQPValue)>> {
        let name = prop_oneof![
            Just("x-delivery-count".to_string()),
            Just("x-parked".to_string()),
            Just("x-death".to_string()),
            Just("x-acquired-count".to_string()),
            "[a-z-]{1,12}",
        ];
        prop::collection::vec((name, any_header_value()), 0..6)
    }

    fn table(pairs: &[(String, AMQPValue)]) -> FieldTable {
        let mut table = FieldTable::default();
        for (key, value) in pairs {
            table.insert(key.as_str().into(), value.clone());
        }
        table
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_count_is_read_exactly_when_the_header_is_an_integer_that_fits(value in any_header_value()) {
            let headers = table(&[("x-delivery-count".into(), value.clone())]);

            let count = header_count(&headers, "x-delivery-count");

            let expected = as_integer(&value).and_then(|n| u32::try_from(n).ok());
            prop_assert_eq!(count, expected);
        }

        #[test]
        fn a_parked_copy_counts_one_more_park_drops_the_brokers_counts_and_keeps_the_rest(
            pairs in any_headers(),
            parked in prop_oneof![Just(u32::MAX), Just(0u32), any::<u32>()],
        ) {
            let headers = table(&pairs);
            let original = BasicProperties::default().with_headers(headers.clone());

            let copy = parked_properties(&original, parked);

            let copied = copy.headers().clone().unwrap();
            prop_assert_eq!(header_count(&copied, PARKED_HEADER), Some(parked.saturating_add(1)));
            for (key, value) in headers.inner() {
                let key = key.as_str();
                let copied_value = copied
                    .inner()
                    .iter()
                    .find(|(copied_key, _)| copied_key.as_str() == key)
                    .map(|(_, value)| format!("{value:?}"));
                if key == PARKED_HEADER {
                    continue;
                } else if key.starts_with("x-delivery-count")
                    || key.starts_with("x-acquired-count")
                    || key.starts_with("x-death")
                {
                    prop_assert!(copied_value.is_none(), "{} copied", key);
                } else {
                    prop_assert_eq!(copied_value, Some(format!("{value:?}")), "{} lost", key);
                }
            }
        }
    }
}
