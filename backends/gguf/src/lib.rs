//! A safe, zero-copy GGUF reader (and a small writer for tests).
//!
//! * [`GgufFile::open`] memory-maps a file and validates its whole header before returning:
//!   magic, version (2 or 3), counts, string and array lengths, UTF-8, value and tensor types,
//!   dimensions, byte sizes (overflow-checked), alignment, bounds and overlap of every tensor.
//!   Truncated, corrupted or hostile input gives a [`GgufError`], never a panic.
//! * Tensor names may have any length. Upstream ggml's `gguf_init_from_file` rejects names of 64
//!   characters or more, which TTS.cpp's Kokoro files contain; this reader does not.
//! * Tensor data is handed out as `&[u8]` borrowed from the mapping, never copied. Hold the
//!   [`GgufFile`] in an `Arc` and every model instance in the process shares one copy of the
//!   weights.
//!
//! Format: ggml's `gguf.h` / `docs/gguf.md` (version 3, little-endian); summarized in the
//! project's `shared/docs/kokoro-gguf.md` §9.
//!
//! ```
//! use tts_gguf::{GgmlType, GgufFile, GgufWriter};
//!
//! let mut w = GgufWriter::new();
//! w.string("general.architecture", "demo")
//!     .tensor_f32("weights.a", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
//! let file = std::sync::Arc::new(GgufFile::from_bytes(w.to_bytes()?)?);
//! assert_eq!(file.get_str("general.architecture")?, "demo");
//! let t = file.tensor("weights.a").expect("written above");
//! assert_eq!((t.info.ne.as_slice(), t.info.ggml_type), (&[2u64, 3][..], GgmlType::F32));
//! assert_eq!(t.data.len(), 24);
//! # Ok::<(), tts_gguf::GgufError>(())
//! ```
#![deny(unsafe_code)]

mod error;
mod reader;
mod types;
mod value;
mod writer;

pub use error::GgufError;
pub use reader::{GgufFile, TensorInfo, TensorRef, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};
pub use types::{GgmlType, ALL_TYPES};
pub use value::{Array, Value, ValueType};
pub use writer::GgufWriter;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GgufWriter {
        let mut w = GgufWriter::new();
        let long = "kokoro.decoder.generator.noise_blocks.0.resblock.0.gamma1_weight";
        assert_eq!(long.len(), 64);
        w.string("general.architecture", "kokoro")
            .u32("kokoro.duration_predictor.layers", 3)
            .kv("f", Value::F32(0.5))
            .kv("b", Value::Bool(true))
            .kv("i64", Value::I64(-7))
            .kv("u32s", Value::Array(Array::U32(vec![1, 2, 3])))
            .strings("tokenizer.ggml.tokens", ["", ";", "ɡ"])
            .tensor_f32("a", &[3], &[1.0, 2.0, 3.0])
            .tensor(long, &[2, 2], GgmlType::F16, vec![0, 60, 0, 64, 0, 0, 0, 188])
            .tensor("q", &[32, 2], GgmlType::Q8_0, vec![7; 68])
            .tensor_f32("scalar", &[], &[9.0])
            .tensor_f32("x".repeat(300), &[1, 1], &[4.0]);
        w
    }

    #[test]
    fn round_trip() {
        let bytes = sample().to_bytes().expect("valid sample");
        let f = GgufFile::from_bytes(bytes).expect("parses");
        assert_eq!(f.version(), 3);
        assert_eq!(f.alignment(), 32);
        assert_eq!(f.data_offset() % 32, 0);
        assert_eq!(f.get_str("general.architecture").unwrap(), "kokoro");
        assert_eq!(f.get_u32("kokoro.duration_predictor.layers").unwrap(), 3);
        assert_eq!(f.get_f32("f").unwrap(), 0.5);
        assert_eq!(f.get("b"), Some(&Value::Bool(true)));
        assert_eq!(f.get_u32_array("u32s").unwrap(), &[1, 2, 3]);
        assert_eq!(f.get_str_array("tokenizer.ggml.tokens").unwrap(), ["", ";", "ɡ"]);
        assert_eq!(f.tensors().len(), 5);
        let a = f.tensor("a").unwrap();
        assert_eq!(a.data, [1f32, 2., 3.].map(f32::to_le_bytes).concat().as_slice());
        let long = f
            .tensor("kokoro.decoder.generator.noise_blocks.0.resblock.0.gamma1_weight")
            .unwrap();
        assert_eq!(long.info.ggml_type, GgmlType::F16);
        assert_eq!(long.data, [0, 60, 0, 64, 0, 0, 0, 188]);
        assert_eq!(f.tensor("q").unwrap().data.len(), 68);
        assert_eq!(f.tensor("scalar").unwrap().info.n_elements(), 1);
        assert_eq!(f.tensor(&"x".repeat(300)).unwrap().info.size, 4);
        for t in f.tensors() {
            assert_eq!(t.offset % 32, 0, "{}", t.name);
        }
        assert!(f.tensor("missing").is_none());
    }

    #[test]
    fn typed_access_errors_name_the_key() {
        let f = GgufFile::from_bytes(sample().to_bytes().unwrap()).unwrap();
        let e = f.get_u32("general.architecture").unwrap_err().to_string();
        assert!(e.contains("general.architecture") && e.contains("string"), "{e}");
        let e = f.get_u32("nope").unwrap_err().to_string();
        assert!(e.contains("\"nope\" is missing"), "{e}");
        let e = f.get_str_array("u32s").unwrap_err().to_string();
        assert!(e.contains("array[u32; 3]"), "{e}");
    }

    #[test]
    fn custom_alignment() {
        let mut w = sample();
        w.u32(ALIGNMENT_KEY, 64);
        let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
        assert_eq!(f.alignment(), 64);
        assert_eq!(f.data_offset() % 64, 0);
        assert!(f.tensors().iter().all(|t| t.offset % 64 == 0));
    }

    #[test]
    fn open_maps_a_file_and_shares_it() {
        let dir = std::env::temp_dir().join(format!("tts-gguf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sample.gguf");
        std::fs::write(&path, sample().to_bytes().unwrap()).unwrap();
        let f = std::sync::Arc::new(GgufFile::open(&path).unwrap());
        let t = f.tensor("a").unwrap();
        assert_eq!(t.as_f32(), Some(&[1.0f32, 2.0, 3.0][..]), "mapping is aligned");
        let f2 = std::sync::Arc::clone(&f);
        let ptr = std::thread::spawn(move || f2.tensor("a").unwrap().data.as_ptr() as usize)
            .join()
            .unwrap();
        assert_eq!(ptr, t.data.as_ptr() as usize, "same bytes, no copy");

        std::fs::write(dir.join("empty.gguf"), b"").unwrap();
        let e = GgufFile::open(dir.join("empty.gguf")).unwrap_err();
        assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
        let e = GgufFile::open(dir.join("absent.gguf")).unwrap_err();
        assert!(e.to_string().contains("absent.gguf"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn header(n_tensors: i64, n_kv: i64) -> Vec<u8> {
        let mut v = b"GGUF".to_vec();
        v.extend_from_slice(&3u32.to_le_bytes());
        v.extend_from_slice(&n_tensors.to_le_bytes());
        v.extend_from_slice(&n_kv.to_le_bytes());
        v
    }

    fn err(bytes: Vec<u8>) -> GgufError {
        GgufFile::from_bytes(bytes).expect_err("must be rejected")
    }

    #[test]
    fn rejects_hostile_headers() {
        assert!(matches!(
            err(b"GGML\x03\0\0\0".to_vec()),
            GgufError::BadMagic { .. }
        ));
        let mut v = header(0, 0);
        v[4] = 1;
        assert!(matches!(err(v), GgufError::UnsupportedVersion(1)));
        assert!(matches!(err(header(-1, 0)), GgufError::BadCount { .. }));
        assert!(matches!(err(header(0, i64::MAX)), GgufError::BadCount { .. }));
        assert!(matches!(err(header(1 << 40, 0)), GgufError::BadCount { .. }));
        // A string whose length is larger than the file.
        let mut v = header(0, 1);
        v.extend_from_slice(&u64::MAX.to_le_bytes());
        v.extend_from_slice(&[0; 16]);
        assert!(matches!(err(v), GgufError::Truncated { .. }));
        // An array claiming 2^61 u32 elements.
        let mut v = header(0, 1);
        v.extend_from_slice(&1u64.to_le_bytes());
        v.push(b'k');
        v.extend_from_slice(&9u32.to_le_bytes());
        v.extend_from_slice(&4u32.to_le_bytes());
        v.extend_from_slice(&(1u64 << 61).to_le_bytes());
        v.extend_from_slice(&[0; 16]);
        assert!(matches!(err(v), GgufError::BadCount { .. }));
        assert_eq!(GgufFile::from_bytes(header(0, 0)).unwrap().tensors().len(), 0);
    }

    #[test]
    fn rejects_bad_tensors() {
        let mut w = GgufWriter::new();
        w.tensor_f32("a", &[2], &[1.0, 2.0])
            .tensor_f32("b", &[2], &[3.0, 4.0]);
        let good = w.to_bytes().unwrap();
        let pos = |name: &[u8]| {
            good.windows(name.len() + 8)
                .position(|w| w[..8] == (name.len() as u64).to_le_bytes() && &w[8..] == name)
                .unwrap()
                + 8
                + name.len()
        };
        // Tensor "b": n_dims at pos, ne[0] at +4, type at +12, offset at +16.
        let b = pos(b"b");
        let patch = |at: usize, bytes: &[u8]| {
            let mut v = good.clone();
            v[at..at + bytes.len()].copy_from_slice(bytes);
            v
        };
        assert!(matches!(
            err(patch(b, &5u32.to_le_bytes())),
            GgufError::TooManyDims { .. }
        ));
        assert!(matches!(
            err(patch(b + 4, &(-2i64).to_le_bytes())),
            GgufError::NegativeDim { .. }
        ));
        assert!(matches!(
            err(patch(b + 12, &16u32.to_le_bytes())),
            GgufError::UnknownTensorType { .. }
        ));
        assert!(matches!(
            err(patch(b + 12, &8u32.to_le_bytes())),
            GgufError::BadTensorShape { .. }
        ));
        assert!(matches!(
            err(patch(b + 16, &4u64.to_le_bytes())),
            GgufError::MisalignedTensor { .. }
        ));
        assert!(matches!(
            err(patch(b + 16, &0u64.to_le_bytes())),
            GgufError::OverlappingTensors { .. }
        ));
        assert!(matches!(
            err(patch(b + 16, &(u64::MAX - 31).to_le_bytes())),
            GgufError::TensorOutOfBounds { .. }
        ));
        assert!(matches!(
            err(patch(b + 4, &(1i64 << 62).to_le_bytes())),
            GgufError::BadTensorShape { .. } | GgufError::TensorOutOfBounds { .. }
        ));
        let a = pos(b"a");
        let mut dup = good.clone();
        dup[a - 1] = b'b';
        assert!(matches!(err(dup), GgufError::DuplicateTensor(_)));
        let mut short = good.clone();
        short.truncate(good.len() - 25); // cuts the last byte of "b" (the rest is padding)
        assert!(matches!(err(short), GgufError::TensorOutOfBounds { .. }));
    }

    #[test]
    fn rejects_bad_metadata() {
        let mut w = GgufWriter::new();
        w.u32("k", 1).u32("k", 2);
        assert!(matches!(err(w.to_bytes().unwrap()), GgufError::DuplicateKey(_)));
        let mut w = GgufWriter::new();
        w.string(ALIGNMENT_KEY, "32");
        assert!(w.to_bytes().is_err(), "writer refuses a bad alignment");
        let mut v = header(0, 1);
        v.extend_from_slice(&(ALIGNMENT_KEY.len() as u64).to_le_bytes());
        v.extend_from_slice(ALIGNMENT_KEY.as_bytes());
        v.extend_from_slice(&4u32.to_le_bytes());
        v.extend_from_slice(&24u32.to_le_bytes());
        assert!(matches!(err(v), GgufError::BadAlignment(_)));
        let mut v = header(0, 1);
        v.extend_from_slice(&1u64.to_le_bytes());
        v.push(0xff);
        v.extend_from_slice(&4u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        assert!(matches!(err(v), GgufError::InvalidUtf8 { .. }));
        let mut v = header(0, 1);
        v.extend_from_slice(&1u64.to_le_bytes());
        v.push(b'k');
        v.extend_from_slice(&13u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        assert!(matches!(err(v), GgufError::UnknownValueType { id: 13, .. }));
        let mut v = header(0, 1);
        v.extend_from_slice(&1u64.to_le_bytes());
        v.push(b'k');
        v.extend_from_slice(&9u32.to_le_bytes());
        v.extend_from_slice(&9u32.to_le_bytes());
        v.extend_from_slice(&0u64.to_le_bytes());
        assert!(matches!(err(v), GgufError::NestedArray { .. }));
    }

    #[test]
    fn display_of_values() {
        let v = Value::Array(Array::String((0..10).map(|i| i.to_string()).collect()));
        assert_eq!(
            v.to_string(),
            "[string; 10] \"0\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", …"
        );
        assert_eq!(Value::U32(3).to_string(), "3");
        assert_eq!(Value::String("a".into()).to_string(), "\"a\"");
    }
}
