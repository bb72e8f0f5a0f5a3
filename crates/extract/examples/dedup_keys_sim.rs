//! Writes the de-duplication key files of a simulated extract run, for measuring the staged
//! `corpus dedup` (buckets, clusters) at whole-index scale without the packages:
//!
//!     cargo run --release -p pytorrent-extract --example dedup_keys_sim -- \
//!         OUT RECORDS TASKS EXACT NEAR FAR SHORT [RECORDS_PER_PACKAGE]
//!
//! OUT gets `task-IIIII-of-NNNNN/.extract-journal/{settings.json,keys/}` for TASKS tasks, as
//! `extract --num-tasks` writes them (no records: the write stage cannot run on it). RECORDS
//! records of the docstrings scenario, in packages of RECORDS_PER_PACKAGE on average (215:
//! the 1,000-package run's records per package), dealt round the tasks. Each record is, by
//! the given shares: an exact copy of an earlier one (EXACT), a near variant of an earlier
//! one (NEAR: 1 to 19 of the 128 MinHash slots changed, a Jaccard estimate ≥ 0.85), a far
//! variant (FAR: 20 to 60 slots changed: LSH candidates that fail the check), too short for
//! a signature (SHORT), or new. Earlier records are drawn from a reservoir of 100,000, so
//! copies reach back across the whole run as copies of popular code do. Deterministic.

use std::path::PathBuf;

use pytorrent_extract::dedup::{DedupOptions, Keys, PERMUTATIONS};
use pytorrent_extract::staged::keys::KeyWriter;
use pytorrent_io::Tasks;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

type Made = (u128, Option<[u32; PERMUTATIONS]>);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 7 {
        eprintln!("usage: dedup_keys_sim OUT RECORDS TASKS EXACT NEAR FAR SHORT [PER_PACKAGE]");
        std::process::exit(2);
    }
    let out = PathBuf::from(&args[0]);
    let records: u64 = args[1].parse().expect("RECORDS");
    let tasks: usize = args[2].parse().expect("TASKS");
    let share = |i: usize| -> f64 { args[i].parse().expect("a share") };
    let (exact, near, far, short) = (share(3), share(4), share(5), share(6));
    let per_package: u64 = args.get(7).map_or(215, |a| a.parse().expect("PER_PACKAGE"));
    let opts = DedupOptions::default();
    let fingerprint = format!("simulated-{records}-{tasks}-{exact}-{near}-{far}-{short}");
    let config = serde_json::to_value(pytorrent_extract::ExtractConfig::new(
        vec![PathBuf::from("simulated")],
        out.clone(),
    ))
    .unwrap();
    let packages = records.div_ceil(per_package);
    let mut writers: Vec<KeyWriter> = (0..tasks)
        .map(|index| {
            let task = Tasks {
                count: tasks,
                index,
            };
            let journal = out.join(task.dir_name()).join(".extract-journal");
            std::fs::create_dir_all(&journal).unwrap();
            let settings = pytorrent_extract::journal::Settings {
                fingerprint: fingerprint.clone(),
                config: config.clone(),
                task,
                packages,
            };
            std::fs::write(
                journal.join("settings.json"),
                serde_json::to_vec_pretty(&settings).unwrap(),
            )
            .unwrap();
            KeyWriter::create(&journal.join("keys"), &fingerprint, task, &opts).unwrap()
        })
        .collect();
    let mut rng = Rng(0x5EED);
    let mut pool: Vec<Made> = Vec::new();
    const POOL: usize = 100_000;
    let (mut package, mut left_in_package) = (0u64, 0u64);
    let mut seen = 0u64;
    for n in 0..records {
        if left_in_package == 0 {
            package += u64::from(n > 0);
            // Package sizes: geometric around the mean, as real ones are skewed.
            left_in_package = 1 + (-(rng.unit().max(1e-12)).ln() * per_package as f64) as u64;
        }
        left_in_package -= 1;
        let r = rng.unit();
        let from_pool = |rng: &mut Rng, pool: &[Made]| pool[rng.below(pool.len() as u64) as usize];
        let made: Made = if r < exact && !pool.is_empty() {
            from_pool(&mut rng, &pool)
        } else if r < exact + near + far && !pool.is_empty() {
            let (_, sig) = from_pool(&mut rng, &pool);
            let mut sig = sig.unwrap_or_else(|| std::array::from_fn(|_| rng.next() as u32));
            let changes = if r < exact + near {
                1 + rng.below(19)
            } else {
                20 + rng.below(41)
            };
            for _ in 0..changes {
                sig[rng.below(PERMUTATIONS as u64) as usize] = rng.next() as u32;
            }
            (
                u128::from(rng.next()) << 64 | u128::from(rng.next()),
                Some(sig),
            )
        } else if r < exact + near + far + short {
            (u128::from(rng.next()) << 64 | u128::from(rng.next()), None)
        } else {
            let sig: [u32; PERMUTATIONS] = std::array::from_fn(|_| rng.next() as u32);
            (
                u128::from(rng.next()) << 64 | u128::from(rng.next()),
                Some(sig),
            )
        };
        // Reservoir sampling keeps the pool a uniform draw of everything so far.
        seen += 1;
        if pool.len() < POOL {
            pool.push(made);
        } else {
            let k = rng.below(seen);
            if (k as usize) < POOL {
                pool[k as usize] = made;
            }
        }
        let keys = Keys::new(Some(made.0), made.1);
        writers[(package % tasks as u64) as usize]
            .record(package, "docstrings", &keys)
            .unwrap();
        if n % 1_000_000 == 0 {
            eprintln!("{n} records");
        }
    }
    for w in writers {
        w.finish().unwrap();
    }
    eprintln!(
        "{records} records in {} packages, {tasks} tasks",
        package + 1
    );
}
