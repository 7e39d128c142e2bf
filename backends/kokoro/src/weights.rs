//! The GGUF tensor-name table of TTS.cpp's Kokoro layout: the single source of tensor names,
//! expected shapes (`ne`, ggml order) and allowed types.
//!
//! [`TensorNames`] is the one place tensor names are spelled: [`tensor_specs`] and every graph
//! module's `load` read it, so the graph code names no tensor.
//!
//! Mirrors `scripts/convert_kokoro.py::gguf_layout` and `shared/docs/kokoro-gguf-tensors.tsv`
//! (747 tensors for Kokoro-82M v1.0, in the same order); the tests compare against the TSV.

use tts_gguf::GgmlType;

use crate::hparams::{HParams, CONV_POST_KERNEL, N_HARMONICS};

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

/// GGUF name prefix of PL-BERT.
pub const ALBERT: &str = "kokoro.albert";
/// GGUF name prefix of the prosody predictor (and `bert_encoder`).
pub const DURATION_PREDICTOR: &str = "kokoro.duration_predictor";
/// GGUF name prefix of the text encoder.
pub const TEXT_ENCODER: &str = "kokoro.text_encoder";
/// GGUF name prefix of the decoder body.
pub const DECODER: &str = "kokoro.decoder";
/// GGUF name prefix of the iSTFTNet generator.
pub const GENERATOR: &str = "kokoro.decoder.generator";

/// The names of a weight and its bias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightBias {
    pub weight: String,
    pub bias: String,
}

impl WeightBias {
    /// `{p}` and `{p}_bias`: ALBERT and predictor `Linear`s, ALBERT LayerNorms.
    pub fn linear(p: &str) -> Self {
        Self {
            weight: p.to_owned(),
            bias: format!("{p}_bias"),
        }
    }

    /// `{p}_weight` and `{p}_bias`: convolutions, AdaIN `fc` halves, `m_source`.
    pub fn suffixed(p: &str) -> Self {
        Self {
            weight: format!("{p}_weight"),
            bias: format!("{p}_bias"),
        }
    }

    /// `{p}.weight` and `{p}.bias`: the text encoder's convolutions, the generator's `ups`.
    pub fn dotted(p: &str) -> Self {
        Self {
            weight: format!("{p}.weight"),
            bias: format!("{p}.bias"),
        }
    }
}

/// AdaIN / AdaLN `fc` (Linear style → 2C) split into its gamma and beta halves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StyleFcNames {
    pub gamma: WeightBias,
    pub beta: WeightBias,
}

impl StyleFcNames {
    fn new(gamma: &str, beta: &str) -> Self {
        Self {
            gamma: WeightBias::suffixed(gamma),
            beta: WeightBias::suffixed(beta),
        }
    }
}

/// One direction of a split LSTM: per gate (i, f, g, o) `W_ih`, `W_hh`, `b_ih`, `b_hh`
/// (`k = 2·gate + {0: ih, 1: hh}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LstmDirNames {
    pub w_ih: [String; 4],
    pub w_hh: [String; 4],
    pub b_ih: [String; 4],
    pub b_hh: [String; 4],
}

/// A bidirectional single-layer LSTM under `prefix`: `[forward, reverse]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LstmNames {
    pub prefix: String,
    pub dirs: [LstmDirNames; 2],
}

impl LstmNames {
    fn new(prefix: String) -> Self {
        let dir = |w: &str, b: &str| LstmDirNames {
            w_ih: std::array::from_fn(|g| format!("{prefix}.{w}.{}", 2 * g)),
            w_hh: std::array::from_fn(|g| format!("{prefix}.{w}.{}", 2 * g + 1)),
            b_ih: std::array::from_fn(|g| format!("{prefix}.{b}.{}", 2 * g)),
            b_hh: std::array::from_fn(|g| format!("{prefix}.{b}.{}", 2 * g + 1)),
        };
        let dirs = [dir("weights", "biases"), dir("reverse_weights", "reverse_biases")];
        Self { prefix, dirs }
    }
}

/// `AdainResBlk1d` (predictor F0/N blocks, decoder blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdainResBlk1dNames {
    pub conv1: WeightBias,
    pub conv2: WeightBias,
    pub norm1: StyleFcNames,
    pub norm2: StyleFcNames,
    /// Present when the block changes the channel count.
    pub conv1x1: String,
    /// Present when the block upsamples.
    pub pool: WeightBias,
}

impl AdainResBlk1dNames {
    fn new(p: &str) -> Self {
        Self {
            conv1: WeightBias::suffixed(&format!("{p}.conv1")),
            conv2: WeightBias::suffixed(&format!("{p}.conv2")),
            norm1: StyleFcNames::new(&format!("{p}.norm1_gamma"), &format!("{p}.norm1_beta")),
            norm2: StyleFcNames::new(&format!("{p}.norm2_gamma"), &format!("{p}.norm2_beta")),
            conv1x1: format!("{p}.conv1x1_weight"),
            pool: WeightBias::suffixed(&format!("{p}.pool")),
        }
    }
}

/// One of the three members of an `AdaINResBlock1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResBlock1MemberNames {
    pub convs1: WeightBias,
    pub convs2: WeightBias,
    pub norm1: StyleFcNames,
    pub norm2: StyleFcNames,
    pub alpha1: String,
    pub alpha2: String,
}

/// `AdaINResBlock1` (generator resblocks and noise_res): `{p}.{j}.*` for each member `j`.
pub fn adain_resblock1_names(p: &str, n_members: usize) -> Vec<ResBlock1MemberNames> {
    (0..n_members)
        .map(|j| {
            let q = format!("{p}.{j}");
            ResBlock1MemberNames {
                convs1: WeightBias::suffixed(&format!("{q}.convs1")),
                convs2: WeightBias::suffixed(&format!("{q}.convs2")),
                norm1: StyleFcNames::new(&format!("{q}.gamma1"), &format!("{q}.beta1")),
                norm2: StyleFcNames::new(&format!("{q}.gamma2"), &format!("{q}.beta2")),
                alpha1: format!("{q}.alpha1"),
                alpha2: format!("{q}.alpha2"),
            }
        })
        .collect()
}

/// The shared ALBERT layer `l`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbertLayerNames {
    pub q: WeightBias,
    pub k: WeightBias,
    pub v: WeightBias,
    pub o: WeightBias,
    pub ffn_norm: WeightBias,
    pub ffn: WeightBias,
    pub ffn_out: WeightBias,
    pub attn_norm: WeightBias,
}

/// PL-BERT (`CustomAlbert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbertNames {
    pub token_embd: String,
    pub position_embd: String,
    pub token_type_embd: String,
    pub norm: WeightBias,
    pub embd: WeightBias,
    pub layers: Vec<AlbertLayerNames>,
}

/// `TextEncoder` CNN layer `i`: conv kernel + bias, channel LayerNorm gamma + beta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextConvNames {
    pub conv: WeightBias,
    pub gamma: String,
    pub beta: String,
}

/// `TextEncoder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextEncoderNames {
    pub embedding: String,
    pub layers: Vec<TextConvNames>,
    pub lstm: LstmNames,
}

/// `ProsodyPredictor` and `bert_encoder` (stored under the predictor's prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictorNames {
    /// `bert_encoder` (`encode`).
    pub bert_encoder: WeightBias,
    /// `DurationEncoder`: per layer its BiLSTM and its AdaLayerNorm.
    pub encoder: Vec<(LstmNames, StyleFcNames)>,
    pub duration_lstm: LstmNames,
    pub duration_proj: WeightBias,
    pub shared_lstm: LstmNames,
    pub f0_blocks: Vec<AdainResBlk1dNames>,
    pub n_blocks: Vec<AdainResBlk1dNames>,
    pub f0_proj: WeightBias,
    pub n_proj: WeightBias,
}

/// The decoder body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderNames {
    pub f0_conv: WeightBias,
    pub n_conv: WeightBias,
    pub asr_conv: WeightBias,
    pub encoder_block: AdainResBlk1dNames,
    pub decoder_blocks: Vec<AdainResBlk1dNames>,
}

/// The generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorNames {
    /// `m_source.l_linear` (harmonics → 1).
    pub m_source: WeightBias,
    /// Per upsample stage: `noise_convs[i]`.
    pub noise_convs: Vec<WeightBias>,
    /// Per upsample stage: `noise_res[i]`.
    pub noise_res: Vec<Vec<ResBlock1MemberNames>>,
    pub ups: Vec<WeightBias>,
    /// `n_upsamples · n_kernels` resblocks, stage-major.
    pub resblocks: Vec<Vec<ResBlock1MemberNames>>,
    pub conv_post: WeightBias,
}

/// Every model tensor name (voices excluded), grouped by module: the table both
/// [`tensor_specs`] and the graph modules' `load` read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorNames {
    pub albert: AlbertNames,
    pub predictor: PredictorNames,
    pub text_encoder: TextEncoderNames,
    pub decoder: DecoderNames,
    pub generator: GeneratorNames,
}

impl TensorNames {
    /// The names for the sizes in `hp`.
    pub fn new(hp: &HParams) -> Self {
        let a = ALBERT;
        let albert = AlbertNames {
            token_embd: format!("{a}.token_embd"),
            position_embd: format!("{a}.position_embd"),
            token_type_embd: format!("{a}.token_type_embd"),
            norm: WeightBias::linear(&format!("{a}.norm")),
            embd: WeightBias::linear(&format!("{a}.embd")),
            layers: (0..hp.albert_layers)
                .map(|l| {
                    let p = format!("{a}.layer.{l}");
                    let lin = |m: &str| WeightBias::linear(&format!("{p}.{m}"));
                    AlbertLayerNames {
                        q: lin("q"),
                        k: lin("k"),
                        v: lin("v"),
                        o: lin("o"),
                        ffn_norm: lin("ffn_norm"),
                        ffn: lin("ffn"),
                        ffn_out: lin("ffn_out"),
                        attn_norm: lin("attn_norm"),
                    }
                })
                .collect(),
        };
        let dp = DURATION_PREDICTOR;
        let predictor = PredictorNames {
            bert_encoder: WeightBias::linear(&format!("{dp}.encode")),
            encoder: (0..hp.n_layer)
                .map(|i| {
                    let ln = format!("{dp}.layers.{}", 2 * i + 1);
                    (
                        LstmNames::new(format!("{dp}.layers.{}.lstm.0", 2 * i)),
                        StyleFcNames::new(&format!("{ln}.gamma"), &format!("{ln}.beta")),
                    )
                })
                .collect(),
            duration_lstm: LstmNames::new(format!("{dp}.duration_lstm.0")),
            duration_proj: WeightBias::linear(&format!("{dp}.duration_proj")),
            shared_lstm: LstmNames::new(format!("{dp}.shared_lstm.0")),
            f0_blocks: (0..hp.f0_n_blocks)
                .map(|i| AdainResBlk1dNames::new(&format!("{dp}.f0_blocks.{i}")))
                .collect(),
            n_blocks: (0..hp.f0_n_blocks)
                .map(|i| AdainResBlk1dNames::new(&format!("{dp}.n_blocks.{i}")))
                .collect(),
            f0_proj: WeightBias {
                weight: format!("{dp}.f0_proj_kernel"),
                bias: format!("{dp}.f0_proj_bias"),
            },
            n_proj: WeightBias {
                weight: format!("{dp}.n_proj_kernel"),
                bias: format!("{dp}.n_proj_bias"),
            },
        };
        let te = TEXT_ENCODER;
        let text_encoder = TextEncoderNames {
            embedding: format!("{te}.embedding_weight"),
            layers: (0..hp.text_encoder_layers)
                .map(|i| TextConvNames {
                    conv: WeightBias::dotted(&format!("{te}.layers.{i}")),
                    gamma: format!("{te}.layers.{i}.gamma"),
                    beta: format!("{te}.layers.{i}.beta"),
                })
                .collect(),
            lstm: LstmNames::new(format!("{te}.lstm.0")),
        };
        let dec = DECODER;
        let decoder = DecoderNames {
            f0_conv: WeightBias::suffixed(&format!("{dec}.f0_conv")),
            n_conv: WeightBias::suffixed(&format!("{dec}.n_conv")),
            asr_conv: WeightBias::suffixed(&format!("{dec}.asr_conv")),
            encoder_block: AdainResBlk1dNames::new(&format!("{dec}.encoder_block")),
            decoder_blocks: (0..hp.decoder_layers)
                .map(|i| AdainResBlk1dNames::new(&format!("{dec}.decoder_blocks.{i}")))
                .collect(),
        };
        let g = GENERATOR;
        let members = hp.resblock_members();
        let generator = GeneratorNames {
            m_source: WeightBias::suffixed(&format!("{g}.m_source")),
            noise_convs: (0..hp.n_upsamples)
                .map(|i| WeightBias::suffixed(&format!("{g}.noise_blocks.{i}.conv")))
                .collect(),
            noise_res: (0..hp.n_upsamples)
                .map(|i| adain_resblock1_names(&format!("{g}.noise_blocks.{i}.resblock"), members))
                .collect(),
            ups: (0..hp.n_upsamples)
                .map(|i| WeightBias::dotted(&format!("{g}.ups.{i}")))
                .collect(),
            resblocks: (0..hp.n_upsamples * hp.n_kernels)
                .map(|k| adain_resblock1_names(&format!("{g}.resblocks.{k}"), members))
                .collect(),
            conv_post: WeightBias::suffixed(&format!("{g}.conv_post")),
        };
        Self {
            albert,
            predictor,
            text_encoder,
            decoder,
            generator,
        }
    }
}

struct Table {
    specs: Vec<TensorSpec>,
    style_dim: u64,
}

impl Table {
    fn add(&mut self, name: &str, ne: &[u64]) {
        let class = TensorClass::of(name);
        self.specs.push(TensorSpec {
            name: name.to_owned(),
            ne: ne.to_vec(),
            class,
        });
    }

    fn weight_bias(&mut self, n: &WeightBias, ne: &[u64], bias: &[u64]) {
        self.add(&n.weight, ne);
        self.add(&n.bias, bias);
    }

    /// Bidirectional single-layer LSTM, split per gate.
    fn lstm(&mut self, n: &LstmNames, n_in: u64, h: u64) {
        for d in &n.dirs {
            for gate in 0..4 {
                self.add(&d.w_ih[gate], &[n_in, h]);
                self.add(&d.w_hh[gate], &[h, h]);
                self.add(&d.b_ih[gate], &[h]);
                self.add(&d.b_hh[gate], &[h]);
            }
        }
    }

    /// AdaIN / AdaLN `fc` halves.
    fn halves(&mut self, n: &StyleFcNames, c: u64) {
        self.add(&n.gamma.weight, &[self.style_dim, c]);
        self.add(&n.beta.weight, &[self.style_dim, c]);
        self.add(&n.gamma.bias, &[c]);
        self.add(&n.beta.bias, &[c]);
    }

    /// `AdainResBlk1d` (predictor F0/N blocks, decoder blocks).
    fn adain_resblk1d(&mut self, n: &AdainResBlk1dNames, (c_in, c_out, upsample): (u64, u64, bool)) {
        self.weight_bias(&n.conv1, &[3, c_in, c_out], &[c_out]);
        self.weight_bias(&n.conv2, &[3, c_out, c_out], &[c_out]);
        self.halves(&n.norm1, c_in);
        self.halves(&n.norm2, c_out);
        if c_in != c_out {
            self.add(&n.conv1x1, &[1, c_in, c_out]);
        }
        if upsample {
            self.weight_bias(&n.pool, &[3, 1, c_in], &[c_in]);
        }
    }

    /// `AdaINResBlock1` (generator resblocks and noise_res).
    fn adain_resblock1(&mut self, members: &[ResBlock1MemberNames], c: u64, k: u64) {
        for m in members {
            self.weight_bias(&m.convs1, &[k, c, c], &[c]);
            self.weight_bias(&m.convs2, &[k, c, c], &[c]);
            self.halves(&m.norm1, c);
            self.halves(&m.norm2, c);
            self.add(&m.alpha1, &[1, c, 1]);
            self.add(&m.alpha2, &[1, c, 1]);
        }
    }
}

/// Every model tensor (voices excluded) the Kokoro graph needs, in the converter's order.
pub fn tensor_specs(hp: &HParams) -> Vec<TensorSpec> {
    let dims = hp.dims;
    let names = TensorNames::new(hp);
    let mut t = Table {
        specs: Vec::new(),
        style_dim: dims.style_dim,
    };
    let (e, hid, n_vocab) = (dims.albert_embedding, hp.albert_hidden_size, hp.n_vocab);
    let (d, h) = (hp.hidden_dim, hp.lstm_hidden());
    let ds = d + dims.style_dim; // DurationEncoder / predictor LSTM input: features + style

    // A. PL-BERT (ALBERT)
    let a = &names.albert;
    t.add(&a.token_embd, &[e, n_vocab]);
    t.add(&a.position_embd, &[e, hp.albert_context_length]);
    t.add(&a.token_type_embd, &[e]);
    t.weight_bias(&a.norm, &[e], &[e]);
    t.weight_bias(&a.embd, &[e, hid], &[hid]);
    for l in &a.layers {
        for m in [&l.q, &l.k, &l.v, &l.o] {
            t.add(&m.weight, &[hid, hid]);
        }
        for m in [&l.q, &l.k, &l.v, &l.o] {
            t.add(&m.bias, &[hid]);
        }
        t.weight_bias(&l.ffn_norm, &[hid], &[hid]);
        t.weight_bias(&l.ffn, &[hid, dims.albert_ffn], &[dims.albert_ffn]);
        t.weight_bias(&l.ffn_out, &[dims.albert_ffn, hid], &[hid]);
        t.weight_bias(&l.attn_norm, &[hid], &[hid]);
    }

    // B. Duration / prosody predictor
    let p = &names.predictor;
    t.weight_bias(&p.bert_encoder, &[hid, d], &[d]);
    for (lstm, _) in &p.encoder {
        t.lstm(lstm, ds, h);
    }
    for (_, norm) in &p.encoder {
        t.halves(norm, d);
    }
    t.lstm(&p.duration_lstm, ds, h);
    t.weight_bias(&p.duration_proj, &[d, dims.max_dur], &[dims.max_dur]);
    t.lstm(&p.shared_lstm, ds, h);
    for (i, (f0, n)) in p.f0_blocks.iter().zip(&p.n_blocks).enumerate() {
        t.adain_resblk1d(f0, hp.f0n_block(i as u64));
        t.adain_resblk1d(n, hp.f0n_block(i as u64));
    }
    let half = hp.f0n_channels();
    t.weight_bias(&p.f0_proj, &[1, half, 1], &[1]);
    t.weight_bias(&p.n_proj, &[1, half, 1], &[1]);

    // C. Text encoder
    let te = &names.text_encoder;
    t.add(&te.embedding, &[d, n_vocab]);
    for l in &te.layers {
        t.weight_bias(&l.conv, &[dims.text_encoder_kernel, d, d], &[d]);
        t.add(&l.gamma, &[d]);
        t.add(&l.beta, &[d]);
    }
    t.lstm(&te.lstm, d, h);

    // E. Decoder
    let dec = &names.decoder;
    t.weight_bias(&dec.f0_conv, &[3, 1, 1], &[1]);
    t.weight_bias(&dec.n_conv, &[3, 1, 1], &[1]);
    t.weight_bias(
        &dec.asr_conv,
        &[1, d, dims.asr_res_channels],
        &[dims.asr_res_channels],
    );
    t.adain_resblk1d(&dec.encoder_block, hp.decoder_encode_block());
    for (i, b) in dec.decoder_blocks.iter().enumerate() {
        t.adain_resblk1d(b, hp.decoder_block(i as u64));
    }

    // F. Generator
    let g = &names.generator;
    let post = hp.post_channels();
    t.weight_bias(&g.m_source, &[N_HARMONICS, 1], &[1]);
    for i in 0..hp.n_upsamples {
        let c = hp.upsample_channels(i);
        let iu = i as usize;
        t.weight_bias(&g.noise_convs[iu], &[hp.noise_kernel(i), post, c], &[c]);
        t.adain_resblock1(&g.noise_res[iu], c, hp.noise_res_kernel(i));
    }
    for i in 0..hp.n_upsamples {
        let (c_in, c_out) = (dims.upsample_initial_channel >> i, hp.upsample_channels(i));
        t.weight_bias(
            &g.ups[i as usize],
            &[hp.upsample_kernel(i), c_out, c_in],
            &[c_out],
        );
    }
    for (k, r) in g.resblocks.iter().enumerate() {
        let k = k as u64;
        t.adain_resblock1(r, hp.upsample_channels(k / hp.n_kernels), hp.resblock_kernel(k));
    }
    let c_last = hp.upsample_channels(hp.n_upsamples - 1);
    t.weight_bias(&g.conv_post, &[CONV_POST_KERNEL, c_last, post], &[post]);
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
            noise_res_dilations: vec![vec![1, 3, 5]; 2],
            resblock_dilations: vec![vec![1, 3, 5]; 6],
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
