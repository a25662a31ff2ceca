//! Where the compare cache's long columns keep their values (`analysis::spill`): a file per
//! column in the temporary directory, removed from the directory as soon as it is open, so
//! it is gone with the column or the process, whatever way either ends. The operating
//! system's page cache keeps what is read often; the dashboard's memory does not.

#![allow(unsafe_code)]

use crate::analysis::spill::{Spill, Spiller};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A column's values in an unlinked file, eight native-endian bytes each.
struct FileSpill(File);

/// The bytes of `values`, as they lie in memory.
fn bytes(values: &[f64]) -> &[u8] {
    // SAFETY: an f64 is eight initialised bytes with no padding; u8 has alignment 1 and the
    // length covers exactly the slice.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

/// The bytes of `values`, writable: a read lands in the values without a copy.
fn bytes_mut(values: &mut [f64]) -> &mut [u8] {
    // SAFETY: as in `bytes`; and every bit pattern is a valid f64, so whatever is written
    // through the bytes leaves valid values.
    unsafe {
        std::slice::from_raw_parts_mut(
            values.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(values),
        )
    }
}

impl Spill for FileSpill {
    fn write(&mut self, from: usize, values: &[f64]) -> std::io::Result<()> {
        self.0.write_all_at(bytes(values), (from * 8) as u64)
    }

    fn read(&self, from: usize, out: &mut [f64]) -> std::io::Result<()> {
        self.0.read_exact_at(bytes_mut(out), (from * 8) as u64)
    }
}

/// Writes `values` to `file` at index `from` (eight native-endian bytes a value).
pub fn write_at(file: &File, from: usize, values: &[f64]) -> std::io::Result<()> {
    file.write_all_at(bytes(values), (from * 8) as u64)
}

/// Fills `out` with the values of `file` from index `from` on.
pub fn read_at(file: &File, from: usize, out: &mut [f64]) -> std::io::Result<()> {
    file.read_exact_at(bytes_mut(out), (from * 8) as u64)
}

/// A kept column's spill (`server::kept`): its first `len` values in the kept file, which
/// is only read, and those spilled after it was taken up in a new unlinked file.
struct KeptSpill {
    kept: File,
    len: usize,
    more: Option<Box<dyn Spill>>,
}

impl Spill for KeptSpill {
    fn write(&mut self, from: usize, values: &[f64]) -> std::io::Result<()> {
        let at = from.checked_sub(self.len).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "a kept value rewritten")
        })?;
        if self.more.is_none() {
            self.more = Some(in_temp_dir()()?);
        }
        self.more.as_mut().expect("made above").write(at, values)
    }

    fn read(&self, from: usize, out: &mut [f64]) -> std::io::Result<()> {
        let kept = self.len.saturating_sub(from).min(out.len());
        let (below, above) = out.split_at_mut(kept);
        read_at(&self.kept, from, below)?;
        if above.is_empty() {
            return Ok(());
        }
        let more = self.more.as_deref().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end")
        })?;
        more.read(from + kept - self.len, above)
    }
}

/// The spill of a column taken up from `kept`, whose first `len` values it holds.
pub fn kept(kept: File, len: usize) -> Box<dyn Spill> {
    Box::new(KeptSpill {
        kept,
        len,
        more: None,
    })
}

/// Spills in `dir`: each a new file, unlinked once open.
pub fn in_dir(dir: PathBuf) -> Spiller {
    static MADE: AtomicU64 = AtomicU64::new(0);
    Arc::new(move || {
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("hydra-dashboard-{}-{n}.values", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        Ok(Box::new(FileSpill(file)) as Box<dyn Spill>)
    })
}

/// Spills in the system's temporary directory.
pub fn in_temp_dir() -> Spiller {
    in_dir(std::env::temp_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_as_written_and_leave_no_file() {
        let dir = std::env::temp_dir().join(format!("hydra-test-spill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut spill = in_dir(dir.clone())().unwrap();
        let values = [1.5, f64::NAN, f64::INFINITY, -0.0, 1e-300, 2.0];
        spill.write(0, &values[..4]).unwrap();
        spill.write(4, &values[4..]).unwrap();
        let mut out = [0.0; 3];
        spill.read(3, &mut out).unwrap();
        assert_eq!(out.map(f64::to_bits), [-0.0, 1e-300, 2.0].map(f64::to_bits));
        spill.read(1, &mut out[..1]).unwrap();
        assert!(out[0].is_nan());
        assert!(spill.read(5, &mut out).is_err(), "past the end");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "unlinked");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_kept_spill_reads_its_file_and_spills_what_follows_elsewhere() {
        let dir = std::env::temp_dir().join(format!("hydra-test-kept-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("column.values");
        let file = File::create(&path).unwrap();
        write_at(&file, 0, &[0.0, 1.0, 2.0, 3.0, 4.0]).unwrap();
        drop(file);
        let mut spill = kept(File::open(&path).unwrap(), 4);
        assert!(
            spill.write(3, &[9.0]).is_err(),
            "the kept values are only read"
        );
        spill.write(4, &[40.0, 50.0]).unwrap();
        let mut out = [0.0; 5];
        spill.read(1, &mut out).unwrap();
        assert_eq!(out, [1.0, 2.0, 3.0, 40.0, 50.0]);
        assert!(spill.read(5, &mut out[..2]).is_err(), "past the end");
        let mut on_disk = [0.0; 5];
        read_at(&File::open(&path).unwrap(), 0, &mut on_disk).unwrap();
        assert_eq!(
            on_disk,
            [0.0, 1.0, 2.0, 3.0, 4.0],
            "the kept file is unchanged"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
