//! What a request handler knows about the connection a request came on: who sent it (the
//! principal the listener's authentication established), from where, on which listener, and
//! which address that listener advertises. One per connection, handed to [`dispatch`] with
//! every request, so authorization and per-listener answers (Metadata's advertised address)
//! have what they need without the connection code knowing about either.
//!
//! [`dispatch`]: super::dispatch

use std::net::SocketAddr;
use std::sync::Arc;

use crate::broker::Advertised;
use crate::security::principal::KafkaPrincipal;
use crate::security::SecurityProtocol;

/// The connection a request came on.
#[derive(Debug, Clone)]
pub struct Session {
    /// The client's address.
    pub peer: SocketAddr,
    /// The address this listener tells its clients (Metadata, FindCoordinator).
    pub advertised: Arc<Advertised>,
    /// Who the client proved to be; `User:ANONYMOUS` when the listener authenticates nobody.
    pub principal: KafkaPrincipal,
    /// The listener's security protocol.
    pub protocol: SecurityProtocol,
}

impl Session {
    /// A connection on a PLAINTEXT listener: anonymous.
    pub fn plaintext(peer: SocketAddr, advertised: Arc<Advertised>) -> Self {
        Session {
            peer,
            advertised,
            principal: KafkaPrincipal::anonymous(),
            protocol: SecurityProtocol::Plaintext,
        }
    }
}
