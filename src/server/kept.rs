//! Runs held for comparing, kept in the state directory between servers: a fresh server
//! asked to compare twenty long runs takes up what the last one made — each run's steps,
//! pyramids, spikes and clock, and its values in a file per column — instead of reading
//! twenty million rows through the one connection it keeps to the trainer's file (seconds
//! a run). A kept run is taken up only for the same run record and step span, and only
//! after the compare cache has checked a sample of its steps against the source
//! (`compare_cache::agrees`); anything else — another version's file, a damaged one, a run
//! that changed — is read from the source as before. Nothing here ever touches the
//! trainer's files.
//!
//! `{state_dir}/compared/{run}-{digest}.held`: a header (magic, checksum, length) and the
//! frozen run; beside it `{run}-{digest}.{nonce}.{metric}.values`, eight bytes a value. A
//! header is written to a temporary name and renamed, after its values files, so a reader
//! sees a whole one or the one before; the values files it replaces are removed after.

use crate::analysis::compared::{ComparedColumns, Frozen};
use crate::analysis::spill::Values;
use crate::model::{Metric, Run, TrainingState};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The file format; a header of another is read from the source again.
const MAGIC: &[u8; 8] = b"HYDKEPT1";
/// Bytes the kept runs may take on disk; the least recently used go first.
pub const KEPT_BYTES: u64 = 4 << 30;
/// Runs shorter than this are read from the source in a moment: not worth a file.
pub const KEPT_FROM_STEPS: usize = crate::analysis::spill::SPILL_AT;
/// A values file without its header (a save cut short) is removed after this long.
const ORPHAN_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Clone)]
pub struct KeptRuns {
    dir: PathBuf,
    /// Held while a run is saved: one at a time, as each holds a copy of its run's steps and
    /// pyramids while it writes (twenty at once were 400 MB more at the peak).
    saving: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// What a kept run must still be to be taken up: its record as the source gives it (a run
/// that goes on training, resumes or is rewritten changes it) and the steps its records
/// can lie in. The judged state and last sign of life are left out: they move with the
/// clock, not the data.
pub fn identity(run: &Run, span: (i64, i64)) -> String {
    let mut record = run.clone();
    record.state = None;
    record.last_seen = None;
    serde_json::json!({ "run": record, "span": [span.0, span.1] }).to_string()
}

/// Whether a run is worth keeping: long, and done changing (a training run's next step
/// would make the kept one stale at once).
pub fn worth_keeping(run: &Run, steps: usize) -> bool {
    steps >= KEPT_FROM_STEPS && run.state != Some(TrainingState::Training)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    identity: String,
    /// Each column's values file, in the frozen column order.
    values: Vec<String>,
    frozen: Frozen,
}

impl KeptRuns {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("compared"),
            saving: Default::default(),
        }
    }

    /// A turn to save a run: see [`KeptRuns::saving`].
    pub async fn turn_to_save(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.saving.clone().lock_owned().await
    }

    /// The run kept for `identity` with at least `metrics`, taken up; `None` when there
    /// is none or it cannot be used. Its steps still have to be checked against the source.
    pub fn load(
        &self,
        run_id: &str,
        identity: &str,
        metrics: &[Metric],
    ) -> Option<ComparedColumns> {
        let path = self.dir.join(format!("{}.held", name(run_id)));
        let header = read_header(&path).ok()??;
        let kept = header.frozen.metrics()?;
        if header.identity != identity
            || !metrics.iter().all(|m| kept.contains(m))
            || header.values.len() != kept.len()
        {
            return None;
        }
        let n = header.frozen.steps().len();
        let mut values = Vec::new();
        for (file, spilled) in header.values.iter().zip(header.frozen.spilled()) {
            let file = File::open(self.dir.join(file)).ok()?;
            if file.metadata().ok()?.len() != (n * 8) as u64 || spilled > n {
                return None;
            }
            let mut tail = vec![0.0; n - spilled];
            super::spill::read_at(&file, spilled, &mut tail).ok()?;
            values.push(Values::resumed(
                super::spill::kept(file, spilled),
                spilled,
                tail,
            ));
        }
        ComparedColumns::thaw(header.frozen, values)
    }

    /// Whether the run is kept for `identity` with every metric of `metrics` (its values
    /// not checked: [`KeptRuns::load`] does that when it is taken up).
    pub fn holds(&self, run_id: &str, identity: &str, metrics: &[Metric]) -> bool {
        let path = self.dir.join(format!("{}.held", name(run_id)));
        read_header(&path).ok().flatten().is_some_and(|h| {
            h.identity == identity
                && h.frozen
                    .metrics()
                    .is_some_and(|kept| metrics.iter().all(|m| kept.contains(m)))
        })
    }

    /// Marks the run kept as used now: the last to go when the directory is pruned.
    pub fn used(&self, run_id: &str) {
        let path = self.dir.join(format!("{}.held", name(run_id)));
        let _ = File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(SystemTime::now()));
    }

    /// Keeps `columns` as the run with `identity`; what it replaces is removed, and the
    /// directory pruned to [`KEPT_BYTES`].
    pub fn save(
        &self,
        run_id: &str,
        identity: String,
        columns: &ComparedColumns,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let name = name(run_id);
        let frozen = columns.freeze();
        let metrics = frozen.metrics().unwrap_or_default();
        let nonce = format!(
            "{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let mut files = Vec::new();
        for m in &metrics {
            let file_name = format!("{name}.{nonce}.{}.values", m.name());
            let values = columns
                .values(*m)
                .ok_or_else(|| std::io::Error::other("no column"))?;
            write_values(&self.dir.join(&file_name), values)?;
            files.push(file_name);
        }
        let header = Header {
            identity,
            values: files.clone(),
            frozen,
        };
        let payload = postcard::to_stdvec(&header).map_err(std::io::Error::other)?;
        let path = self.dir.join(format!("{name}.held"));
        let temporary = self.dir.join(format!("{name}.{nonce}.held-new"));
        let mut out = File::create(&temporary)?;
        out.write_all(MAGIC)?;
        out.write_all(&checksum(&payload).to_le_bytes())?;
        out.write_all(&(payload.len() as u64).to_le_bytes())?;
        out.write_all(&payload)?;
        out.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        // The values files of the run kept before: readers that opened them keep them.
        for entry in std::fs::read_dir(&self.dir)?.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with(&format!("{name}."))
                && file.ends_with(".values")
                && !files.contains(&file)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        self.prune(KEPT_BYTES)
    }

    /// Removes the least recently used kept runs while they take more than `budget` bytes,
    /// and values files a cut-short save left behind.
    pub fn prune(&self, budget: u64) -> std::io::Result<()> {
        // (header name, last used, bytes with its values files)
        let mut runs: Vec<(String, SystemTime, u64)> = Vec::new();
        let mut values: Vec<(String, SystemTime, u64)> = Vec::new();
        for entry in std::fs::read_dir(&self.dir)?.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.metadata() else { continue };
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if let Some(stem) = file.strip_suffix(".held") {
                runs.push((stem.to_string(), used, meta.len()));
            } else if file.ends_with(".values") || file.ends_with(".held-new") {
                values.push((file, used, meta.len()));
            }
        }
        let run_of = |file: &str| file.split('.').next().unwrap_or_default().to_string();
        for (file, used, bytes) in &values {
            let run = runs.iter_mut().find(|r| r.0 == run_of(file));
            let orphan = run.is_none() || file.ends_with(".held-new");
            if orphan && used.elapsed().is_ok_and(|age| age > ORPHAN_AFTER) {
                let _ = std::fs::remove_file(self.dir.join(file));
            } else if let Some(run) = run {
                run.2 += bytes;
            }
        }
        runs.sort_by_key(|r| std::cmp::Reverse(r.1));
        let mut total = 0;
        for (stem, _, bytes) in runs {
            total += bytes;
            if total > budget {
                let _ = std::fs::remove_file(self.dir.join(format!("{stem}.held")));
                for (file, _, _) in values.iter().filter(|v| run_of(&v.0) == stem) {
                    let _ = std::fs::remove_file(self.dir.join(file));
                }
            }
        }
        Ok(())
    }
}

/// A file name for the run: its id as far as it is safe in one, told apart by a digest.
fn name(run_id: &str) -> String {
    let safe: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    format!("{safe}-{}", super::alerts::webhooks::digest(run_id))
}

/// The header at `path`; `None` when there is none, `Err`-free for a damaged or foreign
/// one (it is read from the source again).
fn read_header(path: &Path) -> std::io::Result<Option<Header>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut head = [0u8; 24];
    if file.read_exact(&mut head).is_err() || &head[..8] != MAGIC {
        return Ok(None);
    }
    let sum = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
    let len = u64::from_le_bytes(head[16..24].try_into().expect("8 bytes"));
    if file.metadata()?.len() != 24 + len {
        return Ok(None);
    }
    let mut payload = vec![0; len as usize];
    file.read_exact(&mut payload)?;
    if checksum(&payload) != sum {
        return Ok(None);
    }
    Ok(postcard::from_bytes(&payload).ok())
}

/// Writes every value of `values` to a new file at `path`.
fn write_values(path: &Path, values: &Values) -> std::io::Result<()> {
    let file = File::create(path)?;
    let mut result = Ok(());
    values.each_chunk(|w| {
        if result.is_ok() {
            result = super::spill::write_at(&file, w.offset, w.values);
        }
    })?;
    result?;
    file.sync_all()
}

/// A checksum of `bytes`, eight at a time: catches a header cut short or damaged, not an
/// adversary (the state directory is the dashboard's own).
fn checksum(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mix = |h: u64, x: u64| (h ^ x).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    let h = chunks.by_ref().fold(0xcbf2_9ce4_8422_2325_u64, |h, c| {
        mix(h, u64::from_le_bytes(c.try_into().expect("8 bytes")))
    });
    chunks
        .remainder()
        .iter()
        .fold(mix(h, bytes.len() as u64), |h, b| mix(h, u64::from(*b)))
}
