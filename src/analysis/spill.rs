//! A held column's values with the older ones kept outside memory: twenty runs of a million
//! steps, five metrics each, are 800 MB of values, more than a dashboard should hold. What
//! a query needs of them is its range (a zoom) or the ragged ends of its buckets (the whole
//! run, where the pyramid answers the middle), read back in one sequential read.
//!
//! Where the values go is the server's business ([`Spill`]); here they are only counted.
//! Whole pyramid blocks are written, so the values still in memory begin at a block: what
//! the pyramid needs to take in the next values.

use super::series::{Window, BLOCK};
use std::sync::Arc;

/// Values in memory before they are written out: half a megabyte a column.
pub const SPILL_AT: usize = 1 << 16;

/// Somewhere to keep a column's values, by index.
pub trait Spill: Send + Sync {
    /// Writes `values` at index `from` onwards.
    fn write(&mut self, from: usize, values: &[f64]) -> std::io::Result<()>;
    /// Fills `out` with the values from index `from` on.
    fn read(&self, from: usize, out: &mut [f64]) -> std::io::Result<()>;
}

/// Makes a new, empty [`Spill`] for a column.
pub type Spiller = Arc<dyn Fn() -> std::io::Result<Box<dyn Spill>> + Send + Sync>;

/// A column's values: `0..spilled` in the spill, the rest in memory.
#[derive(Default)]
pub struct Values {
    spill: Option<Box<dyn Spill>>,
    spilled: usize,
    tail: Vec<f64>,
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Values")
            .field("spilled", &self.spilled)
            .field("in_memory", &self.tail.len())
            .finish()
    }
}

impl Values {
    pub fn len(&self) -> usize {
        self.spilled + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, v: f64) {
        super::push_lean(&mut self.tail, v);
    }

    /// A column taken up again: values `0..spilled` in `spill`, `tail` after them. `spilled`
    /// must be a whole number of blocks, as [`Values::spill_some`] leaves it.
    pub fn resumed(spill: Box<dyn Spill>, spilled: usize, tail: Vec<f64>) -> Self {
        debug_assert!(spilled.is_multiple_of(BLOCK));
        Self {
            spill: Some(spill),
            spilled,
            tail,
        }
    }

    /// Values before this index are in the spill, the rest in memory.
    pub fn spilled(&self) -> usize {
        self.spilled
    }

    /// Value `i`.
    pub fn get(&self, i: usize) -> std::io::Result<f64> {
        if i >= self.spilled {
            return Ok(self.tail[i - self.spilled]);
        }
        let mut one = [0.0];
        self.spill().read(i, &mut one)?;
        Ok(one[0])
    }

    /// The values not written out yet: they begin at a block.
    pub fn in_memory(&self) -> Window<'_> {
        Window {
            offset: self.spilled,
            values: &self.tail,
        }
    }

    /// Values `a..b`: borrowed when all are in memory, else read into `scratch`, whose old
    /// contents are overwritten, not cleared first (zeroing eight megabytes before reading
    /// them over was a tenth of a new comparison's time).
    pub fn window<'a>(
        &'a self,
        a: usize,
        b: usize,
        scratch: &'a mut Vec<f64>,
    ) -> std::io::Result<Window<'a>> {
        let b = b.min(self.len());
        let a = a.min(b);
        if a >= self.spilled {
            return Ok(Window {
                offset: a,
                values: &self.tail[a - self.spilled..b - self.spilled],
            });
        }
        scratch.resize(b - a, 0.0);
        let from_spill = self.spilled.min(b) - a;
        self.spill().read(a, &mut scratch[..from_spill])?;
        let rest = b - a - from_spill;
        scratch[from_spill..].copy_from_slice(&self.tail[..rest]);
        Ok(Window {
            offset: a,
            values: scratch,
        })
    }

    /// Calls `f` with every value in order, a chunk at a time (a new smoothing weight).
    pub fn each_chunk(&self, f: impl FnMut(Window)) -> std::io::Result<()> {
        self.each_chunk_from(0, f)
    }

    /// As [`Values::each_chunk`], from value `start` on (the values in memory come whole).
    pub fn each_chunk_from(&self, start: usize, mut f: impl FnMut(Window)) -> std::io::Result<()> {
        let mut scratch = Vec::new();
        let mut a = start;
        while a < self.spilled {
            let b = (a + SPILL_AT).min(self.spilled);
            f(self.window(a, b, &mut scratch)?);
            a = b;
        }
        f(self.in_memory());
        Ok(())
    }

    /// Writes out the whole blocks in memory once there are [`SPILL_AT`] values, when a
    /// spiller is given. A failed write keeps them in memory: nothing is lost, and the next
    /// call tries again.
    pub fn spill_some(&mut self, spiller: Option<&Spiller>) {
        let Some(spiller) = spiller else { return };
        if self.tail.len() < SPILL_AT {
            return;
        }
        if self.spill.is_none() {
            match spiller() {
                Ok(spill) => self.spill = Some(spill),
                Err(_) => return,
            }
        }
        let whole = self.tail.len() / BLOCK * BLOCK;
        let spilled = self.spilled;
        if let Some(spill) = self.spill.as_mut() {
            if spill.write(spilled, &self.tail[..whole]).is_ok() {
                self.tail.drain(..whole);
                self.spilled += whole;
            }
        }
    }

    pub fn shrink_to_fit(&mut self) {
        self.tail.shrink_to_fit();
    }

    pub fn heap_bytes(&self) -> usize {
        self.tail.capacity() * 8
    }

    fn spill(&self) -> &dyn Spill {
        self.spill
            .as_deref()
            .expect("values were spilled, so there is a spill")
    }
}

/// A [`Spill`] in memory: what the tests spill to.
#[derive(Default)]
pub struct MemorySpill(pub Vec<f64>);

impl Spill for MemorySpill {
    fn write(&mut self, from: usize, values: &[f64]) -> std::io::Result<()> {
        self.0.resize(from + values.len(), 0.0);
        self.0[from..].copy_from_slice(values);
        Ok(())
    }

    fn read(&self, from: usize, out: &mut [f64]) -> std::io::Result<()> {
        let got = self.0.get(from..from + out.len()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end")
        })?;
        out.copy_from_slice(got);
        Ok(())
    }
}

/// A spiller to [`MemorySpill`]s.
pub fn in_memory() -> Spiller {
    Arc::new(|| Ok(Box::new(MemorySpill::default()) as Box<dyn Spill>))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_alike_from_the_spill_and_from_memory() {
        let spiller = in_memory();
        let mut v = Values::default();
        let n = 3 * SPILL_AT + 17;
        for i in 0..n {
            v.push(i as f64);
            v.spill_some(Some(&spiller));
        }
        assert_eq!(v.len(), n);
        assert!(v.spilled >= 2 * SPILL_AT && v.spilled % BLOCK == 0);
        assert!(v.heap_bytes() < 2 * SPILL_AT * 8);
        let mut scratch = Vec::new();
        for (a, b) in [
            (0, 10),
            (5, n),
            (v.spilled - 3, v.spilled + 3),
            (n - 2, n + 9),
        ] {
            let w = v.window(a, b, &mut scratch).unwrap();
            assert_eq!(w.offset, a);
            let expect: Vec<f64> = (a..b.min(n)).map(|i| i as f64).collect();
            assert_eq!(w.values, &expect[..], "{a}..{b}");
        }
        assert_eq!(v.get(7).unwrap(), 7.0);
        assert_eq!(v.get(n - 1).unwrap(), (n - 1) as f64);
        let mut seen = Vec::new();
        v.each_chunk(|w| {
            assert_eq!(w.offset, seen.len());
            seen.extend_from_slice(w.values);
        })
        .unwrap();
        assert_eq!(seen.len(), n);
        assert!(seen.iter().enumerate().all(|(i, x)| *x == i as f64));
        // From a value on: that value first; the values in memory come whole.
        let start = v.spilled - 100;
        let mut from = Vec::new();
        v.each_chunk_from(start, |w| from.push((w.offset, w.values.len())))
            .unwrap();
        assert_eq!(from.first(), Some(&(start, 100)));
        assert_eq!(from.last(), Some(&(v.spilled, n - v.spilled)));
    }

    #[test]
    fn a_failing_spill_keeps_the_values_in_memory() {
        struct Full;
        impl Spill for Full {
            fn write(&mut self, _: usize, _: &[f64]) -> std::io::Result<()> {
                Err(std::io::Error::other("disk full"))
            }
            fn read(&self, _: usize, _: &mut [f64]) -> std::io::Result<()> {
                unreachable!("nothing was written")
            }
        }
        let spiller: Spiller = Arc::new(|| Ok(Box::new(Full) as Box<dyn Spill>));
        let mut v = Values::default();
        for i in 0..2 * SPILL_AT {
            v.push(i as f64);
            v.spill_some(Some(&spiller));
        }
        assert_eq!(v.spilled, 0);
        assert_eq!(v.get(SPILL_AT).unwrap(), SPILL_AT as f64);
    }
}
