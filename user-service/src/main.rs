//! Placeholder for the `user-service` binary: its issue builds it on top of the broker.

fn main() {
    eprintln!("user-service: not built yet; see the project's issues");
    std::process::exit(2);
}
