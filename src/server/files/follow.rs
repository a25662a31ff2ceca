//! Following the trainer's files as they grow, reading only what is new: a log from the
//! offset read last; a diagnostics file, rewritten whole every 500 steps, from where its
//! last complete record ended, once the bytes before that point are seen unchanged (the
//! trainer writes the same list again, longer). What cannot be read yet — a file cut short
//! mid-rewrite, a line without its newline — is left for the next look; what was read is
//! never taken back.

use super::diagnostics::{split_records, Record};
use super::log::{line_time, parse_line, LogLine};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The most read from one file in one look: a long file is read over several.
const READ_AT_MOST: u64 = 64 << 20;
/// A "line" longer than this is not one of the trainer's: it is skipped, so a log of
/// other text without newlines cannot fill memory.
const LONGEST_LINE: usize = 1 << 20;
/// Bytes before the read part of a diagnostics file compared on each rewrite.
const CHECKED: u64 = 4096;

/// A log line as read, with its time (ISO 8601, local, no zone) when it has one.
pub type TimedLine = (LogLine, Option<String>);

/// Where a log was read to.
#[derive(Debug, Default)]
pub struct LogFollow {
    offset: u64,
    /// The start of a line whose newline has not been written yet.
    partial: Vec<u8>,
    /// The partial line is longer than any of the trainer's: skip to its end.
    skipping: bool,
}

impl LogFollow {
    /// Whether the log was read to `len` bytes.
    pub fn read_to(&self, len: u64) -> bool {
        self.offset >= len
    }

    /// The complete lines written since the last look, parsed, each with its time; `None`
    /// when the file is shorter than what was read (replaced or truncated: read it anew).
    pub fn read(&mut self, path: &Path, len: u64) -> std::io::Result<Option<Vec<TimedLine>>> {
        if len < self.offset {
            return Ok(None);
        }
        let mut lines = Vec::new();
        if len == self.offset {
            return Ok(Some(lines));
        }
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.take((len - self.offset).min(READ_AT_MOST))
            .read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        let mut rest = &bytes[..];
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            let piece = &rest[..end];
            rest = &rest[end + 1..];
            if self.skipping {
                self.skipping = false;
                self.partial.clear();
                continue;
            }
            let line: Vec<u8> = if self.partial.is_empty() {
                piece.to_vec()
            } else {
                let mut l = std::mem::take(&mut self.partial);
                l.extend_from_slice(piece);
                l
            };
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches('\r');
            let (parsed, time) = (parse_line(text), line_time(text));
            // A line that carries nothing is only a sign of life: of a run of them only the
            // newest time is kept, so a log of other text costs nothing per line.
            match (parsed, lines.last_mut()) {
                (LogLine::Other, Some((LogLine::Other, newest))) => {
                    if time.is_some() {
                        *newest = time;
                    }
                }
                (parsed, _) => lines.push((parsed, time)),
            }
        }
        if !self.skipping {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > LONGEST_LINE {
                self.partial.clear();
                self.skipping = true;
            }
        }
        Ok(Some(lines))
    }
}

/// How far a diagnostics file was read.
#[derive(Debug, Default)]
pub struct DiagFollow {
    /// Where the last complete record read ends (0: nothing read yet).
    end: u64,
    /// The bytes just before `end` and the file's first bytes, as read.
    before_end: Vec<u8>,
    head: Vec<u8>,
}

/// What one look at a diagnostics file found.
#[derive(Debug)]
pub enum DiagLook {
    /// Records after those read before (maybe none).
    New(Vec<Record>),
    /// The file holds another list now (its start or the part read before differs, and it
    /// is complete): read it anew.
    Replaced,
}

impl DiagFollow {
    pub fn look(&mut self, path: &Path, len: u64) -> std::io::Result<DiagLook> {
        if len < self.end {
            // Being rewritten (truncated, then written in pieces): wait for it.
            return Ok(DiagLook::New(Vec::new()));
        }
        let mut file = File::open(path)?;
        if self.end > 0 {
            let head = read_at(&mut file, 0, self.head.len() as u64)?;
            let from = self.end - self.before_end.len() as u64;
            let before = read_at(&mut file, from, self.before_end.len() as u64)?;
            if head != self.head || before != self.before_end {
                // Mid-rewrite with other bytes, or another list: only a complete file says.
                let tail = read_at(&mut file, len.saturating_sub(16), 16)?;
                let closed = tail.iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b']');
                return Ok(if closed {
                    DiagLook::Replaced
                } else {
                    DiagLook::New(Vec::new())
                });
            }
        }
        let mut records = Vec::new();
        let mut at = self.end;
        let mut inside = self.end > 0;
        // Read what follows in pieces, keeping a record cut by a piece's end for the next.
        let mut carry: Vec<u8> = Vec::new();
        let mut pos = self.end;
        while pos < len {
            let want = (len - pos).min(8 << 20);
            let mut piece = read_at(&mut file, pos, want)?;
            if piece.is_empty() {
                break;
            }
            pos += piece.len() as u64;
            let mut buf = std::mem::take(&mut carry);
            buf.append(&mut piece);
            let split = split_records(&buf, inside);
            for (a, b) in &split.records {
                if let Some(r) = Record::parse(&buf[*a..*b]) {
                    records.push(r);
                }
            }
            if split.end > 0 {
                inside = true;
                at += split.end as u64;
                carry = buf[split.end..].to_vec();
            } else {
                carry = buf;
            }
            if split.closed || records.len() > 2_000_000 {
                break;
            }
        }
        if at > self.end {
            if self.end == 0 {
                self.head = read_at(&mut file, 0, CHECKED.min(at))?;
            }
            let keep = CHECKED.min(at);
            self.before_end = read_at(&mut file, at - keep, keep)?;
            self.end = at;
        }
        Ok(DiagLook::New(records))
    }
}

fn read_at(file: &mut File, at: u64, len: u64) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(at))?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hydra-follow-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    const STEP: &str =
        "2026-01-09 17:28:53 - HYDRA - INFO - Step 100/1000 | Loss: 2.5000 (EMA: 2) | LR: 1.00e-04";

    #[test]
    fn a_log_is_read_from_where_it_was_left_a_line_at_a_time() {
        let path = temp("training_x.log");
        let mut f = File::create(&path).unwrap();
        write!(f, "{STEP}\n{}", &STEP[..40]).unwrap();
        let mut follow = LogFollow::default();
        let lines = follow.read(&path, len(&path)).unwrap().unwrap();
        assert_eq!(lines.len(), 1, "the cut line waits for its newline");
        assert_eq!(lines[0].1.as_deref(), Some("2026-01-09T17:28:53"));
        writeln!(f, "{}", &STEP[40..]).unwrap();
        let lines = follow.read(&path, len(&path)).unwrap().unwrap();
        assert!(matches!(lines[0].0, LogLine::Step(ref s) if s.step == 100 && s.loss == Some(2.5)));
        assert!(follow.read(&path, len(&path)).unwrap().unwrap().is_empty());
        // Truncated: the caller reads it anew.
        File::create(&path).unwrap();
        assert!(follow.read(&path, 0).unwrap().is_none());
    }

    #[test]
    fn a_line_longer_than_any_of_the_trainers_is_skipped_in_bounded_memory() {
        let path = temp("training_long.log");
        let mut f = File::create(&path).unwrap();
        let junk = vec![b'x'; 3 << 20];
        f.write_all(&junk).unwrap();
        let mut follow = LogFollow::default();
        assert!(follow.read(&path, len(&path)).unwrap().unwrap().is_empty());
        assert!(follow.partial.len() <= LONGEST_LINE);
        write!(f, "\n{STEP}\n").unwrap();
        let lines = follow.read(&path, len(&path)).unwrap().unwrap();
        assert_eq!(lines.len(), 1);
        assert!(matches!(lines[0].0, LogLine::Step(_)));
    }

    #[test]
    fn other_lines_cost_nothing_but_the_newest_time() {
        let path = temp("training_other.log");
        let mut f = File::create(&path).unwrap();
        for i in 0..10_000 {
            writeln!(
                f,
                "2026-01-09 17:28:{:02} - HYDRA - INFO - Batch sources …",
                i % 60
            )
            .unwrap();
        }
        f.write_all(b"\xff\xfe garbage\n").unwrap();
        writeln!(f, "{STEP}").unwrap();
        writeln!(
            f,
            "2026-01-09 18:00:00 - HYDRA - WARNING - [DIAG] something"
        )
        .unwrap();
        let lines = LogFollow::default()
            .read(&path, len(&path))
            .unwrap()
            .unwrap();
        assert_eq!(lines.len(), 3, "a run of other lines is one");
        assert_eq!(
            lines[0].1.as_deref(),
            Some("2026-01-09T17:28:39"),
            "its newest time"
        );
        assert!(matches!(lines[1].0, LogLine::Step(_)));
        assert_eq!(lines[2].1.as_deref(), Some("2026-01-09T18:00:00"));
    }

    fn list(steps: std::ops::Range<i64>) -> String {
        let records: Vec<String> = steps
            .map(|s| {
                format!(
                    "  {{\n    \"step\": {s},\n    \"losses\": {{\"total\": NaN}}\n  }}",
                    s = s * 100
                )
            })
            .collect();
        format!("[\n{}\n]", records.join(",\n"))
    }

    fn steps(look: DiagLook) -> Vec<i64> {
        match look {
            DiagLook::New(r) => r.iter().map(|r| r.step.unwrap()).collect(),
            DiagLook::Replaced => panic!("replaced"),
        }
    }

    #[test]
    fn a_rewritten_diagnostics_file_is_read_from_its_new_records_on() {
        let path = temp("diagnostics_x.json");
        std::fs::write(&path, list(1..4)).unwrap();
        let mut follow = DiagFollow::default();
        assert_eq!(
            steps(follow.look(&path, len(&path)).unwrap()),
            [100, 200, 300]
        );
        // Rewritten, longer: only the new records.
        std::fs::write(&path, list(1..6)).unwrap();
        assert_eq!(steps(follow.look(&path, len(&path)).unwrap()), [400, 500]);
        // Caught mid-rewrite: empty, then cut short — nothing lost, nothing repeated.
        std::fs::write(&path, "").unwrap();
        assert!(steps(follow.look(&path, 0).unwrap()).is_empty());
        let whole = list(1..8);
        let cut = &whole[..whole.len() - 30];
        std::fs::write(&path, cut).unwrap();
        assert_eq!(steps(follow.look(&path, len(&path)).unwrap()), [600]);
        std::fs::write(&path, &whole).unwrap();
        assert_eq!(steps(follow.look(&path, len(&path)).unwrap()), [700]);
        // Another list altogether, complete: read anew.
        std::fs::write(&path, list(50..60)).unwrap();
        assert!(matches!(
            follow.look(&path, len(&path)).unwrap(),
            DiagLook::Replaced
        ));
    }

    #[test]
    fn a_big_file_is_read_in_pieces_without_losing_a_record_at_their_edges() {
        let path = temp("diagnostics_big.json");
        let text = list(1..200_000);
        assert!(text.len() > 8 << 20, "more than one piece");
        std::fs::write(&path, &text).unwrap();
        let mut follow = DiagFollow::default();
        let got = steps(follow.look(&path, len(&path)).unwrap());
        assert_eq!(got.len(), 199_999);
        assert!(got.windows(2).all(|w| w[1] == w[0] + 100));
    }
}
