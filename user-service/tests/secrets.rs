//! Passwords are never logged: the whole user-service (and every library under it: sqlx, hyper,
//! rdkafka) runs with every log at TRACE into a buffer through a sign-up, a good and a bad login
//! and a duplicate sign-up, and the password appears nowhere in what was logged. Its own test
//! binary, because the capturing subscriber is process-wide.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use test_support::{MariaDb, TestBroker};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_never_reach_the_logs() -> anyhow::Result<()> {
    const PASSWORD: &str = "Unmistakable-Pa55word-7f3e";
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    // (The harness's own test-writer subscriber stays out: this one is installed first.)
    let app = common::user_service(&db.url, &broker.bootstrap()).await?;
    let url = app.url.clone();
    let c = reqwest::Client::new();

    let sign_up = json!({"email":"secret@example.com","name":"Sam","pwd": PASSWORD});
    let r = c.post(format!("{url}/users")).json(&sign_up).send().await?;
    assert_eq!(r.status(), 201);
    assert!(!r.text().await?.contains(PASSWORD));
    let r = c.post(format!("{url}/users")).json(&sign_up).send().await?;
    assert_eq!(r.status(), 409);
    let login = |password: &str| {
        c.post(format!("{url}/login"))
            .json(&json!({"email":"secret@example.com","password": password}))
            .send()
    };
    assert_eq!(login(PASSWORD).await?.status(), 200);
    assert_eq!(login(&format!("{PASSWORD}-wrong")).await?.status(), 401);
    app.stop().await?;

    let logs =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    // The capture works (the service's own lines are there, and sqlx's statements)...
    assert!(logs.contains("user created"), "nothing captured?\n{logs}");
    assert!(logs.contains("INSERT INTO users"), "no SQL logged?");
    // ...and the password is in none of it, nor the wrong one.
    assert!(!logs.contains(PASSWORD), "the password was logged");
    Ok(())
}
