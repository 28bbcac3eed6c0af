//! A small mutation fuzzer for the normal test suite: seeded, bounded in inputs and in time,
//! no coverage feedback (cargo-fuzz does the long, guided runs: `fuzz/`).
//!
//! Each input is a seed mutated one to eight times (bit flips, interesting bytes and 16-bit
//! values, inserted, deleted, duplicated or spliced ranges, dictionary tokens), or, now and
//! then, random bytes. Some inputs join the pool, so mutations stack.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long each target runs, at most: `FUZZ_MS` milliseconds (default 2,000).
fn budget() -> Duration {
    let ms = std::env::var("FUZZ_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    Duration::from_millis(ms)
}

/// The PRNG's seed: `FUZZ_SEED` when set, else one fixed per target (a run is reproducible up
/// to where the time budget cuts it).
fn seed(name: &str) -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
        })
}

/// Inputs kept (from `core/tests/fuzz/regressions/<name>/`): crashes found once, run first.
fn regressions(name: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/regressions")
        .join(name);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

/// What a run of one target is given.
pub struct Target<'a> {
    pub name: &'a str,
    pub seeds: Vec<Vec<u8>>,
    pub dictionary: Vec<Vec<u8>>,
    /// Inputs are cut to this length.
    pub max_len: usize,
    /// Mutated inputs run at most (besides the seeds and regressions).
    pub max_inputs: u64,
}

/// Runs `target.name`'s entry point `run` on the regressions, the seeds, then mutated inputs
/// until `max_inputs` or the time budget. A panic fails the test with the input, which is also
/// saved to a file (to add to the regressions).
pub fn fuzz(target: Target<'_>, run: impl Fn(&[u8])) {
    let Target {
        name,
        seeds,
        dictionary,
        max_len,
        max_inputs,
    } = target;
    assert!(!seeds.is_empty(), "{name}: no seeds");
    let check = |input: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| run(input))).is_err() {
            let path = std::env::temp_dir().join(format!(
                "cascade-fuzz-{name}-{:016x}",
                seed(&String::from_utf8_lossy(input))
            ));
            let _ = std::fs::write(&path, input);
            panic!(
                "fuzz target {name} panicked on {:?} (saved to {}; add it to \
                 core/tests/fuzz/regressions/{name}/)",
                String::from_utf8_lossy(input),
                path.display()
            );
        }
    };
    for input in regressions(name).iter().chain(&seeds) {
        check(input);
    }
    let (start, budget) = (Instant::now(), budget());
    let mut m = Mutator {
        rng: StdRng::seed_from_u64(seed(name)),
        pool: seeds,
        dictionary,
        max_len,
    };
    let mut inputs = 0;
    while inputs < max_inputs && start.elapsed() < budget {
        let input = m.next();
        check(&input);
        inputs += 1;
        if m.rng.random_ratio(1, 8) && m.pool.len() < 512 {
            m.pool.push(input);
        }
    }
    eprintln!(
        "fuzz {name}: {inputs} mutated inputs in {:?} (seed {})",
        start.elapsed(),
        seed(name)
    );
}

struct Mutator {
    rng: StdRng,
    pool: Vec<Vec<u8>>,
    dictionary: Vec<Vec<u8>>,
    max_len: usize,
}

const INTERESTING: [u8; 8] = [0, 1, 2, 0x10, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_16: [u16; 8] = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff];

impl Mutator {
    fn next(&mut self) -> Vec<u8> {
        if self.rng.random_ratio(1, 32) {
            let len = self.rng.random_range(0..=self.max_len.min(256));
            return (0..len).map(|_| self.rng.random()).collect();
        }
        let mut data = self.pool[self.rng.random_range(0..self.pool.len())].clone();
        for _ in 0..self.rng.random_range(1..=8) {
            self.mutate(&mut data);
        }
        data.truncate(self.max_len);
        data
    }

    /// A position in `data` (0 when empty), or one past its end with `end`.
    fn at(&mut self, data: &[u8], end: bool) -> usize {
        self.rng
            .random_range(0..data.len() + usize::from(end || data.is_empty()))
    }

    fn mutate(&mut self, data: &mut Vec<u8>) {
        match self.rng.random_range(0..11) {
            0 if !data.is_empty() => {
                let i = self.at(data, false);
                data[i] ^= 1 << self.rng.random_range(0..8);
            }
            1 if !data.is_empty() => {
                let i = self.at(data, false);
                data[i] = INTERESTING[self.rng.random_range(0..INTERESTING.len())];
            }
            2 if !data.is_empty() => {
                let i = self.at(data, false);
                let delta: i8 = self.rng.random_range(-16..=16);
                data[i] = data[i].wrapping_add_signed(delta);
            }
            3 if data.len() >= 2 => {
                let i = self.rng.random_range(0..data.len() - 1);
                let v = INTERESTING_16[self.rng.random_range(0..INTERESTING_16.len())];
                let v = if self.rng.random() {
                    v
                } else {
                    v.wrapping_add(self.rng.random_range(0..4))
                };
                data[i..i + 2].copy_from_slice(&v.to_be_bytes());
            }
            4 => {
                let i = self.at(data, true);
                let n = self.rng.random_range(1..=16);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.random()).collect();
                data.splice(i..i, bytes);
            }
            5 if !data.is_empty() => {
                let i = self.at(data, false);
                let n = self.rng.random_range(1..=(data.len() - i).min(64));
                data.drain(i..i + n);
            }
            6 if !data.is_empty() => {
                // A range copied elsewhere (repeats a line, an attribute, a packet).
                let i = self.at(data, false);
                let n = self.rng.random_range(1..=(data.len() - i).min(256));
                let chunk = data[i..i + n].to_vec();
                let j = self.at(data, true);
                data.splice(j..j, chunk);
            }
            7 => {
                // Spliced with another input of the pool.
                let i = self.at(data, true);
                let other = &self.pool[self.rng.random_range(0..self.pool.len())];
                let j = self.rng.random_range(0..=other.len());
                data.truncate(i);
                data.extend_from_slice(&other[j..]);
            }
            8 | 9 if !self.dictionary.is_empty() => {
                let token =
                    self.dictionary[self.rng.random_range(0..self.dictionary.len())].clone();
                let i = self.at(data, true);
                if self.rng.random() || i + token.len() > data.len() {
                    data.splice(i..i, token);
                } else {
                    data[i..i + token.len()].copy_from_slice(&token);
                }
            }
            _ => {
                let i = self.at(data, true);
                data.truncate(i);
            }
        }
    }
}
