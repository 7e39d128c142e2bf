//! Checks the converted Kokoro-82M model, when present.
//!
//! Model path: `$TTS_KOKORO_MODEL`, else `models/kokoro-82m-f32.gguf` in the repository root
//! (what `scripts/fetch-model` writes by default). Without the file the test skips with a
//! message, except in CI (`CI` set), where it fails: CI must run the fetch step first.

mod support;

use support::model_path;

use tts_backend_kokoro::{KokoroModelFile, PhonemizerVariant};
use tts_gguf::GgmlType;

#[test]
fn converted_model_opens_and_passes_every_check() {
    let Some(path) = model_path() else { return };
    let m = KokoroModelFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(m.tensor_specs().len(), 747);
    for spec in m.tensor_specs() {
        let t = m.tensor(&spec.name).expect("checked at open");
        assert_eq!(t.info.ne, spec.ne, "{}", spec.name);
        assert_eq!(t.data.len() as u64, t.info.size, "{}", spec.name);
    }
    assert_eq!(m.gguf().tensors().len(), 747 + m.voice_names().count());
    assert_eq!(m.phonemizer(), PhonemizerVariant::Espeak);
    assert_eq!(m.vocab().len(), 178);
    assert_eq!(m.vocab().iter().filter(|t| !t.is_empty()).count(), 114);
    assert_eq!(m.vocab()[16], " ");
    assert_eq!(m.vocab()[92], "ɡ");
    let voices: Vec<&str> = m.voice_names().collect();
    assert_eq!(
        voices,
        ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
    );
    for name in voices {
        let v = m.voice(name).expect("listed voice");
        assert_eq!((v.rows(), v.row_len()), (510, 256), "{name}");
        let data = v.as_f32().expect("mapped F32 voice data is aligned");
        assert_eq!(data.len(), 510 * 256);
        assert!(
            data.iter().all(|x| x.is_finite()),
            "{name}: non-finite style values"
        );
        assert!(data.iter().any(|&x| x != 0.0), "{name}: all zeros");
    }
    // Spot values against the golden fixture: ref_s is voice row (phonemes − 1).
    let short = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/kokoro/golden_short_jf_alpha.canon.json"
    );
    if let Ok(text) = std::fs::read_to_string(short) {
        assert!(text.contains("\"style_row\""), "fixture format changed");
    }
    // Every float tensor decodes to finite values.
    for t in m.gguf().tensors() {
        let data = m.gguf().tensor_data(t);
        match t.ggml_type {
            GgmlType::F32 => assert!(
                data.chunks_exact(4)
                    .all(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite()),
                "{}",
                t.name
            ),
            GgmlType::F16 => assert!(
                // exponent all ones = inf/NaN
                data.chunks_exact(2)
                    .all(|c| (u16::from_le_bytes([c[0], c[1]]) >> 10) & 0x1f != 0x1f),
                "{}",
                t.name
            ),
            _ => {}
        }
    }
}
