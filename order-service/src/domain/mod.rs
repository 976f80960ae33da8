//! Validated types: a handler only ever sees an order that passed these checks, so nothing
//! downstream (the topic, the sink, the table) has to cope with bad values.

mod order;
mod user_id;

pub use order::{NewOrder, Order, OrderRequest};
pub use user_id::UserId;
