//! `hydra-dashboard sync`: ships a node's runs — as its sources read them, with the same
//! precedence as `serve` — into PostgreSQL, and keeps shipping while they train.
//!
//! Shipping is idempotent by construction: a run's records are cut into chunks keyed by
//! their place in the run (`chunks.rs`), so the same records always make the same rows, and
//! a chunk is written only when its bytes differ from what was shipped. Each page of chunks
//! goes in one transaction with its batch record and its NOTIFY, so a `sync` killed at any
//! point leaves whole batches behind, and the next one carries on from what PostgreSQL
//! holds.
//!
//! What can change after it was shipped: the newest chunk (the run goes on), and the last
//! few before it — a resumed run logs again the steps after its checkpoint, and the later
//! record wins. Each pass re-reads the last [`REWIND`] chunks of a run whose sources moved
//! and rewrites those whose bytes changed: a step trained again moves the store's epoch
//! (open pages read again), a step its diagnostics record only refined does not. A run
//! whose first re-read step is not where its chunk began (its files replaced) is shipped
//! again from the start.

use super::chunks::{chunk_starts, encode_steps, Column, ColumnChunk};
use super::{read, PgError, CHANNEL};
use crate::model::{Model, RoutingMod, RoutingMoe, RoutingMor, Run, Step};
use crate::server::error::AppError;
use crate::server::files::log::refines;
use crate::server::source::Fields;
use crate::server::sources::{Marks, Sources};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Chunks re-read behind the newest on every pass of a moving run: ~100k logged steps,
/// far more than a resume rewinds.
const REWIND: usize = 4;
/// Records read from a source at a time.
const PAGE: usize = 64 * super::chunks::CHUNK;

/// A run's record feeds besides its steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Mod,
    Mor,
    Moe,
    AdaptiveLr,
}

impl RecordKind {
    pub const ALL: [RecordKind; 4] = [Self::Mod, Self::Mor, Self::Moe, Self::AdaptiveLr];

    pub fn name(self) -> &'static str {
        match self {
            Self::Mod => "routing_mod",
            Self::Mor => "routing_mor",
            Self::Moe => "routing_moe",
            Self::AdaptiveLr => "adaptive_lr",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Feed {
    Steps,
    Records(RecordKind),
}

/// A chunk as shipped: where it begins and ends, how many records, and a digest of its
/// bytes (0 for a chunk older than the last few, which is never compared).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sent {
    first_step: i64,
    last_step: i64,
    n: i64,
    digest: u64,
}

/// What this `sync` knows it has shipped of a run.
#[derive(Default)]
struct Shipped {
    record: Option<serde_json::Value>,
    evals: Option<serde_json::Value>,
    feeds: HashMap<Feed, Vec<Sent>>,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("reading the run files: {0}")]
    Source(#[from] AppError),
    #[error(transparent)]
    Pg(#[from] PgError),
}

impl From<sqlx::Error> for ShipError {
    fn from(e: sqlx::Error) -> Self {
        Self::Pg(PgError::Query(e))
    }
}

/// What one pass shipped.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shipment {
    pub runs: usize,
    pub steps: u64,
    pub records: u64,
    pub chunks: u64,
}

impl Shipment {
    pub fn is_empty(&self) -> bool {
        self.chunks == 0 && self.runs == 0
    }

    pub fn add(&mut self, other: &Shipment) {
        self.runs += other.runs;
        self.steps += other.steps;
        self.records += other.records;
        self.chunks += other.chunks;
    }
}

/// Ships one node's sources into one PostgreSQL.
pub struct Shipper {
    pool: PgPool,
    sources: Sources,
    node: String,
    models: HashMap<String, serde_json::Value>,
    runs: HashMap<String, Shipped>,
    /// How far the sources reached when the last complete pass began.
    seen: Option<Marks>,
}

impl Shipper {
    /// Registers `node` and starts from what PostgreSQL already holds.
    pub async fn new(pool: PgPool, sources: Sources, node: String) -> Result<Self, ShipError> {
        sqlx::query(
            "INSERT INTO nodes (node) VALUES ($1)
             ON CONFLICT (node) DO UPDATE SET last_seen = now()",
        )
        .bind(&node)
        .execute(&pool)
        .await?;
        Ok(Self {
            pool,
            sources,
            node,
            models: HashMap::new(),
            runs: HashMap::new(),
            seen: None,
        })
    }

    /// Forgets what it knows it shipped: after a fault, PostgreSQL's copy is the truth.
    pub fn forget(&mut self) {
        self.models.clear();
        self.runs.clear();
        self.seen = None;
    }

    /// One catch-up pass: every model and run the sources know, and every record of a run
    /// not yet shipped or changed since.
    pub async fn pass(&mut self) -> Result<Shipment, ShipError> {
        let marks = self.sources.marks().await?;
        let moved = self.seen.as_ref() != Some(&marks);
        let mut shipment = Shipment::default();
        for model in self.sources.models().await? {
            self.ship_model(&model).await?;
        }
        for run in self.sources.runs(None).await? {
            let known = self.runs.contains_key(&run.run_id);
            if !known {
                let held = self.load(&run.run_id).await?;
                self.runs.insert(run.run_id.clone(), held);
            }
            let located = match moved || !known {
                true => Some(self.sources.run(&run.run_id).await?),
                false => None,
            };
            if let Some(located) = &located {
                self.ship_feeds(located, &mut shipment).await?;
            }
            // The run's record after its records, and after its evals once its row exists:
            // a dashboard that reads "finished" (or meets the run) has its last steps and
            // evals too (its alerts read a finished run no more). A new row's evals follow it.
            let row = self
                .runs
                .get(&run.run_id)
                .is_some_and(|r| r.record.is_some());
            if let Some(located) = located.as_ref().filter(|_| row) {
                self.ship_evals(located).await?;
            }
            if self.ship_record(&run).await? {
                shipment.runs += 1;
            }
            if let Some(located) = located.as_ref().filter(|_| !row) {
                self.ship_evals(located).await?;
            }
        }
        self.seen = Some(marks);
        Ok(shipment)
    }

    /// Ships what is new or changed of each of a run's feeds. Routing before steps: a
    /// dashboard catching up from a snapshot taken between the two sees no step whose
    /// routing was there to ship without it.
    async fn ship_feeds(
        &mut self,
        run: &(Run, usize),
        shipment: &mut Shipment,
    ) -> Result<(), ShipError> {
        for feed in RecordKind::ALL
            .into_iter()
            .map(Feed::Records)
            .chain(std::iter::once(Feed::Steps))
        {
            let (records, chunks) = self.ship_feed(run, feed).await?;
            match feed {
                Feed::Steps => shipment.steps += records,
                Feed::Records(_) => shipment.records += records,
            }
            shipment.chunks += chunks;
        }
        Ok(())
    }

    async fn ship_model(&mut self, model: &Model) -> Result<(), ShipError> {
        let value = to_json(model);
        if self.models.get(&model.model_id) == Some(&value) {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO models (model_id, record) VALUES ($1, $2::jsonb)
             ON CONFLICT (model_id) DO UPDATE SET record = excluded.record, updated_at = now()
             WHERE models.record IS DISTINCT FROM excluded.record",
        )
        .bind(&model.model_id)
        .bind(value.to_string())
        .execute(&self.pool)
        .await?;
        self.models.insert(model.model_id.clone(), value);
        Ok(())
    }

    /// Writes the run's record when it changed (or is new here); whether it did. A new run's
    /// row counts the steps shipped before it.
    async fn ship_record(&mut self, run: &Run) -> Result<bool, ShipError> {
        let value = to_json(run);
        if self.runs[&run.run_id].record.as_ref() == Some(&value) {
            return Ok(false);
        }
        let written = sqlx::query(
            "INSERT INTO runs (run_id, model_id, node, record, steps, newest_step)
             SELECT $1, $2, $3, $4::jsonb, coalesce(sum(n), 0), max(last_step)
               FROM step_chunks WHERE run_id = $1 AND col = 'step'
             ON CONFLICT (run_id) DO UPDATE
                SET model_id = excluded.model_id, node = excluded.node,
                    record = excluded.record, changed = nextval('run_changes'),
                    updated_at = now()
             WHERE runs.record IS DISTINCT FROM excluded.record OR runs.node <> excluded.node",
        )
        .bind(&run.run_id)
        .bind(&run.model_id)
        .bind(&self.node)
        .bind(value.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.runs.get_mut(&run.run_id).expect("loaded first").record = Some(value);
        Ok(written > 0)
    }

    /// What PostgreSQL holds of a run: its record, evaluations and chunks, with the digests
    /// of the last few chunks of each feed (those a pass compares).
    async fn load(&self, run_id: &str) -> Result<Shipped, ShipError> {
        let mut held = Shipped::default();
        if let Some((record, evals)) = sqlx::query_as::<_, (serde_json::Value, serde_json::Value)>(
            "SELECT record, evals FROM runs WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?
        {
            held.record = Some(record);
            held.evals = Some(evals);
        }
        let steps: Vec<(i32, i64, i64, i32)> = sqlx::query_as(
            "SELECT chunk, first_step, last_step, n FROM step_chunks
              WHERE run_id = $1 AND col = 'step' ORDER BY chunk",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        let mut sent = sent_chunks(&steps);
        let tail = sent.len().saturating_sub(REWIND) as i32;
        let rows: Vec<(i32, String, Vec<u8>)> = sqlx::query_as(
            "SELECT chunk, col, data FROM step_chunks WHERE run_id = $1 AND chunk >= $2",
        )
        .bind(run_id)
        .bind(tail)
        .fetch_all(&self.pool)
        .await?;
        for (at, c) in sent.iter_mut().enumerate().skip(tail as usize) {
            let mut columns: Vec<ColumnChunk> = rows
                .iter()
                .filter(|(chunk, _, _)| *chunk as usize == at)
                .filter_map(|(_, col, data)| {
                    Some(ColumnChunk {
                        col: Column::from_name(col)?,
                        lo: None,
                        hi: None,
                        data: data.clone(),
                    })
                })
                .collect();
            let order: Vec<Column> = Column::all().collect();
            columns.sort_by_key(|c| order.iter().position(|o| *o == c.col));
            c.digest = Chunk::Steps {
                columns,
                last_step: c.last_step,
            }
            .digest();
        }
        held.feeds.insert(Feed::Steps, sent);
        for kind in RecordKind::ALL {
            let chunks: Vec<(i32, i64, i64, i32)> = sqlx::query_as(
                "SELECT chunk, first_step, last_step, n FROM record_chunks
                  WHERE run_id = $1 AND kind = $2 ORDER BY chunk",
            )
            .bind(run_id)
            .bind(kind.name())
            .fetch_all(&self.pool)
            .await?;
            let mut sent = sent_chunks(&chunks);
            let tail = sent.len().saturating_sub(REWIND) as i32;
            // As text, exactly as written: jsonb would give back another spelling.
            let rows: Vec<(i32, String)> = sqlx::query_as(
                "SELECT chunk, data::text FROM record_chunks WHERE run_id = $1 AND kind = $2 AND chunk >= $3",
            )
            .bind(run_id)
            .bind(kind.name())
            .bind(tail)
            .fetch_all(&self.pool)
            .await?;
            for (chunk, json) in rows {
                if let Some(c) = sent.get_mut(chunk as usize) {
                    c.digest = Chunk::Records {
                        json,
                        last_step: c.last_step,
                    }
                    .digest();
                }
            }
            held.feeds.insert(Feed::Records(kind), sent);
        }
        Ok(held)
    }

    async fn ship_evals(&mut self, run: &(Run, usize)) -> Result<(), ShipError> {
        let value = to_json(&self.sources.evals(run).await?);
        let run = &run.0;
        let shipped = self
            .runs
            .get_mut(&run.run_id)
            .expect("record shipped first");
        if shipped.evals.as_ref() == Some(&value) {
            return Ok(());
        }
        sqlx::query(
            "UPDATE runs SET evals = $2::jsonb, changed = nextval('run_changes'), updated_at = now()
             WHERE run_id = $1",
        )
            .bind(&run.run_id)
            .bind(value.to_string())
            .execute(&self.pool)
            .await?;
        shipped.evals = Some(value);
        Ok(())
    }

    /// Ships what is new or changed of one feed of a run; the new records and the chunks
    /// written.
    async fn ship_feed(&mut self, run: &(Run, usize), feed: Feed) -> Result<(u64, u64), ShipError> {
        let run_id = run.0.run_id.clone();
        let mut sent = self.runs[&run_id]
            .feeds
            .get(&feed)
            .cloned()
            .unwrap_or_default();
        let mut next = sent.len().saturating_sub(REWIND);
        let mut from = sent.get(next).map_or(i64::MIN, |c| c.first_step);
        let (mut records, mut chunks) = (0, 0);
        let mut first_page = true;
        // Shipped again from the start: what PostgreSQL held is rewritten, not added to.
        let mut again = false;
        let mut page = self.read(run, feed, from).await?;
        loop {
            let keys = page.keys();
            if first_page && from != i64::MIN && keys.first() != Some(&from) {
                // Not where its chunk began: the run's files were replaced. Again, whole.
                tracing::info!(
                    "run {run_id}: its {} changed, shipping them again",
                    feed_name(feed)
                );
                (next, from, first_page, again) = (0, i64::MIN, false, true);
                sent.clear();
                page = self.read(run, feed, from).await?;
                continue;
            }
            first_page = false;
            let full = page.len() >= PAGE;
            let starts = chunk_starts(&keys);
            // A full page's last chunk may go on in the next page: it is shipped from there.
            let whole = if full {
                starts.len().saturating_sub(1)
            } else {
                starts.len()
            };
            if full && whole == 0 {
                let why = format!("run {run_id}: one step holds more than {PAGE} records");
                return Err(PgError::Corrupt(why).into());
            }
            let newest_before = sent.last().map(|c| c.last_step);
            let mut batch = Batch {
                after_step: newest_before,
                rewrote: again,
                restart: again,
                ..Batch::default()
            };
            for i in 0..whole {
                let at = next + i;
                let span = starts[i]..starts.get(i + 1).copied().unwrap_or(keys.len());
                let chunk = page.encode(span.clone());
                let this = Sent {
                    first_step: keys[span.start],
                    last_step: keys[span.end - 1],
                    n: span.len() as i64,
                    digest: chunk.digest(),
                };
                let was = sent.get(at).copied();
                if was == Some(this) {
                    continue;
                }
                // Records already shipped that now read differently: history changed, unless
                // they were only refined.
                if let Some(was) = was {
                    let kept = span.start..span.start + (was.n as usize).min(span.len());
                    let moved = was.first_step != this.first_step || was.n > this.n;
                    if moved || page.encode(kept.clone()).digest() != was.digest {
                        batch.rewrote |= moved || !self.refined(&run.0, &page, kept).await?;
                    }
                }
                batch.records += keys[span.clone()]
                    .iter()
                    .filter(|&&k| newest_before.is_none_or(|n| k > n))
                    .count() as i64;
                batch.newest_step = batch.newest_step.max(Some(this.last_step));
                batch.writes.push((at, this, chunk));
            }
            // The source shrank below what was shipped: the rest goes.
            batch.cut = (!full && sent.len() > next + whole).then_some(next + whole);
            batch.rewrote |= batch.cut.is_some();
            let write = !batch.writes.is_empty() || batch.cut.is_some() || batch.restart;
            let following = full.then(|| keys[starts[whole]]);
            // The next page is read while PostgreSQL writes this one: the two take turns
            // on different cores.
            let (written, read) = tokio::join!(
                async {
                    match write {
                        true => self.commit(&run.0, feed, &batch, &sent).await,
                        false => Ok(()),
                    }
                },
                async {
                    match following {
                        Some(from) => self.read(run, feed, from).await.map(Some),
                        None => Ok(None),
                    }
                }
            );
            written?;
            if write {
                again = false;
                chunks += batch.writes.len() as u64;
                // New records only: the newest chunk is rewritten whole as it grows.
                records += batch.records as u64;
            }
            for (at, this, _) in batch.writes {
                if at < sent.len() {
                    sent[at] = this;
                } else {
                    sent.push(this);
                }
            }
            if let Some(cut) = batch.cut {
                sent.truncate(cut);
            }
            match (following, read?) {
                (Some(following), Some(read)) => {
                    (from, page) = (following, read);
                    next += whole;
                }
                _ => break,
            }
        }
        self.runs
            .get_mut(&run_id)
            .expect("record shipped first")
            .feeds
            .insert(feed, sent);
        Ok((records, chunks))
    }

    /// Whether the shipped steps `kept` of `page` changed only as a diagnostics record
    /// refines the steps its log gave (`files::log::refines`). The files source does not
    /// put a refinement in the live feed, and neither does this: it is written without
    /// moving the epoch, so no open page reloads every 500 steps for digits past the
    /// fourth. A step trained again (a resume) moves it, and pages read again.
    async fn refined(
        &self,
        run: &Run,
        page: &Page,
        kept: std::ops::Range<usize>,
    ) -> Result<bool, ShipError> {
        let Page::Steps(steps) = page else {
            return Ok(false);
        };
        let now = &steps[kept];
        let (Some(first), Some(last)) = (now.first(), now.last()) else {
            return Ok(true);
        };
        let mut db = self.pool.acquire().await?;
        let columns: Vec<Column> = Column::all().collect();
        let range = (first.step, last.step);
        let was = read::steps(
            &mut db,
            &run.run_id,
            &run.model_id,
            range,
            false,
            usize::MAX,
            &columns,
        )
        .await?;
        Ok(was.len() == now.len()
            && was
                .iter()
                .zip(now)
                .all(|(was, now)| was.step == now.step && (was == now || refines(was, now))))
    }

    async fn read(&self, run: &(Run, usize), feed: Feed, from: i64) -> Result<Page, ShipError> {
        let range = (from, i64::MAX);
        Ok(match feed {
            Feed::Steps => Page::Steps(
                self.sources
                    .steps(run, range, false, PAGE, Fields::All)
                    .await?,
            ),
            Feed::Records(kind) => Page::Records(match kind {
                RecordKind::Mod => records(
                    self.sources.routing::<RoutingMod>(run, range, PAGE).await?,
                    |r| r.step,
                ),
                RecordKind::Mor => records(
                    self.sources.routing::<RoutingMor>(run, range, PAGE).await?,
                    |r| r.step,
                ),
                RecordKind::Moe => records(
                    self.sources.routing::<RoutingMoe>(run, range, PAGE).await?,
                    |r| r.step,
                ),
                RecordKind::AdaptiveLr => {
                    records(self.sources.adaptive_lr(run, range, PAGE).await?, |r| {
                        r.step
                    })
                }
            }),
        })
    }

    /// Writes one page's changed chunks, drops those past `cut`, and records and announces
    /// the batch — in one transaction.
    async fn commit(
        &self,
        run: &Run,
        feed: Feed,
        batch: &Batch,
        before: &[Sent],
    ) -> Result<(), ShipError> {
        let (writes, cut) = (&batch.writes, batch.cut);
        let mut tx = self.pool.begin().await?;
        if batch.restart {
            let drop = match feed {
                Feed::Steps => sqlx::query("DELETE FROM step_chunks WHERE run_id = $1"),
                Feed::Records(kind) => {
                    sqlx::query("DELETE FROM record_chunks WHERE kind = $1 AND run_id = $2")
                        .bind(kind.name())
                }
            };
            // The run id is the last parameter of either.
            drop.bind(&run.run_id).execute(&mut *tx).await?;
        }
        match feed {
            Feed::Steps => {
                let (mut cols, mut idx, mut first, mut last, mut n, mut lo, mut hi, mut data) = (
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                );
                for (at, this, chunk) in writes {
                    let Chunk::Steps { columns, last_step } = chunk else {
                        continue;
                    };
                    for c in columns {
                        cols.push(c.col.name());
                        idx.push(*at as i32);
                        first.push(this.first_step);
                        last.push(*last_step);
                        n.push(this.n as i32);
                        lo.push(c.lo);
                        hi.push(c.hi);
                        data.push(c.data.as_slice());
                    }
                }
                sqlx::query(
                    "INSERT INTO step_chunks (run_id, col, chunk, first_step, last_step, n, lo, hi, data)
                     SELECT $1, * FROM UNNEST($2::text[], $3::int[], $4::bigint[], $5::bigint[],
                                             $6::int[], $7::float8[], $8::float8[], $9::bytea[])
                     ON CONFLICT (run_id, col, chunk) DO UPDATE SET
                        first_step = excluded.first_step, last_step = excluded.last_step,
                        n = excluded.n, lo = excluded.lo, hi = excluded.hi, data = excluded.data",
                )
                .bind(&run.run_id)
                .bind(&cols)
                .bind(&idx)
                .bind(&first)
                .bind(&last)
                .bind(&n)
                .bind(&lo)
                .bind(&hi)
                .bind(&data)
                .execute(&mut *tx)
                .await?;
                if let Some(cut) = cut {
                    sqlx::query("DELETE FROM step_chunks WHERE run_id = $1 AND chunk >= $2")
                        .bind(&run.run_id)
                        .bind(cut as i32)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            Feed::Records(kind) => {
                let (mut idx, mut first, mut last, mut n, mut data) =
                    (vec![], vec![], vec![], vec![], vec![]);
                for (at, this, chunk) in writes {
                    let Chunk::Records { json, last_step } = chunk else {
                        continue;
                    };
                    idx.push(*at as i32);
                    first.push(this.first_step);
                    last.push(*last_step);
                    n.push(this.n as i32);
                    data.push(json.as_str());
                }
                sqlx::query(
                    "INSERT INTO record_chunks (run_id, kind, chunk, first_step, last_step, n, data)
                     SELECT $1, $2, c, f, l, k, d::json
                       FROM UNNEST($3::int[], $4::bigint[], $5::bigint[], $6::int[], $7::text[])
                            AS u(c, f, l, k, d)
                     ON CONFLICT (run_id, kind, chunk) DO UPDATE SET
                        first_step = excluded.first_step, last_step = excluded.last_step,
                        n = excluded.n, data = excluded.data",
                )
                .bind(&run.run_id)
                .bind(kind.name())
                .bind(&idx)
                .bind(&first)
                .bind(&last)
                .bind(&n)
                .bind(&data)
                .execute(&mut *tx)
                .await?;
                if let Some(cut) = cut {
                    sqlx::query(
                        "DELETE FROM record_chunks WHERE run_id = $1 AND kind = $2 AND chunk >= $3",
                    )
                    .bind(&run.run_id)
                    .bind(kind.name())
                    .bind(cut as i32)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        if feed == Feed::Steps {
            let total: i64 = {
                let mut sizes: Vec<i64> = before.iter().map(|s| s.n).collect();
                for (at, this, _) in writes {
                    if *at < sizes.len() {
                        sizes[*at] = this.n;
                    } else {
                        sizes.push(this.n);
                    }
                }
                if let Some(cut) = cut {
                    sizes.truncate(cut);
                }
                sizes.iter().sum()
            };
            sqlx::query(
                "UPDATE runs SET steps = $2,
                    newest_step = (SELECT max(last_step) FROM step_chunks WHERE run_id = $1 AND col = 'step'),
                    updated_at = now()
                 WHERE run_id = $1",
            )
            .bind(&run.run_id)
            .bind(total)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE nodes SET last_seen = now() WHERE node = $1")
            .bind(&self.node)
            .execute(&mut *tx)
            .await?;
        // Last: the position row stays locked from here to the commit (see the migration).
        let (pos_last, epoch): (i64, i64) = sqlx::query_as(
            "UPDATE feed_positions SET pos = pos + $1, epoch = epoch + $2::int
             RETURNING pos, epoch",
        )
        .bind(batch.records)
        .bind(i32::from(batch.rewrote))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO batches (run_id, node, feed, after_step, newest_step, records, pos_last, rewrote)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&run.run_id)
        .bind(&self.node)
        .bind(feed_name(feed))
        .bind(batch.after_step)
        .bind(batch.newest_step)
        .bind(batch.records)
        .bind(pos_last)
        .bind(batch.rewrote)
        .execute(&mut *tx)
        .await?;
        let note = serde_json::json!({
            "run_id": run.run_id, "feed": feed_name(feed), "newest_step": batch.newest_step,
            "pos": pos_last, "epoch": epoch,
        });
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(note.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn feed_name(feed: Feed) -> &'static str {
    match feed {
        Feed::Steps => "steps",
        Feed::Records(kind) => kind.name(),
    }
}

fn sent_chunks(chunks: &[(i32, i64, i64, i32)]) -> Vec<Sent> {
    chunks
        .iter()
        .map(|&(_, first_step, last_step, n)| Sent {
            first_step,
            last_step,
            n: n.into(),
            digest: 0,
        })
        .collect()
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    // Our own types always serialize; NaN becomes null as in every answer.
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Records of one kind with their steps, as JSON.
fn records<T: Serialize>(rows: Vec<T>, step: impl Fn(&T) -> i64) -> Vec<(i64, String)> {
    rows.iter()
        .map(|r| {
            (
                step(r),
                serde_json::to_string(r).unwrap_or_else(|_| "null".into()),
            )
        })
        .collect()
}

/// A page read from the sources.
enum Page {
    Steps(Vec<Step>),
    Records(Vec<(i64, String)>),
}

impl Page {
    fn len(&self) -> usize {
        match self {
            Self::Steps(v) => v.len(),
            Self::Records(v) => v.len(),
        }
    }

    fn keys(&self) -> Vec<i64> {
        match self {
            Self::Steps(v) => v.iter().map(|s| s.step).collect(),
            Self::Records(v) => v.iter().map(|(s, _)| *s).collect(),
        }
    }

    fn encode(&self, range: std::ops::Range<usize>) -> Chunk {
        match self {
            Self::Steps(v) => Chunk::Steps {
                columns: encode_steps(&v[range.clone()]),
                last_step: v[range.end - 1].step,
            },
            Self::Records(v) => {
                let part = &v[range];
                let mut json = String::from("[");
                for (i, (_, r)) in part.iter().enumerate() {
                    if i > 0 {
                        json.push(',');
                    }
                    json.push_str(r);
                }
                json.push(']');
                Chunk::Records {
                    json,
                    last_step: part[part.len() - 1].0,
                }
            }
        }
    }
}

/// One page's changes to a feed, written in one transaction.
#[derive(Default)]
struct Batch {
    /// Chunks to write, by their place in the run.
    writes: Vec<(usize, Sent, Chunk)>,
    /// Chunks from this place on are dropped.
    cut: Option<usize>,
    /// The feed's newest step before, and after.
    after_step: Option<i64>,
    newest_step: Option<i64>,
    /// Records after `after_step`: what the live feed has not had.
    records: i64,
    /// Records already shipped were changed.
    rewrote: bool,
    /// The feed is shipped again from the start: what PostgreSQL held of it goes first.
    restart: bool,
}

/// One chunk, encoded for its table.
enum Chunk {
    Steps {
        columns: Vec<ColumnChunk>,
        last_step: i64,
    },
    Records {
        json: String,
        last_step: i64,
    },
}

impl Chunk {
    fn digest(&self) -> u64 {
        let mut h = DefaultHasher::new();
        match self {
            Self::Steps { columns, .. } => columns.iter().for_each(|c| c.data.hash(&mut h)),
            Self::Records { json, .. } => json.hash(&mut h),
        }
        h.finish()
    }
}
