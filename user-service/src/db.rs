//! Database access: a lazy pool with bounded waits (an unreachable MariaDB means a quick 503),
//! the shared migrations, and the user queries.

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::MySqlPool;

use crate::error::ApiError;

/// The schema in the workspace's `migrations/`, shared by both services (see [`migrate`]).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

pub fn pool(url: &str, max_connections: u32, timeout: Duration) -> Result<MySqlPool, sqlx::Error> {
    let options: MySqlConnectOptions = url.parse()?;
    Ok(MySqlPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(timeout)
        .connect_lazy_with(options))
}

/// Applies the migrations, retrying while the database is unreachable (e.g. still starting).
///
/// Safe when several instances start at once: the run holds a server-wide advisory lock named
/// after the database. sqlx's migrator does take `GET_LOCK(<id>, -1)` itself, but MariaDB (10.11,
/// 11.x) answers a negative timeout with NULL at once instead of waiting, so on MariaDB that lock
/// does nothing (two instances then both insert the same version: "Duplicate entry ... for key
/// PRIMARY"). Ours uses a finite timeout, which both MariaDB and MySQL honour.
pub async fn migrate(pool: &MySqlPool, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        match migrate_locked(pool, within).await {
            Ok(()) => return Ok(()),
            Err(Failure::Unreachable(e)) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "database not reachable yet; retrying migrations");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(Failure::Unreachable(e) | Failure::Fatal(e)) => {
                return Err(anyhow::anyhow!("migrations failed: {e}"))
            }
        }
    }
}

enum Failure {
    Unreachable(String),
    Fatal(String),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(_) => Failure::Fatal(e.to_string()),
            other => Failure::Unreachable(other.to_string()),
        }
    }
}

async fn migrate_locked(pool: &MySqlPool, within: Duration) -> Result<(), Failure> {
    const LOCK: &str = "CONCAT('datasync-migrations:', DATABASE())";
    let mut conn = pool.acquire().await?;
    let (got,): (Option<i64>,) = sqlx::query_as(&format!("SELECT GET_LOCK({LOCK}, ?)"))
        .bind(within.as_secs().max(1))
        .fetch_one(&mut *conn)
        .await?;
    if got != Some(1) {
        return Err(Failure::Fatal(
            "timed out waiting for another instance's migrations".into(),
        ));
    }
    // `run_direct` rather than `run(&mut *conn)`, which trips sqlx's "Acquire is not general
    // enough" in spawned futures.
    let result = MIGRATOR.run_direct(&mut *conn).await;
    let _ = sqlx::query(&format!("SELECT RELEASE_LOCK({LOCK})"))
        .execute(&mut *conn)
        .await;
    match result {
        Ok(()) => Ok(()),
        Err(sqlx::migrate::MigrateError::Execute(e)) => Err(e.into()),
        Err(e) => Err(Failure::Fatal(e.to_string())),
    }
}

/// Runs `f` with a deadline: a hung database becomes a 503, never a hung request.
pub async fn with_timeout<T>(
    within: Duration,
    f: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(within, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ApiError::Unavailable(
            "the database did not answer in time".into(),
        )),
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub encrypted_pwd: String,
}

/// Inserts a user; `Ok(false)` when the email is taken.
pub async fn insert_user(
    pool: &MySqlPool,
    user_id: &str,
    email: &str,
    name: &str,
    encrypted_pwd: &str,
) -> Result<bool, sqlx::Error> {
    let r =
        sqlx::query("INSERT INTO users (user_id, email, name, encrypted_pwd) VALUES (?, ?, ?, ?)")
            .bind(user_id)
            .bind(email)
            .bind(name)
            .bind(encrypted_pwd)
            .execute(pool)
            .await;
    match r {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

const COLUMNS: &str = "SELECT user_id, email, name, encrypted_pwd FROM users";

pub async fn all_users(pool: &MySqlPool) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("{COLUMNS} ORDER BY id"))
        .fetch_all(pool)
        .await
}

pub async fn user_by_id(pool: &MySqlPool, user_id: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("{COLUMNS} WHERE user_id = ?"))
        .bind(user_id)
        .fetch_optional(pool)
        .await
}

pub async fn user_by_email(pool: &MySqlPool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("{COLUMNS} WHERE email = ?"))
        .bind(email)
        .fetch_optional(pool)
        .await
}
