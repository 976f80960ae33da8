//! The Kafka wire protocol: framing, request headers, version negotiation, and routing each
//! request to its handler in `api/`.

mod dispatch;
mod frame;
mod legacy;
pub mod sasl;
mod session;
pub mod versions;

pub use dispatch::{dispatch, Outcome, Pending};
pub use frame::{encode_response, error_frame};
pub use session::Session;

#[cfg(test)]
mod proptests;
