//! What the watcher has said, kept in the dashboard's own state directory
//! (`{state_dir}/alerts/{watched}/`, one directory per directory of runs watched; never the
//! trainer's files), so a restart neither tells an alert twice nor misses one that happened
//! while it was down:
//!
//! - `journal.jsonl`, appended to: every alert change the watcher came across (its key),
//!   with the message when it was to be delivered, and each delivery that succeeded. A line
//!   cut short by a crash is skipped when read.
//! - `watermarks.json`, replaced whole (written aside, then renamed): per run, the newest step
//!   watched. A run with a watermark was watched before: what its history holds beyond what
//!   the journal knows happened while the dashboard was down, and is told. A run without one
//!   is new to this directory: its history is listed, not told.

use crate::model::{Alert, AlertChange, AlertKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What identifies an alert change across restarts: the same history gives the same keys.
/// A run finishes once: its `finished` is known by the run alone (the step it is said at is
/// the newest read when it was judged, which a later read may put further on).
pub fn key(change: AlertChange, a: &Alert) -> String {
    let step = match a.kind {
        AlertKind::Finished => "end".to_string(),
        _ => a.step.to_string(),
    };
    format!(
        "{}\u{1f}{}\u{1f}{step}\u{1f}{}",
        a.run_id,
        a.kind.name(),
        change.name()
    )
}

/// One journal line.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    /// A change the watcher came across; `message` when it was to be delivered.
    Known {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<Message>,
    },
    /// `key` reached the endpoint `to` (a digest of its URL, never the URL: it is a secret).
    Delivered { key: String, to: String },
}

/// A change to be delivered, as kept until it was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub change: AlertChange,
    pub alert: Alert,
    /// When it was first to be delivered, in seconds since 1970: retries stop an hour on.
    pub at: f64,
}

/// The journal and the watermarks, read at start and written as the watcher goes.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    known: HashSet<String>,
    /// Messages not yet delivered to every endpoint, by key.
    outbox: HashMap<String, (Message, HashSet<String>)>,
    watermarks: BTreeMap<String, i64>,
    saved: BTreeMap<String, i64>,
    /// When the dashboard that wrote this memory last watched, `(utc, local)` seconds (as
    /// `local_time::now` gives them): a run that began after it began while no one watched.
    alive: Option<(f64, f64)>,
    /// Why it cannot be written, once said (the watcher carries on without memory).
    broken: Option<String>,
    /// The file ends in a line cut short: the next line starts on a line of its own.
    cut: bool,
}

impl Journal {
    /// Reads what `dir` remembers; nothing when it holds nothing yet.
    pub fn open(dir: &Path) -> Self {
        let dir = dir.to_path_buf();
        let mut journal = Self {
            known: HashSet::new(),
            outbox: HashMap::new(),
            watermarks: BTreeMap::new(),
            saved: BTreeMap::new(),
            broken: None,
            cut: false,
            alive: None,
            dir,
        };
        if let Ok(text) = std::fs::read_to_string(journal.dir.join("journal.jsonl")) {
            journal.cut = !text.is_empty() && !text.ends_with('\n');
            for line in text.lines() {
                match serde_json::from_str::<Line>(line) {
                    Ok(Line::Known { key, message }) => {
                        if let Some(m) = message {
                            journal.outbox.insert(key.clone(), (m, HashSet::new()));
                        }
                        journal.known.insert(key);
                    }
                    Ok(Line::Delivered { key, to }) => {
                        if let Some((_, done)) = journal.outbox.get_mut(&key) {
                            done.insert(to);
                        }
                    }
                    Err(_) => {} // cut short by a crash mid-write
                }
            }
        }
        if let Ok(text) = std::fs::read_to_string(journal.dir.join("watermarks.json")) {
            #[derive(Deserialize)]
            struct Saved {
                runs: BTreeMap<String, i64>,
                alive: Option<(f64, f64)>,
            }
            if let Ok(saved) = serde_json::from_str::<Saved>(&text) {
                journal.watermarks = saved.runs;
                journal.alive = saved.alive;
            }
            journal.saved = journal.watermarks.clone();
        }
        journal
    }

    /// When the dashboard that left this memory last watched, `(utc, local)`.
    pub fn last_alive(&self) -> Option<(f64, f64)> {
        self.alive
    }

    pub fn knows(&self, key: &str) -> bool {
        self.known.contains(key)
    }

    /// The newest step of `run_id` watched before, if it ever was.
    pub fn watermark(&self, run_id: &str) -> Option<i64> {
        self.watermarks.get(run_id).copied()
    }

    pub fn set_watermark(&mut self, run_id: &str, step: i64) {
        self.watermarks.insert(run_id.to_string(), step);
    }

    /// Notes a change the watcher came across, with the message when it is to be delivered.
    pub fn know(&mut self, key: String, message: Option<Message>) {
        if !self.known.insert(key.clone()) {
            return;
        }
        self.append(&Line::Known {
            key: key.clone(),
            message: message.clone(),
        });
        if let Some(m) = message {
            self.outbox.insert(key, (m, HashSet::new()));
        }
    }

    /// Notes that `key` reached endpoint `to`.
    pub fn delivered(&mut self, key: &str, to: &str) {
        if let Some((_, done)) = self.outbox.get_mut(key) {
            if done.insert(to.to_string()) {
                self.append(&Line::Delivered {
                    key: key.to_string(),
                    to: to.to_string(),
                });
            }
        }
    }

    /// Messages endpoint `to` has not had yet, oldest first: what a restart delivers again.
    pub fn undelivered(&self, to: &str) -> Vec<(String, Message)> {
        let mut left: Vec<(String, Message)> = self
            .outbox
            .iter()
            .filter(|(_, (_, done))| !done.contains(to))
            .map(|(k, (m, _))| (k.clone(), m.clone()))
            .collect();
        left.sort_by(|a, b| a.1.at.total_cmp(&b.1.at).then_with(|| a.0.cmp(&b.0)));
        left
    }

    /// Writes the watermarks when they moved: aside, then renamed over the old file, so a
    /// crash leaves the old or the new, never half.
    /// With the time now, `(utc, local)`, as the time this dashboard was last alive.
    pub fn save_watermarks(&mut self, now: (f64, f64)) {
        if self.watermarks == self.saved || self.broken.is_some() {
            return;
        }
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let aside = self.dir.join("watermarks.json.new");
            let saved = serde_json::json!({ "runs": self.watermarks, "alive": now });
            std::fs::write(&aside, serde_json::to_vec(&saved)?)?;
            std::fs::rename(&aside, self.dir.join("watermarks.json"))
        };
        match write() {
            Ok(()) => self.saved = self.watermarks.clone(),
            Err(e) => self.break_with(e),
        }
    }

    fn append(&mut self, line: &Line) {
        if self.broken.is_some() {
            return;
        }
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let mut text = if self.cut { vec![b'\n'] } else { Vec::new() };
            text.extend(serde_json::to_vec(line)?);
            text.push(b'\n');
            // One write of one line, appended: a crash can cut it short, never interleave.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("journal.jsonl"))?
                .write_all(&text)
        };
        match write() {
            Ok(()) => self.cut = false,
            Err(e) => self.break_with(e),
        }
    }

    fn break_with(&mut self, e: std::io::Error) {
        let why = format!(
            "cannot keep alerts in {}: {e}; a restart may tell some again",
            self.dir.display()
        );
        tracing::warn!("{why}");
        self.broken = Some(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(step: i64) -> Alert {
        Alert {
            run_id: "500m_a".into(),
            model_id: "500m".into(),
            kind: AlertKind::Nan,
            step,
            value: None,
            time: None,
            detail: "loss NaN".into(),
            resolved_step: None,
            resolved_time: None,
            resolved_detail: None,
        }
    }

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hydra-journal-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn what_was_known_delivered_and_watched_survives_a_restart() {
        let dir = temp("restart");
        let mut j = Journal::open(&dir);
        let (a, b) = (alert(100), alert(200));
        let (ka, kb) = (key(AlertChange::Raised, &a), key(AlertChange::Raised, &b));
        let message = |alert: &Alert, at| Message {
            change: AlertChange::Raised,
            alert: alert.clone(),
            at,
        };
        j.know(ka.clone(), Some(message(&a, 1.0)));
        j.know(kb.clone(), Some(message(&b, 2.0)));
        j.know("history".into(), None);
        j.delivered(&ka, "hook1");
        j.set_watermark("500m_a", 250);
        j.save_watermarks((1.0e9, 1.0e9 + 3600.0));

        let again = Journal::open(&dir);
        assert!(again.knows(&ka) && again.knows(&kb) && again.knows("history"));
        assert_eq!(again.watermark("500m_a"), Some(250));
        assert_eq!(again.watermark("500m_b"), None);
        assert_eq!(again.last_alive(), Some((1.0e9, 1.0e9 + 3600.0)));
        let left: Vec<String> = again
            .undelivered("hook1")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(left, vec![kb.clone()]);
        let left: Vec<String> = again
            .undelivered("hook2")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(left, vec![ka, kb], "oldest first");
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_skipped() {
        let dir = temp("cut");
        let mut j = Journal::open(&dir);
        j.know("whole".into(), None);
        let path = dir.join("journal.jsonl");
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"{\"known\":{\"key\":\"ha");
        std::fs::write(&path, text).unwrap();
        let mut again = Journal::open(&dir);
        assert!(again.knows("whole"));
        assert!(!again.knows("ha"));
        again.know("after".into(), None);
        let third = Journal::open(&dir);
        assert!(
            third.knows("whole") && third.knows("after"),
            "the next line is whole"
        );
    }

    #[test]
    fn a_directory_that_cannot_be_written_is_said_once_and_nothing_fails() {
        let blocker = temp("blocked");
        std::fs::write(&blocker, b"a file where the directory should be").unwrap();
        let mut j = Journal::open(&blocker);
        j.know("k".into(), None);
        j.set_watermark("r", 1);
        j.save_watermarks((0.0, 0.0));
        assert!(j.knows("k"), "still known in memory");
        assert!(j.broken.as_deref().unwrap().contains("cannot keep alerts"));
        let _ = std::fs::remove_file(&blocker);
    }
}
