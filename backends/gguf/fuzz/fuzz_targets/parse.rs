//! Fuzz target: any byte string must parse to `Ok` or `Err` without panicking, and whatever
//! parses must be safe to use (every tensor's bytes in range, every value printable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tts_gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = GgufFile::from_bytes(data.to_vec()) {
        for (k, v) in f.metadata() {
            let _ = (k.len(), v.to_string());
        }
        for t in f.tensors() {
            let r = f.tensor(&t.name).expect("listed tensor is found");
            assert_eq!(r.data.len() as u64, t.size);
            assert_eq!(t.ggml_type.byte_size(&t.ne), Some(t.size));
            let _ = r.as_f32();
        }
        let _ = (f.get_u32("general.alignment"), f.get_str_array("tokenizer.ggml.tokens"));
    }
});
