//! Every plugin exports exactly one dynamic symbol, abi_stable's root-module header: the Rust
//! code and the C/C++ libraries linked into it (ggml in the Kokoro plugin) stay private, so two
//! plugins in one process cannot interpose on each other's symbols (`shared/docs/style.md` §5).
//!
//! Uses `nm -D --defined-only` from binutils (installed with the C toolchain the build needs).

use std::path::Path;
use std::process::Command;

use tts_e2e::{kokoro, plugin};

/// The one symbol `export_backend!` defines.
const HEADER: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// The names of the dynamic symbols `path` defines.
fn exported(path: &Path) -> Vec<String> {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nm (binutils) on {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "nm -D --defined-only {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_plugin_exports_only_the_abi_stable_header() {
    for path in [
        plugin("sine"),
        plugin("faulty"),
        plugin("faulty_abi"),
        kokoro::plugin(),
    ] {
        assert_eq!(exported(&path), [HEADER], "{}", path.display());
    }
}
