//! The `sync` command's loop: catch up, then keep shipping until stopped, through
//! PostgreSQL restarts and files that are not there yet.

use super::ship::{ShipError, Shipment, Shipper};
use super::{connect, shown, PgError};
use crate::server::store::Store;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often a following `sync` looks for new records: well inside the 1.5 s a log line may
/// take to reach a dashboard.
const PASS_EVERY: Duration = Duration::from_millis(250);
/// The longest wait between attempts to reach a PostgreSQL that went away.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// While following, what was shipped is told at most this often (a pass every 250 ms would
/// otherwise print a line each).
const SAY_EVERY: Duration = Duration::from_secs(10);

/// Ships `store`'s runs into the PostgreSQL at `url` as `node`: one pass with `once`,
/// otherwise until `stop` completes. An unreachable or refusing server at the start is an
/// error (what to check); later it is waited for.
pub async fn run(
    url: &str,
    store: Store,
    node: String,
    once: bool,
    stop: impl Future<Output = ()>,
) -> Result<(), String> {
    let at = shown(url);
    let pool = connect(url).await.map_err(|e| e.to_string())?;
    let mut shipper = Shipper::new(pool, store.sources().clone(), node.clone())
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("sync: shipping node {node}'s runs to {at}");
    tokio::pin!(stop);
    let mut backoff = PASS_EVERY;
    let mut said_waiting = false;
    // Shipped since the last progress line, and since when.
    let (mut untold, mut since) = (Shipment::default(), Instant::now());
    let mut caught_up = false;
    loop {
        match shipper.pass().await {
            Ok(shipment) => {
                backoff = PASS_EVERY;
                said_waiting = false;
                untold.add(&shipment);
                if !untold.is_empty() && (!caught_up || since.elapsed() >= SAY_EVERY) {
                    eprintln!(
                        "sync: {} ({:.1} s)",
                        said(&untold),
                        since.elapsed().as_secs_f64()
                    );
                    (untold, since) = (Shipment::default(), Instant::now());
                }
                if once {
                    return Ok(());
                }
                if !caught_up {
                    eprintln!("sync: caught up; following the run files");
                    caught_up = true;
                }
            }
            Err(ShipError::Pg(e)) if e.is_transient() && !once => {
                eprintln!(
                    "sync: lost PostgreSQL at {at} ({e}); trying again in {:.1} s",
                    backoff.as_secs_f64()
                );
                // After a fault PostgreSQL's copy is the truth: read it again.
                shipper.forget();
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(ShipError::Source(e)) if !once => {
                // No run files yet, or a file being rewritten: the next pass reads it. A
                // pass cut short may have shipped pages it did not note: start the next
                // from what PostgreSQL holds.
                shipper.forget();
                if !said_waiting {
                    eprintln!("sync: waiting for the run files: {e}");
                    said_waiting = true;
                }
            }
            Err(e) => return Err(message(&at, e)),
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}

fn said(s: &Shipment) -> String {
    let mut parts = Vec::new();
    if s.steps > 0 {
        parts.push(format!("{} steps", s.steps));
    }
    if s.records > 0 {
        parts.push(format!("{} routing and LR records", s.records));
    }
    if s.runs > 0 {
        parts.push(format!("{} run records", s.runs));
    }
    format!("shipped {} in {} chunks", parts.join(", "), s.chunks)
}

fn message(at: &str, e: ShipError) -> String {
    match e {
        ShipError::Pg(PgError::Query(q)) => format!("PostgreSQL at {at}: {q}"),
        other => other.to_string(),
    }
}
