//! The shared MariaDB schema: the migrations in the workspace's `migrations/`, the connection
//! pool both services use, and applying the migrations safely when several instances of the
//! order-service and the user-service start at once. One crate, so the services cannot drift
//! apart on how the schema they share is set up.

use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPoolOptions};
use sqlx::MySqlPool;

/// Why the migrations could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("migrations failed: {0}")]
pub struct MigrationError(String);

/// The schema in the workspace's `migrations/` (see [`migrate`]).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A lazy pool: the service starts even while the database is down.
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
pub async fn migrate(pool: &MySqlPool, within: Duration) -> Result<(), MigrationError> {
    let deadline = Instant::now() + within;
    loop {
        match migrate_locked(pool, within).await {
            Ok(()) => return Ok(()),
            Err(Failure::Unreachable(e)) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "database not reachable yet; retrying migrations");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(Failure::Unreachable(e) | Failure::Fatal(e)) => return Err(MigrationError(e)),
        }
    }
}

enum Failure {
    Unreachable(String),
    Fatal(String),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        if is_transient(&e) {
            Failure::Unreachable(e.to_string())
        } else {
            Failure::Fatal(e.to_string())
        }
    }
}

/// MariaDB/MySQL server errors that say "not now" rather than "never": the server is
/// overloaded, shutting down, read-only for a failover, or a transaction lost a lock race.
/// Retrying later can succeed, so a service answers them with 503, and start-up keeps waiting.
pub const TRANSIENT_SERVER_ERRORS: &[u16] = &[
    1021, // ER_DISK_FULL
    1037, // ER_OUTOFMEMORY
    1038, // ER_OUT_OF_SORTMEMORY
    1040, // ER_CON_COUNT_ERROR: too many connections
    1041, // ER_OUT_OF_RESOURCES
    1053, // ER_SERVER_SHUTDOWN
    1077, // ER_NORMAL_SHUTDOWN
    1079, // ER_SHUTDOWN_COMPLETE
    1080, // ER_FORCING_CLOSE
    1152, // ER_ABORTING_CONNECTION
    1203, // ER_TOO_MANY_USER_CONNECTIONS
    1205, // ER_LOCK_WAIT_TIMEOUT
    1213, // ER_LOCK_DEADLOCK
    1226, // ER_USER_LIMIT_REACHED
    1290, // ER_OPTION_PREVENTS_STATEMENT (--read-only)
    1317, // ER_QUERY_INTERRUPTED
    1836, // ER_READ_ONLY_MODE
    1927, // ER_CONNECTION_KILLED (MariaDB)
    1969, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
    3024, // ER_QUERY_TIMEOUT (MySQL max_execution_time)
];

/// Whether `e` may go away by itself: the database could not be reached (I/O, pool timeout,
/// closed pool, protocol breakage on a dying connection) or the server refused for now
/// ([`TRANSIENT_SERVER_ERRORS`], or SQLSTATE class 08, connection exception). Other server
/// errors (syntax, constraint, access denied) and decoding errors are not.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let number = db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(MySqlDatabaseError::number);
            number.is_some_and(|n| TRANSIENT_SERVER_ERRORS.contains(&n))
                || db.code().is_some_and(|state| state.starts_with("08"))
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_transient_and_mistakes_are_not() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(is_transient(&sqlx::Error::Io(io)));
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(is_transient(&sqlx::Error::PoolClosed));
        assert!(is_transient(&sqlx::Error::Protocol("eof".into())));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        assert!(!is_transient(&sqlx::Error::ColumnNotFound("x".into())));
        assert!(!is_transient(&sqlx::Error::Decode("bad".into())));
        assert!(!is_transient(&sqlx::Error::Configuration("bad url".into())));
    }
}
