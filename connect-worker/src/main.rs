//! Placeholder for the `connect-worker` binary: its issue builds it on top of the broker.

fn main() {
    eprintln!("connect-worker: not built yet; see the project's issues");
    std::process::exit(2);
}
