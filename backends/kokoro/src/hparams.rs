//! Kokoro-82M hyper-parameters.
//!
//! Values stored in the GGUF (TTS.cpp's keys, `shared/docs/kokoro-gguf.md` §3) are read from the
//! file; the rest are constants of the architecture that TTS.cpp hard-codes too. Trailing comments
//! give the reference names (hexgrad/kokoro `config.json` / module attributes).

use tts_gguf::GgufFile;

use crate::model_file::ModelError;

/// Style vector half size: decoder style = row[0..128], predictor style = row[128..256].
pub const STYLE_DIM: u64 = 128; // style_dim
/// ALBERT embedding size.
pub const ALBERT_EMBEDDING: u64 = 128; // plbert.embedding_size
/// ALBERT feed-forward size.
pub const ALBERT_FFN: u64 = 2048; // plbert.intermediate_size
/// Duration bins of the duration projection.
pub const MAX_DUR: u64 = 50; // max_dur
/// Text encoder CNN kernel size.
pub const TEXT_ENCODER_KERNEL: u64 = 5; // text_encoder_kernel_size
/// Generator input channels.
pub const UPSAMPLE_INITIAL_CHANNEL: u64 = 512; // istftnet.upsample_initial_channel
/// Upsampling transposed-conv kernel sizes.
pub const UPSAMPLE_KERNELS: [u64; 2] = [20, 12]; // istftnet.upsample_kernel_sizes
/// Generator resblock kernel sizes (per upsample stage).
pub const RESBLOCK_KERNELS: [u64; 3] = [3, 7, 11]; // istftnet.resblock_kernel_sizes
/// Noise-branch `AdaINResBlock1` kernel sizes: 7 after the first upsample, 11 after the last.
pub const NOISE_RES_KERNELS: [u64; 2] = [7, 11]; // Generator.noise_res kernel sizes
/// `conv_post` kernel size.
pub const CONV_POST_KERNEL: u64 = 7; // Generator.conv_post
/// Harmonics + fundamental of the sine source.
pub const N_HARMONICS: u64 = 9; // harmonic_num + 1
/// Decoder ASR residual channels.
pub const ASR_RES_CHANNELS: u64 = 64; // decoder.asr_res out channels
/// Rows of a voice pack (max phonemes).
pub const VOICE_ROWS: u64 = 510;
/// Output sample rate.
pub const SAMPLE_RATE: u32 = 24_000;

/// Architecture sizes that the GGUF does not store (TTS.cpp hard-codes them too). Kept in one
/// struct so tests can build small Kokoro-layout files; real files always use [`ArchDims::KOKORO_82M`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchDims {
    pub style_dim: u64,                // style_dim
    pub albert_embedding: u64,         // plbert.embedding_size
    pub albert_ffn: u64,               // plbert.intermediate_size
    pub max_dur: u64,                  // max_dur
    pub text_encoder_kernel: u64,      // text_encoder_kernel_size
    pub upsample_initial_channel: u64, // istftnet.upsample_initial_channel
    pub asr_res_channels: u64,         // decoder.asr_res out channels
    pub voice_rows: u64,               // rows of a voice pack
}

impl ArchDims {
    /// Kokoro-82M v1.0.
    pub const KOKORO_82M: Self = Self {
        style_dim: STYLE_DIM,
        albert_embedding: ALBERT_EMBEDDING,
        albert_ffn: ALBERT_FFN,
        max_dur: MAX_DUR,
        text_encoder_kernel: TEXT_ENCODER_KERNEL,
        upsample_initial_channel: UPSAMPLE_INITIAL_CHANNEL,
        asr_res_channels: ASR_RES_CHANNELS,
        voice_rows: VOICE_ROWS,
    };
}

/// Hyper-parameters read from the model file's metadata (plus the fixed [`ArchDims`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HParams {
    pub dims: ArchDims,
    pub n_vocab: u64,                       // n_token (length of tokenizer.ggml.tokens)
    pub albert_context_length: u64,         // plbert.max_position_embeddings
    pub albert_layers: u64,                 // plbert.num_hidden_groups (distinct layers)
    pub albert_attn_heads: u64,             // plbert.num_attention_heads
    pub albert_hidden_size: u64,            // plbert.hidden_size
    pub albert_recurrence: u64,             // plbert.num_hidden_layers (applications of the layer)
    pub hidden_dim: u64,                    // hidden_dim
    pub n_layer: u64,                       // n_layer (DurationEncoder BiLSTM + AdaLN pairs)
    pub f0_n_blocks: u64,                   // AdainResBlk1d count in predictor.F0 / predictor.N
    pub text_encoder_layers: u64,           // n_layer of TextEncoder's CNN
    pub up_sampling_factor: u64, // prod(upsample_rates) * gen_istft_hop_size * 2 (samples per frame)
    pub n_kernels: u64,          // len(resblock_kernel_sizes)
    pub n_upsamples: u64,        // len(upsample_rates)
    pub decoder_layers: u64,     // len(decoder.decode)
    pub conv_post_padding: u64,  // generator.conv_post padding
    pub n_fft: u64,              // gen_istft_n_fft
    pub hop: u64,                // gen_istft_hop_size
    pub upsample_strides: Vec<u64>, // upsample_rates
    pub upsample_paddings: Vec<u64>, // (k - u) / 2 per ups
    pub noise_strides: Vec<u64>, // generator.noise_convs[i].stride
    pub noise_paddings: Vec<u64>, // generator.noise_convs[i].padding
    pub noise_res_dilations: Vec<Vec<u64>>, // generator.noise_res[i].dilation (per member)
    pub resblock_dilations: Vec<Vec<u64>>, // generator.resblocks[k].dilation (per member)
}

const P: &str = "kokoro.decoder.generator";

impl HParams {
    /// Reads every hyper-parameter key TTS.cpp's loader reads; a missing or mistyped key is an
    /// error naming it.
    pub fn from_gguf(f: &GgufFile) -> Result<Self, ModelError> {
        let u = |k: &str| -> Result<u64, ModelError> { Ok(u64::from(f.get_u32(k)?)) };
        let n_upsamples = u(&format!("{P}.upsamples"))?;
        let per = |what: &str, n: u64| -> Result<Vec<u64>, ModelError> {
            (0..n)
                .map(|i| u(&format!("{P}.{what}", what = what.replace("{i}", &i.to_string()))))
                .collect()
        };
        let n_kernels = u(&format!("{P}.kernels"))?;
        // Per `AdaINResBlock1` member `j`: its dilation (the padding key is TTS.cpp's and must be
        // present; the graph derives each padding from the kernel and the dilation).
        let dilations = |block: &dyn Fn(u64) -> String, n: u64| -> Result<Vec<Vec<u64>>, ModelError> {
            (0..n)
                .map(|i| {
                    (0..n_kernels)
                        .map(|j| {
                            u(&format!("{}.{j}.padding", block(i)))?;
                            u(&format!("{}.{j}.dilation", block(i)))
                        })
                        .collect()
                })
                .collect()
        };
        let noise_res_dilations = dilations(&|i| format!("{P}.noise_blocks.{i}.res_block"), n_upsamples)?;
        let resblock_dilations = dilations(&|k| format!("{P}.res_blocks.{k}"), n_upsamples * n_kernels)?;
        let tokens = f.get_str_array("tokenizer.ggml.tokens")?;
        let hp = Self {
            dims: ArchDims::KOKORO_82M,
            n_vocab: tokens.len() as u64,
            albert_context_length: u("kokoro.duration_predictor.albert.context_length")?,
            albert_layers: u("kokoro.duration_predictor.albert.layers")?,
            albert_attn_heads: u("kokoro.duration_predictor.albert.attn_heads")?,
            albert_hidden_size: u("kokoro.duration_predictor.albert.hidden_size")?,
            albert_recurrence: u("kokoro.duration_predictor.albert.recurrence")?,
            hidden_dim: u("kokoro.duration_predictor.hidden_size")?,
            n_layer: u("kokoro.duration_predictor.layers")?,
            f0_n_blocks: u("kokoro.duration_predictor.f0_n_blocks")?,
            text_encoder_layers: u("kokoro.text_encoder.layers")?,
            up_sampling_factor: u(&format!("{P}.up_sampling_factor"))?,
            n_kernels,
            n_upsamples,
            decoder_layers: u(&format!("{P}.layers"))?,
            conv_post_padding: u(&format!("{P}.padding"))?,
            n_fft: u(&format!("{P}.n_fft"))?,
            hop: u(&format!("{P}.hop"))?,
            upsample_strides: per("up_convs.{i}.stride", n_upsamples)?,
            upsample_paddings: per("up_convs.{i}.padding", n_upsamples)?,
            noise_strides: per("noise_blocks.{i}.stride", n_upsamples)?,
            noise_paddings: per("noise_blocks.{i}.padding", n_upsamples)?,
            noise_res_dilations,
            resblock_dilations,
        };
        hp.validate()?;
        Ok(hp)
    }

    /// Rejects values the Kokoro-82M graph (and its constants above) cannot use.
    fn validate(&self) -> Result<(), ModelError> {
        let bad = |key: &str, reason: String| ModelError::BadMetadata {
            key: key.to_owned(),
            reason,
        };
        if self.albert_attn_heads == 0 || !self.albert_hidden_size.is_multiple_of(self.albert_attn_heads) {
            return Err(bad(
                "kokoro.duration_predictor.albert.attn_heads",
                format!(
                    "{} heads do not divide hidden size {}",
                    self.albert_attn_heads, self.albert_hidden_size
                ),
            ));
        }
        if self.hidden_dim == 0 || !self.hidden_dim.is_multiple_of(2) {
            return Err(bad(
                "kokoro.duration_predictor.hidden_size",
                format!("{} is not a positive even number", self.hidden_dim),
            ));
        }
        if self.n_upsamples != UPSAMPLE_KERNELS.len() as u64 {
            return Err(bad(
                &format!("{P}.upsamples"),
                format!("{} (Kokoro-82M has 2)", self.n_upsamples),
            ));
        }
        if self.n_kernels != RESBLOCK_KERNELS.len() as u64 {
            return Err(bad(
                &format!("{P}.kernels"),
                format!("{} (Kokoro-82M has 3)", self.n_kernels),
            ));
        }
        if self
            .noise_res_dilations
            .iter()
            .chain(&self.resblock_dilations)
            .flatten()
            .any(|&d| d == 0)
        {
            return Err(bad(
                &format!("{P}.res_blocks.*.dilation"),
                "a dilation is 0".to_owned(),
            ));
        }
        if self.n_fft == 0 || self.n_vocab == 0 || self.albert_context_length == 0 {
            return Err(bad(
                "n_fft / vocab / context_length",
                "must be positive".to_owned(),
            ));
        }
        Ok(())
    }

    /// Hidden size of each LSTM direction.
    pub fn lstm_hidden(&self) -> u64 {
        self.hidden_dim / 2
    }

    /// Generator output channels (magnitude + phase bins): n_fft/2+1 each.
    pub fn post_channels(&self) -> u64 {
        2 * (self.n_fft / 2 + 1)
    }

    /// Channels after upsample stage `i` (512 → 256 → 128).
    pub fn upsample_channels(&self, i: u64) -> u64 {
        self.dims.upsample_initial_channel >> (i + 1)
    }

    /// Channels of the F0/N branches after their upsampling block (256).
    pub fn f0n_channels(&self) -> u64 {
        self.hidden_dim / 2
    }

    /// `(c_in, c_out, upsample)` of F0/N block `i`: 512→512, 512→256 with ×2 upsampling, then
    /// 256→256.
    pub fn f0n_block(&self, i: u64) -> (u64, u64, bool) {
        let (d, half) = (self.hidden_dim, self.f0n_channels());
        match i {
            0 => (d, d, false),
            1 => (d, half, true),
            _ => (half, half, false),
        }
    }

    /// `(c_in, c_out, upsample)` of the decoder's `encode` block: asr features + F0 + N → 1024.
    pub fn decoder_encode_block(&self) -> (u64, u64, bool) {
        (self.hidden_dim + 2, 2 * self.hidden_dim, false)
    }

    /// Input channels of every decode block: the previous block's 1024 + asr_res 64 + F0 + N.
    pub fn decoder_block_in(&self) -> u64 {
        2 * self.hidden_dim + 2 + self.dims.asr_res_channels
    }

    /// `(c_in, c_out, upsample)` of decode block `i`: the last one upsamples to the generator's
    /// input channels.
    pub fn decoder_block(&self, i: u64) -> (u64, u64, bool) {
        if i + 1 == self.decoder_layers {
            (self.decoder_block_in(), self.dims.upsample_initial_channel, true)
        } else {
            (self.decoder_block_in(), 2 * self.hidden_dim, false)
        }
    }

    /// `noise_convs[i]` kernel: `2·stride` for stride > 1, else 1.
    pub fn noise_kernel(&self, i: u64) -> u64 {
        let stride = self.noise_strides.get(i as usize).copied().unwrap_or(1);
        if stride > 1 {
            2 * stride
        } else {
            1
        }
    }

    /// `noise_res[i]` kernel: 7 after the first upsample, 11 after the last.
    pub fn noise_res_kernel(&self, i: u64) -> u64 {
        NOISE_RES_KERNELS[usize::from(i + 1 == self.n_upsamples)]
    }

    /// `ups[i]` kernel (20, 12).
    pub fn upsample_kernel(&self, i: u64) -> u64 {
        UPSAMPLE_KERNELS[i as usize % UPSAMPLE_KERNELS.len()]
    }

    /// `resblocks[k]` kernel (3, 7, 11 per stage).
    pub fn resblock_kernel(&self, k: u64) -> u64 {
        RESBLOCK_KERNELS[(k % self.n_kernels) as usize % RESBLOCK_KERNELS.len()]
    }

    /// Members of every `AdaINResBlock1` (one per dilation).
    pub fn resblock_members(&self) -> usize {
        self.n_kernels as usize
    }

    /// Samples of the harmonic source's STFT per `generator_in` frame: `prod(upsample_rates)`.
    pub fn stft_frames_per_frame(&self) -> u64 {
        self.upsample_strides.iter().product()
    }

    /// Expected `ne` of a voice tensor: `[2·style_dim, voice_rows]` = `[256, 510]`.
    pub fn voice_ne(&self) -> [u64; 2] {
        [2 * self.dims.style_dim, self.dims.voice_rows]
    }
}
