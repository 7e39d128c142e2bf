//! The GGUF tensor-name table of TTS.cpp's Kokoro layout: the single source of tensor names,
//! expected shapes (`ne`, ggml order) and allowed types.
//!
//! Mirrors `scripts/convert_kokoro.py::gguf_layout` and `shared/docs/kokoro-gguf-tensors.tsv`
//! (747 tensors for Kokoro-82M v1.0, in the same order); the tests compare against the TSV.

use tts_gguf::GgmlType;

use crate::hparams::{HParams, N_HARMONICS, RESBLOCK_KERNELS, UPSAMPLE_KERNELS};

/// Prefix of voice tensors: `kokoro.voice_tensors.<name>`, `ne = [256, 510]`, F32.
pub const VOICE_PREFIX: &str = "kokoro.voice_tensors.";

/// Which storage types a tensor may have (TTS.cpp's quantizer rules, kokoro-gguf.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TensorClass {
    /// Biases, norms, AdaIN/AdaLN fc weights, Snake alphas, voices: always F32.
    F32Only,
    /// Conv / transposed-conv kernels, embeddings, `m_source`: F32 or F16.
    F16Allowed,
    /// Matmul-only weights (LSTM, Linear, attention): F32, F16 or Q4_0/Q4_1/Q5_0/Q5_1/Q8_0.
    Quantizable,
}

impl TensorClass {
    /// The class TTS.cpp's quantizer gives `name`.
    pub fn of(name: &str) -> Self {
        let f16_compatible = !["voice_tensors", "bias", "gamma", "beta", "alpha"]
            .iter()
            .any(|s| name.contains(s))
            && !name.ends_with("embd")
            && !name.ends_with("norm");
        let matmul = [
            "kokoro.albert.",
            "kokoro.text_encoder.lstm.",
            "kokoro.duration_predictor.duration_proj",
            "kokoro.duration_predictor.encode",
            "kokoro.duration_predictor.shared_lstm",
            "kokoro.duration_predictor.duration_lstm",
            "kokoro.duration_predictor.layers",
        ]
        .iter()
        .any(|p| name.starts_with(p));
        match (f16_compatible, matmul) {
            (false, _) => Self::F32Only,
            (true, false) => Self::F16Allowed,
            (true, true) => Self::Quantizable,
        }
    }

    /// Whether a tensor of this class may be stored as `t`.
    pub fn allows(self, t: GgmlType) -> bool {
        match self {
            Self::F32Only => t == GgmlType::F32,
            Self::F16Allowed => matches!(t, GgmlType::F32 | GgmlType::F16),
            Self::Quantizable => matches!(
                t,
                GgmlType::F32
                    | GgmlType::F16
                    | GgmlType::Q4_0
                    | GgmlType::Q4_1
                    | GgmlType::Q5_0
                    | GgmlType::Q5_1
                    | GgmlType::Q8_0
            ),
        }
    }

    /// Allowed types, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::F32Only => "f32",
            Self::F16Allowed => "f32 or f16",
            Self::Quantizable => "f32, f16, q4_0, q4_1, q5_0, q5_1 or q8_0",
        }
    }
}

/// One expected tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    /// Expected dimensions, ggml order.
    pub ne: Vec<u64>,
    pub class: TensorClass,
}

struct Table {
    specs: Vec<TensorSpec>,
    style_dim: u64,
}

impl Table {
    fn add(&mut self, name: impl Into<String>, ne: &[u64]) {
        let name = name.into();
        let class = TensorClass::of(&name);
        self.specs.push(TensorSpec {
            name,
            ne: ne.to_vec(),
            class,
        });
    }

    /// Bidirectional single-layer LSTM, split per gate (k = 2·gate + {0: ih, 1: hh}; gates i, f, g, o).
    fn lstm(&mut self, prefix: &str, n_in: u64, h: u64) {
        for (w, b) in [("weights", "biases"), ("reverse_weights", "reverse_biases")] {
            for gate in 0..4 {
                self.add(format!("{prefix}.{w}.{}", 2 * gate), &[n_in, h]);
                self.add(format!("{prefix}.{w}.{}", 2 * gate + 1), &[h, h]);
                self.add(format!("{prefix}.{b}.{}", 2 * gate), &[h]);
                self.add(format!("{prefix}.{b}.{}", 2 * gate + 1), &[h]);
            }
        }
    }

    /// AdaIN / AdaLN `fc` (Linear style → 2C) split into gamma and beta halves.
    fn halves(&mut self, gamma: &str, beta: &str, c: u64) {
        self.add(format!("{gamma}_weight"), &[self.style_dim, c]);
        self.add(format!("{beta}_weight"), &[self.style_dim, c]);
        self.add(format!("{gamma}_bias"), &[c]);
        self.add(format!("{beta}_bias"), &[c]);
    }

    /// `AdainResBlk1d` (predictor F0/N blocks, decoder blocks).
    fn adain_resblk1d(&mut self, p: &str, c_in: u64, c_out: u64, upsample: bool) {
        self.add(format!("{p}.conv1_weight"), &[3, c_in, c_out]);
        self.add(format!("{p}.conv1_bias"), &[c_out]);
        self.add(format!("{p}.conv2_weight"), &[3, c_out, c_out]);
        self.add(format!("{p}.conv2_bias"), &[c_out]);
        self.halves(&format!("{p}.norm1_gamma"), &format!("{p}.norm1_beta"), c_in);
        self.halves(&format!("{p}.norm2_gamma"), &format!("{p}.norm2_beta"), c_out);
        if c_in != c_out {
            self.add(format!("{p}.conv1x1_weight"), &[1, c_in, c_out]);
        }
        if upsample {
            self.add(format!("{p}.pool_weight"), &[3, 1, c_in]);
            self.add(format!("{p}.pool_bias"), &[c_in]);
        }
    }

    /// `AdaINResBlock1` (generator resblocks and noise_res), 3 members.
    fn adain_resblock1(&mut self, p: &str, c: u64, k: u64) {
        for j in 0..3 {
            let q = format!("{p}.{j}");
            self.add(format!("{q}.convs1_weight"), &[k, c, c]);
            self.add(format!("{q}.convs1_bias"), &[c]);
            self.add(format!("{q}.convs2_weight"), &[k, c, c]);
            self.add(format!("{q}.convs2_bias"), &[c]);
            self.halves(&format!("{q}.gamma1"), &format!("{q}.beta1"), c);
            self.halves(&format!("{q}.gamma2"), &format!("{q}.beta2"), c);
            self.add(format!("{q}.alpha1"), &[1, c, 1]);
            self.add(format!("{q}.alpha2"), &[1, c, 1]);
        }
    }
}

/// Every model tensor (voices excluded) the Kokoro graph needs, in the converter's order.
pub fn tensor_specs(hp: &HParams) -> Vec<TensorSpec> {
    let dims = hp.dims;
    let mut t = Table {
        specs: Vec::new(),
        style_dim: dims.style_dim,
    };
    let (e, hid, n_vocab) = (dims.albert_embedding, hp.albert_hidden_size, hp.n_vocab);
    let (d, h) = (hp.hidden_dim, hp.lstm_hidden());
    let ds = d + dims.style_dim; // DurationEncoder / predictor LSTM input: features + style

    // A. PL-BERT (ALBERT)
    let a = "kokoro.albert";
    t.add(format!("{a}.token_embd"), &[e, n_vocab]);
    t.add(format!("{a}.position_embd"), &[e, hp.albert_context_length]);
    t.add(format!("{a}.token_type_embd"), &[e]);
    t.add(format!("{a}.norm"), &[e]);
    t.add(format!("{a}.norm_bias"), &[e]);
    t.add(format!("{a}.embd"), &[e, hid]);
    t.add(format!("{a}.embd_bias"), &[hid]);
    for l in 0..hp.albert_layers {
        let p = format!("{a}.layer.{l}");
        for m in ["q", "k", "v", "o"] {
            t.add(format!("{p}.{m}"), &[hid, hid]);
        }
        for m in ["q", "k", "v", "o"] {
            t.add(format!("{p}.{m}_bias"), &[hid]);
        }
        t.add(format!("{p}.ffn_norm"), &[hid]);
        t.add(format!("{p}.ffn_norm_bias"), &[hid]);
        t.add(format!("{p}.ffn"), &[hid, dims.albert_ffn]);
        t.add(format!("{p}.ffn_bias"), &[dims.albert_ffn]);
        t.add(format!("{p}.ffn_out"), &[dims.albert_ffn, hid]);
        t.add(format!("{p}.ffn_out_bias"), &[hid]);
        t.add(format!("{p}.attn_norm"), &[hid]);
        t.add(format!("{p}.attn_norm_bias"), &[hid]);
    }

    // B. Duration / prosody predictor
    let dp = "kokoro.duration_predictor";
    t.add(format!("{dp}.encode"), &[hid, d]);
    t.add(format!("{dp}.encode_bias"), &[d]);
    for i in 0..hp.n_layer {
        t.lstm(&format!("{dp}.layers.{}.lstm.0", 2 * i), ds, h);
    }
    for i in 0..hp.n_layer {
        let p = format!("{dp}.layers.{}", 2 * i + 1);
        t.halves(&format!("{p}.gamma"), &format!("{p}.beta"), d);
    }
    t.lstm(&format!("{dp}.duration_lstm.0"), ds, h);
    t.add(format!("{dp}.duration_proj"), &[d, dims.max_dur]);
    t.add(format!("{dp}.duration_proj_bias"), &[dims.max_dur]);
    t.lstm(&format!("{dp}.shared_lstm.0"), ds, h);
    let half = d / 2;
    for i in 0..hp.f0_n_blocks {
        // 512→512, 512→256 with ×2 upsampling, then 256→256.
        let (c_in, c_out, up) = match i {
            0 => (d, d, false),
            1 => (d, half, true),
            _ => (half, half, false),
        };
        t.adain_resblk1d(&format!("{dp}.f0_blocks.{i}"), c_in, c_out, up);
        t.adain_resblk1d(&format!("{dp}.n_blocks.{i}"), c_in, c_out, up);
    }
    t.add(format!("{dp}.f0_proj_kernel"), &[1, half, 1]);
    t.add(format!("{dp}.f0_proj_bias"), &[1]);
    t.add(format!("{dp}.n_proj_kernel"), &[1, half, 1]);
    t.add(format!("{dp}.n_proj_bias"), &[1]);

    // C. Text encoder
    let te = "kokoro.text_encoder";
    t.add(format!("{te}.embedding_weight"), &[d, n_vocab]);
    for i in 0..hp.text_encoder_layers {
        t.add(
            format!("{te}.layers.{i}.weight"),
            &[dims.text_encoder_kernel, d, d],
        );
        t.add(format!("{te}.layers.{i}.bias"), &[d]);
        t.add(format!("{te}.layers.{i}.gamma"), &[d]);
        t.add(format!("{te}.layers.{i}.beta"), &[d]);
    }
    t.lstm(&format!("{te}.lstm.0"), d, h);

    // E. Decoder
    let dec = "kokoro.decoder";
    t.add(format!("{dec}.f0_conv_weight"), &[3, 1, 1]);
    t.add(format!("{dec}.f0_conv_bias"), &[1]);
    t.add(format!("{dec}.n_conv_weight"), &[3, 1, 1]);
    t.add(format!("{dec}.n_conv_bias"), &[1]);
    t.add(format!("{dec}.asr_conv_weight"), &[1, d, dims.asr_res_channels]);
    t.add(format!("{dec}.asr_conv_bias"), &[dims.asr_res_channels]);
    let dim_in = d + 2; // asr features + F0 + N
    let block_in = 2 * d + 2 + dims.asr_res_channels; // 1024 + 2 + 64
    t.adain_resblk1d(&format!("{dec}.encoder_block"), dim_in, 2 * d, false);
    for i in 0..hp.decoder_layers {
        let last = i + 1 == hp.decoder_layers;
        let c_out = if last {
            dims.upsample_initial_channel
        } else {
            2 * d
        };
        t.adain_resblk1d(&format!("{dec}.decoder_blocks.{i}"), block_in, c_out, last);
    }

    // F. Generator
    let g = "kokoro.decoder.generator";
    let post = hp.post_channels();
    t.add(format!("{g}.m_source_weight"), &[N_HARMONICS, 1]);
    t.add(format!("{g}.m_source_bias"), &[1]);
    for i in 0..hp.n_upsamples {
        let c = hp.upsample_channels(i);
        let stride = hp.noise_strides.get(i as usize).copied().unwrap_or(1);
        // noise_convs[i]: kernel 2·stride for stride > 1, else 1.
        let k = if stride > 1 { 2 * stride } else { 1 };
        t.add(format!("{g}.noise_blocks.{i}.conv_weight"), &[k, post, c]);
        t.add(format!("{g}.noise_blocks.{i}.conv_bias"), &[c]);
        // noise_res[i]: kernel 7 after the first upsample, 11 after the last.
        let rk = if i + 1 == hp.n_upsamples { 11 } else { 7 };
        t.adain_resblock1(&format!("{g}.noise_blocks.{i}.resblock"), c, rk);
    }
    for i in 0..hp.n_upsamples {
        let (c_in, c_out) = (dims.upsample_initial_channel >> i, hp.upsample_channels(i));
        t.add(
            format!("{g}.ups.{i}.weight"),
            &[UPSAMPLE_KERNELS[i as usize % 2], c_out, c_in],
        );
        t.add(format!("{g}.ups.{i}.bias"), &[c_out]);
    }
    for k in 0..hp.n_upsamples * hp.n_kernels {
        let c = hp.upsample_channels(k / hp.n_kernels);
        let kernel = RESBLOCK_KERNELS[(k % hp.n_kernels) as usize % RESBLOCK_KERNELS.len()];
        t.adain_resblock1(&format!("{g}.resblocks.{k}"), c, kernel);
    }
    let c_last = hp.upsample_channels(hp.n_upsamples - 1);
    t.add(format!("{g}.conv_post_weight"), &[7, c_last, post]);
    t.add(format!("{g}.conv_post_bias"), &[post]);
    t.specs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hyper-parameters of Kokoro-82M v1.0 (what the converter writes).
    pub(crate) fn kokoro_82m() -> HParams {
        HParams {
            dims: crate::hparams::ArchDims::KOKORO_82M,
            n_vocab: 178,
            albert_context_length: 512,
            albert_layers: 1,
            albert_attn_heads: 12,
            albert_hidden_size: 768,
            albert_recurrence: 12,
            hidden_dim: 512,
            n_layer: 3,
            f0_n_blocks: 3,
            text_encoder_layers: 3,
            up_sampling_factor: 600,
            n_kernels: 3,
            n_upsamples: 2,
            decoder_layers: 4,
            conv_post_padding: 3,
            n_fft: 20,
            hop: 5,
            upsample_strides: vec![10, 6],
            upsample_paddings: vec![5, 3],
            noise_strides: vec![6, 1],
            noise_paddings: vec![3, 0],
        }
    }

    fn tsv() -> Vec<(String, Vec<u64>)> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/docs/kokoro-gguf-tensors.tsv"
        );
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e} (shared/ must sit next to the checkout)"));
        text.lines()
            .skip(1)
            .map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                let ne = cols[1]
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(", ")
                    .map(|x| x.parse().unwrap())
                    .collect();
                (cols[0].to_owned(), ne)
            })
            .collect()
    }

    #[test]
    fn table_matches_the_tsv_exactly() {
        let specs = tensor_specs(&kokoro_82m());
        let ours: Vec<(String, Vec<u64>)> = specs.iter().map(|s| (s.name.clone(), s.ne.clone())).collect();
        let want = tsv();
        assert_eq!(ours.len(), 747);
        for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
            assert_eq!(a, b, "row {i}");
        }
        assert_eq!(ours, want);
        let params: u64 = specs.iter().map(|s| s.ne.iter().product::<u64>()).sum();
        assert_eq!(params, 81_140_536);
        assert_eq!(specs.iter().filter(|s| s.name.len() == 64).count(), 24);
    }

    #[test]
    fn classes_follow_the_quantizer_rules() {
        let specs = tensor_specs(&kokoro_82m());
        let count = |c| specs.iter().filter(|s| s.class == c).count();
        assert_eq!(count(TensorClass::Quantizable), 104);
        assert_eq!(count(TensorClass::F16Allowed), 95);
        assert_eq!(count(TensorClass::F32Only), 548);
        assert_eq!(
            TensorClass::of("kokoro.voice_tensors.jf_alpha"),
            TensorClass::F32Only
        );
        assert!(TensorClass::Quantizable.allows(GgmlType::Q8_0));
        assert!(!TensorClass::F16Allowed.allows(GgmlType::Q8_0));
        assert!(!TensorClass::F32Only.allows(GgmlType::F16));
    }
}
