//! A TCP proxy for fault tests: connections to [`FaultProxy::addr`] are forwarded to a server
//! until the test sets a [`Fault`]. Cutting the proxy is what a dead server looks like to a
//! client (open connections closed, new ones closed at once); stalling it is what a hung one
//! looks like (connections accepted, nothing answered), the case only timeouts catch. The server
//! itself is never touched, so the same test runs against a container or a shared server.

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward every byte both ways.
    None,
    /// Close every open connection and every new one at once.
    Down,
    /// Hold every connection open and forward nothing.
    Stall,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    fault: watch::Sender<Fault>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on a loopback port forwarding to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (fault, watching) = watch::channel(Fault::None);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, target, watching.clone()));
            }
        });
        Ok(FaultProxy { addr, fault, task })
    }

    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.set(Fault::Down);
        self.task.abort();
    }
}

async fn serve(mut client: TcpStream, target: SocketAddr, mut fault: watch::Receiver<Fault>) {
    // Stalled: hold the connection until the fault changes, then treat it as new.
    while *fault.borrow_and_update() == Fault::Stall {
        if fault.changed().await.is_err() {
            return;
        }
    }
    if *fault.borrow() == Fault::Down {
        let _ = client.shutdown().await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let faulted = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => None,
        f = fault.wait_for(|f| *f != Fault::None) => f.ok().map(|f| *f),
    };
    // Down closes both ends now; Stall keeps them open and silent until the proxy changes again,
    // then drops them (the client's session is gone either way).
    if faulted == Some(Fault::Stall) {
        let _ = fault.wait_for(|f| *f != Fault::Stall).await;
    }
}
