//! Runs held for comparing, kept in the state directory between servers: a fresh server
//! asked to compare twenty long runs takes up what the last one made — each run's steps,
//! pyramids, spikes and clock, and its values in a file per column — instead of reading
//! twenty million rows through the two connections it keeps to the trainer's file (about
//! half a second a run). A kept run is taken up only for the same run record and step span, and only
//! after the compare cache has checked a sample of its steps against the source
//! (`compare_cache::agrees`); anything else — another version's file, a damaged one, a run
//! that changed — is read from the source as before. Nothing here ever touches the
//! trainer's files.
//!
//! `{state_dir}/compared/{run}-{digest}.held`: a header — magic, then the length and
//! checksum of a label (the identity and which metric is in which values file) and of the
//! frozen run — then the two; beside it `{run}-{digest}.{nonce}.{metric}.values`, eight
//! bytes a value. The label comes apart from the megabytes after it, so asking whether a
//! run is kept reads a few hundred bytes. A header is written to a temporary name and
//! renamed, after its values files, so a reader sees a whole one or the one before; the
//! values files it replaces are removed after.

use super::digest;
use crate::analysis::compared::{ComparedColumns, Frozen};
use crate::analysis::spill::Values;
use crate::model::{Metric, Run, TrainingState};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The file format; a header of another is read from the source again.
const MAGIC: &[u8; 8] = b"HYDKEPT2";
/// Magic, then the label's length and checksum, then the frozen run's.
const HEAD: usize = 40;
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

/// What a kept run is, apart from its data.
#[derive(serde::Serialize, serde::Deserialize)]
struct Label {
    identity: String,
    /// Each column's metric (its API name) and values file, in the frozen column order.
    columns: Vec<(String, String)>,
}

impl Label {
    /// Whether this is the run kept for `identity` with every metric of `metrics`.
    fn holds(&self, identity: &str, metrics: &[Metric]) -> bool {
        self.identity == identity
            && metrics
                .iter()
                .all(|m| self.columns.iter().any(|(name, _)| name == m.name()))
    }
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
        let (label, frozen) = read_header(&path, true).ok()??;
        let frozen = frozen?;
        let names: Vec<&str> = label.columns.iter().map(|(m, _)| m.as_str()).collect();
        let kept = frozen.metrics()?;
        if !label.holds(identity, metrics)
            || names != kept.iter().map(|m| m.name()).collect::<Vec<_>>()
        {
            return None;
        }
        let n = frozen.steps().len();
        let mut values = Vec::new();
        for ((_, file), spilled) in label.columns.iter().zip(frozen.spilled()) {
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
        ComparedColumns::thaw(frozen, values)
    }

    /// Whether the run is kept for `identity` with every metric of `metrics`, as far as its
    /// label says: [`KeptRuns::load`] checks the rest when it is taken up.
    pub fn holds(&self, run_id: &str, identity: &str, metrics: &[Metric]) -> bool {
        let path = self.dir.join(format!("{}.held", name(run_id)));
        read_header(&path, false)
            .ok()
            .flatten()
            .is_some_and(|(label, _)| label.holds(identity, metrics))
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
        let label = Label {
            identity,
            columns: metrics
                .iter()
                .map(|m| m.name().to_string())
                .zip(files.iter().cloned())
                .collect(),
        };
        let label = postcard::to_stdvec(&label).map_err(std::io::Error::other)?;
        let frozen = postcard::to_stdvec(&frozen).map_err(std::io::Error::other)?;
        let path = self.dir.join(format!("{name}.held"));
        let temporary = self.dir.join(format!("{name}.{nonce}.held-new"));
        let mut out = std::io::BufWriter::new(File::create(&temporary)?);
        out.write_all(MAGIC)?;
        for part in [&label, &frozen] {
            out.write_all(&(part.len() as u64).to_le_bytes())?;
            out.write_all(&digest::checksum(part).to_le_bytes())?;
        }
        out.write_all(&label)?;
        out.write_all(&frozen)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
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

/// A file name for the run: its id as far as it is safe in one, told apart by a digest
/// (no `.`: the name is what comes before the first in every file of the run).
fn name(run_id: &str) -> String {
    digest::file_name(run_id, "", 60, run_id)
}

/// The label at `path`, and its frozen run when `whole`; `None` when there is none, and
/// for a damaged, cut-short or foreign one (it is read from the source again).
fn read_header(path: &Path, whole: bool) -> std::io::Result<Option<(Label, Option<Frozen>)>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut head = [0u8; HEAD];
    if file.read_exact(&mut head).is_err() || &head[..8] != MAGIC {
        return Ok(None);
    }
    let word = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8 bytes"));
    let (label_len, label_sum, frozen_len, frozen_sum) = (word(8), word(16), word(24), word(32));
    let whole_len = (HEAD as u64)
        .checked_add(label_len)
        .and_then(|n| n.checked_add(frozen_len));
    if whole_len != Some(file.metadata()?.len()) {
        return Ok(None);
    }
    let mut read = |len: u64, sum: u64| -> std::io::Result<Option<Vec<u8>>> {
        let mut bytes = vec![0; len as usize];
        file.read_exact(&mut bytes)?;
        Ok((digest::checksum(&bytes) == sum).then_some(bytes))
    };
    let Some(label) = read(label_len, label_sum)? else {
        return Ok(None);
    };
    let Ok(label) = postcard::from_bytes::<Label>(&label) else {
        return Ok(None);
    };
    if !whole {
        return Ok(Some((label, None)));
    }
    let Some(frozen) = read(frozen_len, frozen_sum)? else {
        return Ok(None);
    };
    Ok(postcard::from_bytes(&frozen)
        .ok()
        .map(|frozen| (label, Some(frozen))))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RunConfig, Step};

    fn columns(n: i64) -> ComparedColumns {
        let mut c = ComparedColumns::new(&RunConfig::Missing, &[Metric::LossTotal, Metric::Lr]);
        for i in 1..=n {
            c.push(&Step {
                step: i * 10,
                loss_total: Some(if i == 7 { f64::NAN } else { 4.0 / i as f64 }),
                lr: Some(1e-4 * i as f64),
                ..Default::default()
            });
        }
        c.index();
        c
    }

    /// A state directory of its own, removed when the test ends.
    struct StateDir(PathBuf);

    impl StateDir {
        fn new(test: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("hydra-kept-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Self(dir)
        }
    }

    impl Drop for StateDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_kept_run_is_taken_up_for_its_identity_and_metrics_only() {
        let state = StateDir::new("identity");
        let kept = KeptRuns::new(&state.0);
        let held = columns(1000);
        kept.save("run/1", "A".into(), &held).unwrap();
        let loss = [Metric::LossTotal];
        assert!(kept.holds("run/1", "A", &loss));
        assert!(kept.holds("run/1", "A", &[Metric::Lr, Metric::LossTotal]));
        assert!(!kept.holds("run/1", "A", &[Metric::GradNorm]));
        assert!(!kept.holds("run/1", "B", &loss));
        assert!(!kept.holds("run_1", "A", &loss));
        assert!(kept.load("run/1", "B", &loss).is_none());
        assert!(kept.load("run/1", "A", &[Metric::GradNorm]).is_none());
        let back = kept.load("run/1", "A", &loss).unwrap();
        assert_eq!(back.steps(), held.steps());
        for i in [0, 6, 999] {
            let (a, b) = (
                back.values(Metric::LossTotal).unwrap().get(i).unwrap(),
                held.values(Metric::LossTotal).unwrap().get(i).unwrap(),
            );
            assert!(a == b || a.is_nan() && b.is_nan(), "step {i}: {a} vs {b}");
        }
    }

    #[test]
    fn a_damaged_header_is_not_taken_up_though_its_label_may_still_be_read() {
        let state = StateDir::new("damaged");
        let kept = KeptRuns::new(&state.0);
        kept.save("r", "A".into(), &columns(500)).unwrap();
        let header = state.0.join("compared").join(format!("{}.held", name("r")));
        let whole = std::fs::read(&header).unwrap();
        let loss = [Metric::LossTotal];

        // A byte of the frozen run changed: the label still says what is kept (asking is
        // cheap), taking it up is refused.
        let mut damaged = whole.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 0xff;
        std::fs::write(&header, &damaged).unwrap();
        assert!(kept.holds("r", "A", &loss));
        assert!(kept.load("r", "A", &loss).is_none());

        // Cut short, or of another format: neither.
        std::fs::write(&header, &whole[..whole.len() / 2]).unwrap();
        assert!(!kept.holds("r", "A", &loss));
        assert!(kept.load("r", "A", &loss).is_none());
        let mut foreign = whole.clone();
        foreign[..8].copy_from_slice(b"HYDKEPT1");
        std::fs::write(&header, &foreign).unwrap();
        assert!(!kept.holds("r", "A", &loss));

        // Whole again: taken up.
        std::fs::write(&header, &whole).unwrap();
        assert_eq!(kept.load("r", "A", &loss).unwrap().len(), 500);
    }
}
