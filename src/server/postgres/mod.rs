//! A team's PostgreSQL: where `hydra-dashboard sync` ships each node's runs
//! ([`ship`]) and, next, where `serve --store` reads them. The schema is ours
//! (`migrations/`, docs/postgres.md), applied on first connect.

pub mod chunks;
pub mod read;
pub mod ship;
pub mod source;
pub mod sync;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// The channel each shipped batch is announced on (payload: JSON with `seq`, `run_id`,
/// `newest_step`).
pub const CHANNEL: &str = "hydra_batches";

/// What went wrong reaching or writing PostgreSQL, in words that say what to check.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "'{0}' is not a PostgreSQL URL (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE): {1}"
    )]
    BadUrl(String, String),
    #[error("cannot reach PostgreSQL at {at}: {why} (is the server running, and are the host and port right?)")]
    Unreachable { at: String, why: String },
    #[error("PostgreSQL at {at} refused: {why} (check the user, password and database name in the URL, and pg_hba.conf)")]
    Refused { at: String, why: String },
    #[error("PostgreSQL at {at}: could not set up hydra-dashboard's tables: {why}")]
    Migrate { at: String, why: String },
    #[error("PostgreSQL: {0}")]
    Query(#[from] sqlx::Error),
    #[error("a run's stored records could not be read back: {0}")]
    Corrupt(String),
}

impl PgError {
    /// A fault that passes (the server restarting, a dropped connection): try again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Query(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
                ) || matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("57") || c.starts_with("08")))
            }
            _ => false,
        }
    }
}

/// `url` without its password, for messages and logs.
pub fn shown(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(o) => format!(
            "{}@{}:{}/{}",
            o.get_username(),
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or("postgres")
        ),
        Err(_) => "(unreadable URL)".into(),
    }
}

/// Connects to `url` and brings the schema up to date (once per database: migrations take
/// a lock, so nodes starting together apply them once).
pub async fn connect(url: &str) -> Result<PgPool, PgError> {
    let at = shown(url);
    // sqlx reads any scheme as PostgreSQL's: a mysql:// URL would fail later, and worse.
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        let why = "it must begin with postgres:// or postgresql://".to_string();
        return Err(PgError::BadUrl(url_without_password(url), why));
    }
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| PgError::BadUrl(url_without_password(url), e.to_string()))?
        .application_name("hydra-dashboard");
    // No idle timeout and no maximum lifetime: sqlx 0.9's maintenance task spins a core
    // with either (docs/performance.md); a dead connection is found when it is used.
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await
        .map_err(|e| reaching(&at, e))?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .map_err(|e| PgError::Migrate {
            at: at.clone(),
            why: e.to_string(),
        })?;
    Ok(pool)
}

/// Names a failed connect by what to check.
fn reaching(at: &str, e: sqlx::Error) -> PgError {
    match &e {
        sqlx::Error::Io(io) => PgError::Unreachable {
            at: at.into(),
            why: io.to_string(),
        },
        sqlx::Error::PoolTimedOut => PgError::Unreachable {
            at: at.into(),
            why: "no answer within 5 s".into(),
        },
        sqlx::Error::Database(d) => PgError::Refused {
            at: at.into(),
            why: d.message().to_string(),
        },
        _ => PgError::Unreachable {
            at: at.into(),
            why: e.to_string(),
        },
    }
}

fn url_without_password(url: &str) -> String {
    // postgres://user:secret@host → postgres://user:***@host
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// This machine's name, the default node name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "node".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            url_without_password("postgres://ann:s3cret@db:5432/runs"),
            "postgres://ann:***@db:5432/runs"
        );
        assert_eq!(
            url_without_password("postgres://db/runs"),
            "postgres://db/runs"
        );
        assert_eq!(
            shown("postgres://ann:s3cret@db:5433/runs"),
            "ann@db:5433/runs"
        );
    }
}
