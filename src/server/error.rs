//! The one application error. What a person may read is its `Display`; the causes that only
//! belong in the server log stay inside and are logged where the error is answered.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no {what} {id:?} in this database")]
    NotFound { what: &'static str, id: String },
    #[error("no API endpoint {path} (the endpoints are listed in docs/api.md)")]
    NoRoute { path: String },
    #[error(
        "{method} is not allowed here: the API only reads (GET), apart from POST /api/snapshots"
    )]
    MethodNotAllowed { method: String },
    #[error("bad parameter `{name}`: {reason}")]
    BadParam { name: &'static str, reason: String },
    #[error("{path} does not exist: point the dashboard at the trainer's file with --db PATH (or HYDRA_DB), or try `hydra-dashboard demo`. A running dashboard keeps looking and reads it once the trainer creates it")]
    DbMissing { path: String },
    #[error(
        "no HYDRA run files yet in {dirs} (the trainer writes its log there when a run starts)"
    )]
    NoRunFiles { dirs: String },
    #[error("{path} is not a HYDRA training database: {why}")]
    NotHydra { path: String, why: String },
    #[error("no snapshot {id:?}: the link is mistyped, or the snapshot was removed from the dashboard's state directory")]
    NoSnapshot { id: String },
    #[error("cannot keep snapshots in {dir}: {why} (choose another place with --state-dir)")]
    StateDir { dir: String, why: String },
    #[error("the training database stayed busy (the trainer is writing); try again in a moment")]
    Busy,
    #[error("could not read the training database (details in the server log)")]
    Database(#[source] sqlx::Error),
    #[error("cannot read the runs in PostgreSQL at {at}: {why}")]
    Postgres { at: String, why: String },
    #[error("could not read back run {run}'s values kept on disk ({why}); it is read again from its files on the next request")]
    Spill { run: String, why: String },
}

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound { .. } | Self::NoRoute { .. } | Self::NoSnapshot { .. } => {
                StatusCode::NOT_FOUND
            }
            Self::BadParam { .. } => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::DbMissing { .. }
            | Self::NoRunFiles { .. }
            | Self::NotHydra { .. }
            | Self::StateDir { .. }
            | Self::Busy
            | Self::Postgres { .. }
            | Self::Spill { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn bad_param(name: &'static str, reason: impl Into<String>) -> Self {
        Self::BadParam {
            name,
            reason: reason.into(),
        }
    }

    /// For a server function: logged here, shown to the person as its message.
    pub fn into_server_error(self) -> leptos::prelude::ServerFnError {
        self.log();
        leptos::prelude::ServerFnError::ServerError(self.to_string())
    }

    /// Logs the internal cause once, at the edge where the error is answered.
    pub fn log(&self) {
        match self {
            Self::Database(e) => tracing::error!("database error: {e}"),
            Self::NotHydra { .. }
            | Self::DbMissing { .. }
            | Self::StateDir { .. }
            | Self::Busy
            | Self::Postgres { .. }
            | Self::Spill { .. } => tracing::warn!("{self}"),
            _ => {}
        }
    }
}

/// The SQLite result code behind a sqlx error, if there is one.
pub fn sqlite_code(e: &sqlx::Error) -> Option<i32> {
    match e {
        sqlx::Error::Database(db) => db.code().and_then(|c| c.parse().ok()),
        _ => None,
    }
}

/// Busy and locked (and their extended codes) mean "try again", never "fail".
pub fn is_busy(e: &sqlx::Error) -> bool {
    matches!(sqlite_code(e).map(|c| c & 0xff), Some(5 | 6))
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let mut body = serde_json::json!({
            "error": self.to_string(),
            "status": self.status_code().as_u16(),
        });
        if let Self::BadParam { name, .. } = &self {
            body["parameter"] = (*name).into();
        }
        (self.status_code(), Json(body)).into_response()
    }
}
