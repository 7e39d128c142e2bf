#!/usr/bin/env python3
"""Unit tests of the converter's naming and typing rules (no model needed; stdlib unittest).

Run: .venv/bin/python scripts/test_convert_kokoro.py
The end-to-end check of a converted file against its ONNX source is `convert_kokoro.py check`,
which scripts/fetch-model runs after every conversion.
"""
import os
import sys
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import convert_kokoro as ck  # noqa: E402

TSV = os.path.join(HERE, "..", "..", "shared", "docs", "kokoro-gguf-tensors.tsv")


def tsv_rows():
    with open(TSV, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return [(r[0], [int(x) for x in r[1].strip("[]").split(",")], r[3]) for r in rows]


def fake_params():
    """Random KModel parameters with the shapes the TSV implies (torch layout)."""
    rng = np.random.default_rng(0)
    shapes = {}
    for name, ne, src in tsv_rows():
        shape = list(reversed(ne))
        if ".weights." in name or ".reverse_weights." in name or ".biases." in name or ".reverse_biases." in name:
            shape[0] *= 4  # one gate block of 4
        elif name.endswith(("_gamma_weight", "_beta_weight", "_gamma_bias", "_beta_bias")) or \
                any(s in name for s in (".gamma1_", ".beta1_", ".gamma2_", ".beta2_")) or \
                (".layers." in name and name.endswith(("gamma_weight", "beta_weight", "gamma_bias", "beta_bias"))):
            shape[0] *= 2  # fc halves
        elif name.endswith("token_type_embd"):
            shape = [2] + shape
        shapes[src] = tuple(shape)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


class LayoutTests(unittest.TestCase):
    def test_layout_matches_the_tsv(self):
        prov = {}
        layout = ck.gguf_layout(fake_params(), prov)
        rows = tsv_rows()
        self.assertEqual([(n, list(reversed(a.shape))) for n, a in layout], [(n, ne) for n, ne, _ in rows])
        self.assertEqual({n: prov[n] for n, _, _ in rows}, {n: s for n, _, s in rows})
        self.assertEqual(sum(a.size for _, a in layout), 81_140_536)
        self.assertEqual(sum(len(n) == 64 for n, _ in layout), 24)

    def test_lstm_gates_and_halves(self):
        p = fake_params()
        layout = dict(ck.gguf_layout(p))
        w = p["text_encoder.lstm.weight_ih_l0"]  # torch gate order i, f, g, o
        for gi in range(4):
            np.testing.assert_array_equal(layout[f"kokoro.text_encoder.lstm.0.weights.{2 * gi}"], w[gi * 256:(gi + 1) * 256])
        b = p["decoder.encode.norm1.fc.bias"]
        np.testing.assert_array_equal(layout["kokoro.decoder.encoder_block.norm1_beta_bias"], b[514:])
        np.testing.assert_array_equal(layout["kokoro.albert.token_type_embd"], p["bert.embeddings.token_type_embeddings.weight"][0])

    def test_missing_parameter_is_named(self):
        p = fake_params()
        del p["decoder.generator.conv_post.bias"]
        with self.assertRaisesRegex(ck.ConvertError, "decoder.generator.conv_post.bias"):
            ck.gguf_layout(p)

    def test_onnx_gate_order(self):
        w = np.arange(8, dtype=np.float32).reshape(8, 1)  # blocks i, o, f, c with H = 2
        np.testing.assert_array_equal(ck._onnx_gates_to_torch(w, 2).ravel(), [0, 1, 4, 5, 6, 7, 2, 3])


class TypeRuleTests(unittest.TestCase):
    def test_counts_follow_ttscpp_quantizer(self):
        names = [n for n, _, _ in tsv_rows()]
        q8 = [ck.tensor_type_name(n, "q8_0") for n in names]
        self.assertEqual((q8.count("q8_0"), q8.count("f16"), q8.count("f32")), (104, 95, 548))
        f16 = [ck.tensor_type_name(n, "f16") for n in names]
        self.assertEqual((f16.count("f16"), f16.count("f32")), (199, 548))
        self.assertEqual(ck.tensor_type_name("kokoro.voice_tensors.jf_alpha", "q8_0"), "f32")

    def test_roundtrip_error_bounds(self):
        x = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)
        self.assertTrue(np.array_equal(ck.roundtrip(x, "f32"), x))
        self.assertLess(np.max(np.abs(ck.roundtrip(x, "f16") - x)), 2e-3)
        blocks = x.reshape(-1, 32)
        err = np.abs(ck.roundtrip(x, "q8_0") - x).reshape(-1, 32)
        self.assertTrue(np.all(err <= np.max(np.abs(blocks), axis=1, keepdims=True) / 127 * 0.51 + 1e-6))


class VocabTests(unittest.TestCase):
    def test_default_vocab(self):
        tokens = ck.load_vocab(None)
        self.assertEqual(len(tokens), 178)
        self.assertEqual(sum(1 for t in tokens if t), 114)
        self.assertEqual((tokens[0], tokens[16], tokens[92], tokens[49], tokens[177]), ("", " ", "\u0261", "", "\u1d7b"))
        self.assertTrue(all(len(t) <= 1 for t in tokens))


if __name__ == "__main__":
    unittest.main()
