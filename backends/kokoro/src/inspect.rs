//! The `inspect` report: what a Kokoro GGUF contains and whether it passes the model checks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use tts_gguf::{Array, GgufError, GgufFile, Value};

use crate::model_file::KokoroModelFile;

/// Metadata arrays longer than this are summarized.
const SHOWN_ARRAY: usize = 8;

/// Builds the report for `path`. The GGUF must parse; the Kokoro model checks may fail, in which
/// case the report says why and `ok` is false.
pub fn report(path: &Path) -> Result<(String, bool), GgufError> {
    let gguf = Arc::new(GgufFile::open(path)?);
    let mut s = String::new();
    // Writing into a String cannot fail; `let _ =` keeps the report code flat.
    let _ = writeln!(s, "file:        {}", path.display());
    let _ = writeln!(
        s,
        "size:        {} bytes ({:.1} MiB); GGUF v{}, alignment {}, data at offset {}",
        gguf.file_size(),
        gguf.file_size() as f64 / (1024.0 * 1024.0),
        gguf.version(),
        gguf.alignment(),
        gguf.data_offset()
    );
    let _ = writeln!(s, "\nmetadata ({} keys):", gguf.metadata().len());
    for (k, v) in gguf.metadata() {
        let shown = match v {
            Value::Array(Array::String(a)) if a.len() > SHOWN_ARRAY => {
                let head: Vec<String> = a.iter().take(SHOWN_ARRAY).map(|x| format!("{x:?}")).collect();
                format!("[string; {}] {}, …", a.len(), head.join(", "))
            }
            v => v.to_string(),
        };
        let _ = writeln!(s, "  {k} = {shown}");
    }

    let mut by_type: BTreeMap<String, (usize, u64, u64)> = BTreeMap::new();
    for t in gguf.tensors() {
        let e = by_type.entry(t.ggml_type.name().to_owned()).or_default();
        e.0 += 1;
        e.1 += t.n_elements();
        e.2 += t.size;
    }
    let _ = writeln!(s, "\ntensors: {}", gguf.tensors().len());
    for (ty, (n, elems, bytes)) in &by_type {
        let _ = writeln!(
            s,
            "  {ty:<5} {n:>4} tensors {elems:>11} elements {:>9.1} MiB",
            *bytes as f64 / (1024.0 * 1024.0)
        );
    }
    let total_elems: u64 = gguf.tensors().iter().map(|t| t.n_elements()).sum();
    let _ = writeln!(
        s,
        "  total {:>4} tensors {:>11} elements {:>9.1} MiB",
        gguf.tensors().len(),
        total_elems,
        gguf.tensor_bytes() as f64 / (1024.0 * 1024.0)
    );
    let longest = gguf.tensors().iter().map(|t| t.name.len()).max().unwrap_or(0);
    let _ = writeln!(s, "  longest tensor name: {longest} characters");

    let ok = match KokoroModelFile::from_gguf(Arc::clone(&gguf)) {
        Ok(m) => {
            let names: Vec<&str> = m.voice_names().collect();
            let _ = writeln!(s, "\nvoices ({}): {}", names.len(), names.join(", "));
            let _ = writeln!(s, "phonemizer:  {}", m.phonemizer());
            let used = m.vocab().iter().filter(|t| !t.is_empty()).count();
            let _ = writeln!(s, "vocab:       {} ids, {used} symbols", m.vocab().len());
            let hp = m.hparams();
            let _ = writeln!(
                s,
                "hparams:     albert {}x{} heads, hidden {}, context {}; hidden_dim {}; n_fft {}, hop {}, {} samples/frame",
                hp.albert_recurrence,
                hp.albert_attn_heads,
                hp.albert_hidden_size,
                hp.albert_context_length,
                hp.hidden_dim,
                hp.n_fft,
                hp.hop,
                hp.up_sampling_factor
            );
            let _ = writeln!(
                s,
                "model check: OK ({} model tensors with expected shapes and types, {} voices)",
                m.tensor_specs().len(),
                names.len()
            );
            true
        }
        Err(e) => {
            let _ = writeln!(s, "\nmodel check: FAILED: {e}");
            false
        }
    };
    Ok((s, ok))
}
