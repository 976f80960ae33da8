//! Database access: a lazy pool with bounded waits (an unreachable MariaDB means a quick 503),
//! the shared migrations, and the user queries.

use sqlx::MySqlPool;

pub use schema::{migrate, pool, MigrationError, MIGRATOR};
pub use service_common::db::with_timeout;

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
