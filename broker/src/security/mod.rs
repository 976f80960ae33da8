//! Authentication as Kafka's brokers do it (issue 19): SASL mechanisms behind SaslHandshake /
//! SaslAuthenticate. Each mechanism is a pure state machine over the client's tokens, so it can
//! be tested against the RFCs' vectors and real clients alike, and the connection code only
//! carries bytes between the wire and it.

pub mod scram;
