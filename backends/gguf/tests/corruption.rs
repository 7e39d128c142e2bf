//! Regression tests from truncations and bit flips of a small generated file: every variant must
//! parse to `Ok` or `Err` without panicking, and whatever parses must be safe to use.

use tts_gguf::{Array, GgmlType, GgufError, GgufFile, GgufWriter, Value};

fn sample() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.string("general.architecture", "kokoro")
        .u32("kokoro.duration_predictor.albert.layers", 1)
        .kv("f", Value::F32(1.5))
        .kv("i16s", Value::Array(Array::I16(vec![-1, 2])))
        .strings("tokenizer.ggml.tokens", ["", ";", "ɡ", "ˈ"])
        .strings("kokoro.voices", ["jf_alpha"])
        .u32("phonemizer.type", 1)
        .tensor_f32(
            "kokoro.decoder.generator.noise_blocks.0.resblock.0.gamma1_weight",
            &[4, 2],
            &[0.5; 8],
        )
        .tensor("kokoro.albert.layer.0.q", &[32, 1], GgmlType::Q8_0, vec![3; 34])
        .tensor("h", &[3], GgmlType::F16, vec![0, 60, 0, 64, 0, 66])
        .tensor_f32("kokoro.voice_tensors.jf_alpha", &[2, 3], &[1.0; 6]);
    w.to_bytes().expect("sample is valid")
}

/// Touches everything a parsed file exposes, so an unchecked range would panic here.
fn exercise(f: &GgufFile) -> usize {
    let mut n = 0;
    for (k, v) in f.metadata() {
        n += k.len() + v.to_string().len();
    }
    for t in f.tensors() {
        let data = f.tensor(&t.name).expect("listed tensor is found by name").data;
        assert_eq!(data.len() as u64, t.size);
        assert_eq!(Some(t.size), t.ggml_type.byte_size(&t.ne));
        assert!(f.data_offset() + t.offset + t.size <= f.file_size());
        n += data.iter().map(|&b| b as usize).sum::<usize>();
    }
    n
}

#[test]
fn sample_parses() {
    let f = GgufFile::from_bytes(sample()).unwrap();
    assert_eq!(f.tensors().len(), 4);
    exercise(&f);
}

#[test]
fn every_truncation_is_an_error() {
    let full = sample();
    let f = GgufFile::from_bytes(full.clone()).unwrap();
    let data_end = f
        .tensors()
        .iter()
        .map(|t| f.data_offset() + t.offset + t.size)
        .max()
        .unwrap() as usize;
    for len in 0..full.len() {
        let r = GgufFile::from_bytes(full[..len].to_vec());
        if len < data_end {
            let e = r.expect_err(&format!("truncated to {len} bytes must fail"));
            assert!(
                matches!(
                    e,
                    GgufError::Truncated { .. }
                        | GgufError::BadCount { .. }
                        | GgufError::TensorOutOfBounds { .. }
                ),
                "truncated to {len}: unexpected {e}"
            );
            assert!(!e.to_string().is_empty());
        } else {
            // Only trailing padding was cut.
            exercise(&r.unwrap());
        }
    }
}

#[test]
fn every_single_bit_flip_is_handled() {
    let full = sample();
    let (mut ok, mut err) = (0, 0);
    for pos in 0..full.len() {
        for bit in 0..8 {
            let mut v = full.clone();
            v[pos] ^= 1 << bit;
            match GgufFile::from_bytes(v) {
                Ok(f) => {
                    exercise(&f);
                    ok += 1;
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    err += 1;
                }
            }
        }
    }
    // Flips in tensor data and in most scalar values parse; flips in lengths, counts, types and
    // offsets must be caught.
    assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
}

#[test]
fn multi_byte_corruptions_are_handled() {
    // Deterministic pseudo-random overwrites of 1–4 bytes with "interesting" values.
    let full = sample();
    let interesting: [u8; 6] = [0x00, 0xff, 0x7f, 0x80, 0x01, 0x40];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut v = full.clone();
        for _ in 0..=(next() % 4) {
            let pos = (next() % v.len() as u64) as usize;
            v[pos] = interesting[(next() % 6) as usize];
        }
        if let Ok(f) = GgufFile::from_bytes(v) {
            exercise(&f);
        }
    }
}

#[test]
fn reads_a_file_written_by_ggufs_python_writer() {
    // fuzz/seeds/kokoro-like.gguf was written by the `gguf` Python package 0.19.0 (the converter's
    // writer): 64-character name, F32/F16/Q8_0 tensors, string/int arrays, bool, f32.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/kokoro-like.gguf");
    let f = GgufFile::open(path).expect("seed parses");
    assert_eq!(f.get_str("general.architecture").expect("written"), "kokoro");
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens").expect("written"),
        ["", ";", "ɡ", "ˈ"]
    );
    assert_eq!(f.get_u32("phonemizer.type").expect("written"), 1);
    assert_eq!(f.get("b"), Some(&Value::Bool(true)));
    let t = f
        .tensor("kokoro.decoder.generator.noise_blocks.0.resblock.0.gamma1_weight")
        .expect("64-character name");
    assert_eq!(t.info.ne, [4, 2]);
    assert_eq!(t.as_f32().expect("aligned F32"), [0., 1., 2., 3., 4., 5., 6., 7.]);
    let q = f.tensor("q").expect("written");
    assert_eq!(
        (q.info.ggml_type, q.info.ne.as_slice(), q.data.len()),
        (GgmlType::Q8_0, &[32u64, 2][..], 68)
    );
    assert_eq!(f.tensor("h").expect("written").data, [0, 60, 0, 60, 0, 60]);
    exercise(&f);
}

#[test]
fn zero_sized_tensor_past_the_end_is_an_error() {
    // Found by the fuzzer: a tensor with a 0 dimension in a file that ends before the data
    // section made `tensor()` slice past the end.
    let mut w = GgufWriter::new();
    w.tensor_f32("empty", &[0, 3], &[]);
    let mut bytes = w.to_bytes().unwrap();
    let f = GgufFile::from_bytes(bytes.clone()).unwrap();
    assert_eq!(f.tensor("empty").unwrap().data.len(), 0);
    bytes.truncate(bytes.len() - 1);
    let e = GgufFile::from_bytes(bytes).unwrap_err();
    assert!(matches!(e, GgufError::TensorOutOfBounds { .. }), "{e}");
}

#[test]
fn fuzzer_findings_stay_fixed() {
    // Every input the fuzzer ever crashed on (fuzz/regressions/) must parse without panicking.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        if let Ok(f) = GgufFile::from_bytes(bytes) {
            exercise(&f);
        }
        n += 1;
    }
    assert!(n >= 1);
}
