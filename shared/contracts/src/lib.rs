//! What the services agree on with each other and with their clients, and
//! what another team may depend on: the events on the wire, the names of
//! every exchange and queue and who may use them, and the rules by which
//! JSON is read as the API documents describe it.
//!
//! Plain data and pure functions: no broker, database, HTTP or actor crate.

pub mod events;
pub mod json;
pub mod topology;
