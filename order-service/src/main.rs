//! Placeholder for the `order-service` binary: its issue builds it on top of the broker.

fn main() {
    eprintln!("order-service: not built yet; see the project's issues");
    std::process::exit(2);
}
