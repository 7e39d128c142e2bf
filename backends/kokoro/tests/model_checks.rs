//! Model checks on a small synthetic Kokoro-layout file: the table's own tensors with tiny
//! architecture sizes, plus every metadata key the loader reads.

#![allow(clippy::unwrap_used)] // test helpers: a failure here is a broken fixture

use std::sync::Arc;

use tts_backend_kokoro::hparams::ArchDims;
use tts_backend_kokoro::weights::{tensor_specs, TensorClass};
use tts_backend_kokoro::{HParams, KokoroModelFile, ModelError, PhonemizerVariant};
use tts_gguf::{GgmlType, GgufFile, GgufWriter};

const TINY: ArchDims = ArchDims {
    style_dim: 2,
    albert_embedding: 2,
    albert_ffn: 4,
    max_dur: 3,
    text_encoder_kernel: 5,
    upsample_initial_channel: 8,
    asr_res_channels: 2,
    voice_rows: 3,
};

const G: &str = "kokoro.decoder.generator";

fn metadata(w: &mut GgufWriter, phonemizer: u32) {
    let tokens: Vec<String> = ["", ";", "a", "ɡ"].iter().map(|s| s.to_string()).collect();
    w.string("general.architecture", "kokoro")
        .strings("tokenizer.ggml.tokens", tokens)
        .u32("kokoro.duration_predictor.albert.context_length", 4)
        .u32("kokoro.duration_predictor.albert.layers", 1)
        .u32("kokoro.duration_predictor.albert.attn_heads", 2)
        .u32("kokoro.duration_predictor.albert.hidden_size", 4)
        .u32("kokoro.duration_predictor.albert.recurrence", 12)
        .u32("kokoro.duration_predictor.hidden_size", 4)
        .u32("kokoro.duration_predictor.layers", 3)
        .u32("kokoro.duration_predictor.f0_n_blocks", 3)
        .u32("kokoro.text_encoder.layers", 3)
        .u32(format!("{G}.up_sampling_factor"), 600)
        .u32(format!("{G}.kernels"), 3)
        .u32(format!("{G}.upsamples"), 2)
        .u32(format!("{G}.layers"), 4)
        .u32(format!("{G}.padding"), 3)
        .u32(format!("{G}.n_fft"), 20)
        .u32(format!("{G}.hop"), 5)
        .u32("phonemizer.type", phonemizer);
    for (i, (stride, pad, ups, upp)) in [(6, 3, 10, 5), (1, 0, 6, 3)].into_iter().enumerate() {
        w.u32(format!("{G}.noise_blocks.{i}.stride"), stride)
            .u32(format!("{G}.noise_blocks.{i}.padding"), pad)
            .u32(format!("{G}.up_convs.{i}.stride"), ups)
            .u32(format!("{G}.up_convs.{i}.padding"), upp);
        for j in 0..3 {
            w.u32(format!("{G}.noise_blocks.{i}.res_block.{j}.padding"), 1)
                .u32(format!("{G}.noise_blocks.{i}.res_block.{j}.dilation"), 1);
        }
    }
    for k in 0..6 {
        for j in 0..3 {
            w.u32(format!("{G}.res_blocks.{k}.{j}.padding"), 1)
                .u32(format!("{G}.res_blocks.{k}.{j}.dilation"), 1);
        }
    }
}

/// Hyper-parameters as the file states them, with the tiny architecture sizes.
fn tiny_hparams(w: &GgufWriter) -> HParams {
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    HParams {
        dims: TINY,
        ..HParams::from_gguf(&f).unwrap()
    }
}

/// A valid tiny file; `edit` may change a tensor's (name, ne, type) before it is written.
fn build(edit: impl Fn(&str, &mut Vec<u64>, &mut GgmlType) -> bool) -> (Vec<u8>, HParams) {
    let mut w = GgufWriter::new();
    metadata(&mut w, 1);
    let hp = tiny_hparams(&w);
    for spec in tensor_specs(&hp) {
        let mut ne = spec.ne.clone();
        let mut ty = match spec.class {
            TensorClass::Quantizable if ne[0] % 32 == 0 => GgmlType::Q8_0,
            TensorClass::F16Allowed | TensorClass::Quantizable => GgmlType::F16,
            TensorClass::F32Only => GgmlType::F32,
        };
        if !edit(&spec.name, &mut ne, &mut ty) {
            continue;
        }
        let size = ty.byte_size(&ne).unwrap() as usize;
        w.tensor(spec.name.clone(), &ne, ty, vec![0; size]);
    }
    for (v, n) in [("jf_alpha", 1.0f32), ("jm_kumo", 2.0)] {
        let [len, rows] = hp.voice_ne();
        let data: Vec<f32> = (0..len * rows).map(|i| n + i as f32).collect();
        w.tensor_f32(format!("kokoro.voice_tensors.{v}"), &[len, rows], &data);
    }
    (w.to_bytes().unwrap(), hp)
}

fn open(bytes: Vec<u8>, hp: HParams) -> Result<KokoroModelFile, ModelError> {
    KokoroModelFile::check(Arc::new(GgufFile::from_bytes(bytes)?), hp)
}

#[test]
fn valid_tiny_file_passes() {
    let (bytes, hp) = build(|_, _, _| true);
    let m = open(bytes, hp).expect("valid file");
    assert_eq!(m.voice_names().collect::<Vec<_>>(), ["jf_alpha", "jm_kumo"]);
    assert_eq!(m.phonemizer(), PhonemizerVariant::Espeak);
    assert_eq!(m.vocab()[3], "ɡ");
    assert_eq!(m.hparams().albert_attn_heads, 2);
    assert_eq!(m.hparams().upsample_strides, [10, 6]);
    let v = m.voice("jm_kumo").unwrap();
    assert_eq!((v.rows(), v.row_len()), (3, 4));
    assert_eq!(v.row(1).unwrap(), [6.0, 7.0, 8.0, 9.0]);
    assert!(v.row(3).is_none());
    assert_eq!(v.bytes().len(), 48);
    assert!(m.voice("af_heart").is_none());
}

#[test]
fn missing_tensor_is_named() {
    let gone = "kokoro.decoder.generator.noise_blocks.1.resblock.2.gamma2_weight";
    let (bytes, hp) = build(|name, _, _| name != gone);
    let e = open(bytes, hp).unwrap_err();
    assert!(matches!(&e, ModelError::MissingTensor(n) if n == gone), "{e}");
    assert!(e.to_string().contains(gone), "{e}");
}

#[test]
fn wrong_shape_is_named() {
    let bad = "kokoro.duration_predictor.layers.2.lstm.0.reverse_weights.5";
    let (bytes, hp) = build(|name, ne, _| {
        if name == bad {
            ne[0] += 1;
        }
        true
    });
    let e = open(bytes, hp).unwrap_err().to_string();
    assert!(e.contains(bad) && e.contains("shape"), "{e}");
}

#[test]
fn wrong_type_is_named() {
    let bad = "kokoro.text_encoder.layers.1.gamma";
    let (bytes, hp) = build(|name, _, ty| {
        if name == bad {
            *ty = GgmlType::F16;
        }
        true
    });
    let e = open(bytes, hp).unwrap_err().to_string();
    assert!(
        e.contains(bad) && e.contains("f16") && e.contains("expected f32"),
        "{e}"
    );
}

#[test]
fn metadata_errors_are_named() {
    let mut w = GgufWriter::new();
    metadata(&mut w, 7);
    let hp = tiny_hparams(&w);
    let e = open(w.to_bytes().unwrap(), hp).unwrap_err().to_string();
    assert!(e.contains("phonemizer.type"), "{e}");

    let mut w = GgufWriter::new();
    w.string("general.architecture", "kokoro");
    let f = Arc::new(GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap());
    let e = KokoroModelFile::from_gguf(f).unwrap_err().to_string();
    assert!(
        e.contains("metadata key \"kokoro.") && e.contains("is missing"),
        "{e}"
    );

    let mut w = GgufWriter::new();
    w.string("general.architecture", "llama");
    let f = Arc::new(GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap());
    let e = KokoroModelFile::from_gguf(f).unwrap_err();
    assert!(matches!(e, ModelError::NotKokoro(_)), "{e}");
}

#[test]
fn file_without_voices_is_rejected() {
    let mut w = GgufWriter::new();
    metadata(&mut w, 1);
    let hp = tiny_hparams(&w);
    for spec in tensor_specs(&hp) {
        let size = GgmlType::F32.byte_size(&spec.ne).unwrap() as usize;
        w.tensor(spec.name.clone(), &spec.ne, GgmlType::F32, vec![0; size]);
    }
    let e = open(w.to_bytes().unwrap(), hp).unwrap_err();
    assert!(matches!(e, ModelError::NoVoices), "{e}");
}
