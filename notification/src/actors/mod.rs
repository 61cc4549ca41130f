pub mod mailer;

use shared::consumer::EventConsumer;

/// The AMQP consumer of this service: `OrderCreated` in, `SendEmail` out.
pub type AmqpConsumer = EventConsumer<mailer::SendEmail>;
