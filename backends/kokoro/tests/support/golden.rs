//! What the golden tests share: the fixture list, the comparison metric and the error table.

use std::path::{Path, PathBuf};

/// Every `.npz` golden: `$TTS_KOKORO_FIXTURES`, else `../shared/fixtures/kokoro` next to the
/// checkout. A missing or empty folder is an error (the fixtures always come with a checkout).
pub fn fixtures() -> Vec<PathBuf> {
    let dir = std::env::var_os("TTS_KOKORO_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures/kokoro"
            ))
        });
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("golden fixtures folder {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "npz"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .npz goldens in {}", dir.display());
    files
}

/// The short name of a golden file (`golden_short_jf_alpha.canon.npz` → `short_jf_alpha`).
pub fn golden_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("?")
        .trim_end_matches(".canon")
        .trim_start_matches("golden_")
        .to_owned()
}

/// (max |Δ|, max |Δ| / max |ref|) in f64 (golden-reference.md §4); NaN counts as infinitely
/// wrong.
pub fn compare_f32(mine: &[f32], gold: &[f32]) -> (f64, f64) {
    assert_eq!(mine.len(), gold.len(), "length");
    let scale = gold.iter().fold(0f64, |m, &g| m.max(f64::from(g).abs()));
    let max_abs = mine
        .iter()
        .zip(gold)
        .map(|(&a, &b)| {
            let d = (f64::from(a) - f64::from(b)).abs();
            if d.is_nan() {
                f64::INFINITY
            } else {
                d
            }
        })
        .fold(0f64, f64::max);
    (max_abs, max_abs / scale.max(f64::MIN_POSITIVE))
}

/// One line of the per-stage error table.
pub struct Row {
    pub golden: String,
    pub stage: &'static str,
    pub array: &'static str,
    pub max_abs: f64,
    /// The compared metric: relative error, a phase error in rad, or a count of differing
    /// integers (the table's note says which).
    pub metric: f64,
    pub tol: String,
    pub pass: bool,
    pub secs: f64,
}

/// The relative tolerance of most float stages (golden-reference.md §4).
pub const REL_TOL: f64 = 1e-4;

impl Row {
    /// A float stage compared by the rel metric against [`REL_TOL`].
    pub fn rel(
        golden: &str,
        stage: &'static str,
        array: &'static str,
        mine: &[f32],
        gold: &[f32],
        secs: f64,
    ) -> Row {
        let (max_abs, rel) = compare_f32(mine, gold);
        Row {
            golden: golden.to_owned(),
            stage,
            array,
            max_abs,
            metric: rel,
            tol: format!("rel {REL_TOL:.0e}"),
            pass: rel <= REL_TOL,
            secs,
        }
    }

    /// The same row judged against another relative tolerance.
    pub fn with_rel_tol(mut self, tol: f64) -> Row {
        self.tol = format!("rel {tol:.0e}");
        self.pass = self.metric <= tol;
        self
    }
}

/// Prints the table (with `note` below it) and fails the test if any row failed.
pub fn report(rows: &[Row], note: &str) {
    println!();
    println!(
        "{:<26} {:<18} {:<26} {:>11} {:>11} {:>9} {:>5} {:>7}",
        "golden", "stage", "array", "max abs", "metric", "tol", "pass", "secs"
    );
    for r in rows {
        println!(
            "{:<26} {:<18} {:<26} {:>11.3e} {:>11.3e} {:>9} {:>5} {:>7.2}",
            r.golden,
            r.stage,
            r.array,
            r.max_abs,
            r.metric,
            r.tol,
            if r.pass { "ok" } else { "FAIL" },
            r.secs
        );
    }
    println!("{note}");
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| !r.pass)
        .map(|r| format!("{} {} {}", r.golden, r.stage, r.array))
        .collect();
    assert!(failed.is_empty(), "stages outside tolerance: {failed:?}");
}
