//! The long reads — building a run's state, a full-resolution scan — stepped through
//! SQLite's C API on the pool's own connection, which sqlx lends out with `lock_handle`.
//! Through sqlx every row is handed from its worker thread to ours with an allocation per
//! value, about 2 µs a row (measured with `perf` on a 1M-step run); here a row costs what
//! SQLite spends on it. Only reads: the statement is prepared, stepped and finalized within
//! one call, so SQLite's shared lock is held no longer than sqlx would hold it.
//!
//! Any failure is returned as [`RawError`] and the caller reads the same page through sqlx
//! instead, which retries a busy file and names the problem the usual way.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, CStr};
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;
use sqlx::sqlite::SqlitePool;

/// The most rows a read makes room for before it knows how many there are: a page of a
/// long read (`run_cache::SCAN_PAGE`).
const RESERVED_ROWS: usize = 10_000;

/// A value bound to `?N`.
#[derive(Clone, Copy, Debug)]
pub enum Bind<'a> {
    Int(i64),
    Text(&'a str),
}

/// Why a raw read did not complete (the caller falls back to sqlx).
#[derive(Debug)]
pub struct RawError(pub String);

impl std::fmt::Display for RawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A result row read by column position, whichever way it was read, so one decoder serves
/// the fast path and the fallback.
pub trait Columns {
    /// Column `i` as a real (integers widen); NULL as `None`.
    fn real(&self, i: usize) -> Option<f64>;
    /// Column `i` as an integer; NULL as `None`.
    fn int(&self, i: usize) -> Option<i64>;
    /// Column `i` as text; NULL as `None`.
    fn text(&self, i: usize) -> Option<&str>;
}

impl Columns for sqlx::sqlite::SqliteRow {
    fn real(&self, i: usize) -> Option<f64> {
        sqlx::Row::try_get_unchecked::<Option<f64>, _>(self, i)
            .ok()
            .flatten()
    }

    fn int(&self, i: usize) -> Option<i64> {
        sqlx::Row::try_get_unchecked::<Option<i64>, _>(self, i)
            .ok()
            .flatten()
    }

    fn text(&self, i: usize) -> Option<&str> {
        sqlx::Row::try_get_unchecked::<Option<&str>, _>(self, i)
            .ok()
            .flatten()
    }
}

/// The current row of a statement being stepped; valid only inside the visitor.
pub struct Row<'s> {
    stmt: &'s Statement,
}

impl Row<'_> {
    fn is_null(&self, i: usize) -> bool {
        // SAFETY: the statement has a row (we are inside `step` returning SQLITE_ROW) and an
        // out-of-range column yields SQLITE_NULL, never undefined behaviour.
        unsafe { ffi::sqlite3_column_type(self.stmt.raw(), i as c_int) == ffi::SQLITE_NULL }
    }
}

impl Columns for Row<'_> {
    fn real(&self, i: usize) -> Option<f64> {
        if self.is_null(i) {
            return None;
        }
        // SAFETY: as in `is_null`; SQLite converts the stored value to a double.
        Some(unsafe { ffi::sqlite3_column_double(self.stmt.raw(), i as c_int) })
    }

    fn int(&self, i: usize) -> Option<i64> {
        if self.is_null(i) {
            return None;
        }
        // SAFETY: as in `is_null`.
        Some(unsafe { ffi::sqlite3_column_int64(self.stmt.raw(), i as c_int) })
    }

    /// Invalid UTF-8 reads as `None`.
    fn text(&self, i: usize) -> Option<&str> {
        if self.is_null(i) {
            return None;
        }
        // SAFETY: `sqlite3_column_text` returns a pointer valid until the next step or
        // finalize, and `sqlite3_column_bytes` (called after it, as SQLite requires) its
        // length; the borrow of `self` ends before either can happen.
        let bytes = unsafe {
            let text = ffi::sqlite3_column_text(self.stmt.raw(), i as c_int);
            if text.is_null() {
                return None;
            }
            let len = ffi::sqlite3_column_bytes(self.stmt.raw(), i as c_int);
            std::slice::from_raw_parts(text, len.max(0) as usize)
        };
        std::str::from_utf8(bytes).ok()
    }
}

/// A prepared statement, finalized when dropped.
struct Statement(NonNull<ffi::sqlite3_stmt>);

impl Statement {
    fn raw(&self) -> *mut ffi::sqlite3_stmt {
        self.0.as_ptr()
    }
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: prepared by `sqlite3_prepare_v2` and finalized only here.
        unsafe {
            ffi::sqlite3_finalize(self.raw());
        }
    }
}

fn error(db: *mut ffi::sqlite3, what: &str) -> RawError {
    // SAFETY: `db` is the open connection; the message is copied before any other call.
    let message = unsafe {
        let m = ffi::sqlite3_errmsg(db);
        if m.is_null() {
            String::new()
        } else {
            CStr::from_ptr(m).to_string_lossy().into_owned()
        }
    };
    RawError(format!("{what}: {message}"))
}

/// Runs `sql` with `binds` on the pool's connection and decodes every row with `decode`.
/// All or nothing: a failure part-way returns no rows.
pub async fn rows<T>(
    pool: &SqlitePool,
    sql: &str,
    binds: &[Bind<'_>],
    limit: usize,
    mut decode: impl FnMut(&Row<'_>) -> T,
) -> Result<Vec<T>, RawError> {
    let mut conn = pool.acquire().await.map_err(|e| RawError(e.to_string()))?;
    let mut handle = conn
        .lock_handle()
        .await
        .map_err(|e| RawError(e.to_string()))?;
    let db = handle.as_raw_handle().as_ptr();
    // Room for a whole page at once: grown by doubling, a page of steps (3 MB) was copied
    // over and over and its memory faulted in afresh each time.
    let mut out = Vec::with_capacity(limit.min(RESERVED_ROWS));
    let mut run = || step_all(db, sql, binds, &mut |row: &Row<'_>| out.push(decode(row)));
    // A page is CPU work for a few milliseconds; on a multi-threaded runtime the other
    // tasks move to another worker meanwhile.
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(run)?,
        _ => run()?,
    };
    Ok(out)
}

fn step_all(
    db: *mut ffi::sqlite3,
    sql: &str,
    binds: &[Bind<'_>],
    visit: &mut impl FnMut(&Row<'_>),
) -> Result<(), RawError> {
    let len = c_int::try_from(sql.len()).map_err(|_| RawError("statement too long".into()))?;
    let mut raw: *mut ffi::sqlite3_stmt = ptr::null_mut();
    // SAFETY: `db` is open and locked out from sqlx's worker for the duration of this call
    // (`lock_handle`); `sql` is valid for `len` bytes; no tail is asked for.
    let rc = unsafe {
        ffi::sqlite3_prepare_v2(
            db,
            sql.as_ptr() as *const c_char,
            len,
            &mut raw,
            ptr::null_mut(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(error(db, "prepare"));
    }
    let stmt = Statement(NonNull::new(raw).ok_or_else(|| RawError("empty statement".into()))?);
    for (i, bind) in binds.iter().enumerate() {
        let at = i as c_int + 1;
        // SAFETY: `at` is a 1-based parameter index; text is copied by SQLite
        // (SQLITE_TRANSIENT) before the call returns.
        let rc = unsafe {
            match bind {
                Bind::Int(v) => ffi::sqlite3_bind_int64(stmt.raw(), at, *v),
                Bind::Text(v) => ffi::sqlite3_bind_text(
                    stmt.raw(),
                    at,
                    v.as_ptr() as *const c_char,
                    c_int::try_from(v.len()).map_err(|_| RawError("value too long".into()))?,
                    ffi::SQLITE_TRANSIENT(),
                ),
            }
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, "bind"));
        }
    }
    loop {
        // SAFETY: a prepared, bound statement on the locked connection.
        match unsafe { ffi::sqlite3_step(stmt.raw()) } {
            ffi::SQLITE_ROW => visit(&Row { stmt: &stmt }),
            ffi::SQLITE_DONE => return Ok(()),
            _ => return Err(error(db, "step")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqlitePoolOptions;

    /// An in-memory database on one connection, like the store's pool.
    async fn one_connection() -> sqlx::SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }

    /// Every kind of value reads the same through SQLite's C API as through sqlx.
    #[tokio::test]
    async fn rows_read_the_same_as_through_sqlx() {
        let pool = one_connection().await;
        sqlx::query("CREATE TABLE t (i INTEGER, r REAL, s TEXT)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO t VALUES (1, 0.5, 'a'), (NULL, NULL, NULL), (-7, 1e999, 'é ü'), \
             (9007199254740993, -1e999, ''), (2, 3, '2026-01-09T14:47:33+00:00')",
        )
        .execute(&pool)
        .await
        .unwrap();
        type Decoded = (Option<i64>, Option<f64>, Option<String>, Option<f64>);
        let decode = |r: &dyn Columns| -> Decoded {
            (r.int(0), r.real(1), r.text(2).map(str::to_owned), r.real(0))
        };
        let sql = "SELECT i, r, s FROM t WHERE rowid >= ?1 AND s IS NOT ?2 ORDER BY rowid";
        let binds = [Bind::Int(1), Bind::Text("no such text")];
        let fast = rows(&pool, sql, &binds, 10, |r| decode(r)).await.unwrap();
        let slow: Vec<Decoded> = sqlx::query(sql)
            .bind(1_i64)
            .bind("no such text")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| decode(r))
            .collect();
        assert_eq!(fast.len(), 5);
        assert_eq!(fast, slow);
        assert_eq!(fast[2].1, Some(f64::INFINITY));
        assert_eq!(fast[3].0, Some(9_007_199_254_740_993));
        assert_eq!(fast[2].2.as_deref(), Some("é ü"));
        assert_eq!(fast[1], (None, None, None, None));
    }

    /// A bad statement is an error to fall back on, not a panic, and the connection is
    /// still usable after it.
    #[tokio::test]
    async fn a_failed_read_leaves_the_connection_usable() {
        let pool = one_connection().await;
        let err = rows(&pool, "SELECT * FROM missing", &[], 1, |_| ()).await;
        assert!(err.unwrap_err().0.contains("no such table"));
        let err = rows(&pool, "SELECT ?1", &[Bind::Int(1), Bind::Int(2)], 1, |_| ()).await;
        assert!(err.is_err(), "more binds than parameters");
        let one = rows(&pool, "SELECT 41 + ?1", &[Bind::Int(1)], 1, |r| r.int(0)).await;
        assert_eq!(one.unwrap(), vec![Some(42)]);
        let n: i64 = sqlx::query_scalar("SELECT 2")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 2);
    }
}
