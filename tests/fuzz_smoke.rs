//! The fuzz targets on stable, in every `cargo test`: each target of `fuzz/checks.rs` runs over
//! its seed corpus (`fuzz/corpus/{target}/`), its regressions (`fuzz/regressions/{target}/`,
//! inputs that once failed) and a few thousand seeded mutations of them. Coverage-guided
//! fuzzing proper is `cargo +nightly fuzz run TARGET` (see fuzz/README.md); this keeps every
//! target building and every input that ever failed failing no more.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Mutations tried per target (seeded: the same inputs on every run).
const MUTATIONS: usize = 3000;
/// Fragments a mutation may splice in: the bytes parsers treat specially.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\n",
    b"\r\n",
    b"\x08",
    b"\x7f",
    b"\x00",
    b"\xff",
    b"<br>",
    b"<BR />",
    b"\\u0000",
    b"\\ud800",
    b"1e999",
    b"-1",
    b"18446744073709551616",
    b"\"type\":",
    b"\"text\":",
    b"null",
    b"true",
    b"=",
    b"[[events]]",
    b"T00:00:00.000",
    b"\xe4\xbd\xa0",
    b"\xef\xbb\xbf",
    b"\xf0\x9f\x98\x80",
    b"%",
    b"?seq=",
    b"&lang=",
];

fn inputs(target: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            out.push(std::fs::read(&f).unwrap());
        }
    }
    out
}

fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.random_range(0..seeds.len())].clone();
    for _ in 0..rng.random_range(1..=4) {
        let at = rng.random_range(0..=data.len());
        match rng.random_range(0..6) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !data.is_empty() => {
                let end = (at + rng.random_range(1..16)).min(data.len());
                data.drain(at.min(end)..end);
            }
            2 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                data.splice(at..at, t.iter().copied());
            }
            3 => {
                // Splice a piece of another seed.
                let other = &seeds[rng.random_range(0..seeds.len())];
                if !other.is_empty() {
                    let from = rng.random_range(0..other.len());
                    let to = (from + rng.random_range(1..64)).min(other.len());
                    data.splice(at..at, other[from..to].iter().copied());
                }
            }
            4 => {
                let b: u8 = rng.random();
                data.insert(at, b);
            }
            _ => {
                // Repeat a piece (long lines, deep nesting).
                let end = (at + rng.random_range(1..8)).min(data.len());
                let piece = data[at.min(end)..end].to_vec();
                for _ in 0..rng.random_range(1..50) {
                    data.splice(at..at, piece.iter().copied());
                }
            }
        }
    }
    data
}

fn run(target: &str, check: fn(&[u8]), data: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| check(data))).is_err() {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{target}-{:016x}", fxhash(data)));
        std::fs::write(&file, data).unwrap();
        panic!(
            "fuzz target {target} failed on {} (saved to {}; add it to fuzz/regressions/{target}/ once fixed)",
            String::from_utf8_lossy(data).escape_debug(),
            file.display()
        );
    }
}

fn fxhash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

#[test]
fn every_target_survives_its_corpus_and_mutations() {
    for (i, (target, check)) in checks::TARGETS.iter().enumerate() {
        let seeds = inputs(target);
        assert!(seeds.len() >= 5, "fuzz/corpus/{target} needs seeds");
        for s in &seeds {
            run(target, *check, s);
        }
        let mut rng = StdRng::seed_from_u64(0x6a62_6c63 + i as u64);
        for _ in 0..MUTATIONS {
            let data = mutate(&mut rng, &seeds);
            run(target, *check, &data);
        }
    }
}
