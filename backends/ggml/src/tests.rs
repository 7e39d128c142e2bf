//! Tiny graphs with hand-computed or naive-Rust reference values, and one test per checked
//! failure mode (each must come back as `Err`, never abort the test process).

use std::sync::{Arc, Mutex};

use crate::*;

fn ctx() -> Context {
    Context::new(ContextParams::default().with_n_tensors(256).with_graphs(1, 256)).unwrap()
}

fn input<'a>(ctx: &'a Context, name: &str, ne: &[i64]) -> Tensor<'a> {
    ctx.new_tensor(GgmlType::F32, ne)
        .unwrap()
        .set_name(name)
        .unwrap()
        .set_input()
        .unwrap()
}

/// Builds a graph for `out`, sets `inputs`, computes with `n_threads` and returns `out`.
fn run(
    ctx: &Context,
    n_threads: usize,
    inputs: &[(Tensor<'_>, &[f32])],
    out: Tensor<'_>,
) -> Result<Vec<f32>> {
    let dev = ComputeDevice::cpu(n_threads)?;
    let out = out.set_output()?;
    let mut g = ctx.new_graph(256)?;
    g.build_forward_expand(out)?;
    let mut alloc = GraphAllocator::new(&dev)?;
    let mut r = alloc.alloc(&g)?;
    for (t, d) in inputs {
        r.set_f32(*t, d)?;
    }
    r.compute()?;
    r.get_f32(out)
}

fn seq(n: usize, scale: f32, offset: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f32) * 0.37 + offset).sin() * scale)
        .collect()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "element {i}: {x} vs {y}");
    }
}

#[test]
fn versions() {
    assert_eq!(GGML_VERSION, "0.26.0");
    assert_eq!(LLAMA_CPP_SYS_VERSION, "0.1.161");
    let rt = ggml_runtime_version();
    assert!(rt.contains(GGML_VERSION), "runtime ggml version {rt:?}");
}

#[test]
fn add_broadcasts_b_over_a() {
    let ctx = ctx();
    let a = input(&ctx, "a", &[3, 2]);
    let b = input(&ctx, "b", &[3, 1]);
    let y = ctx.add(a, b).unwrap();
    let out = run(
        &ctx,
        1,
        &[(a, &[1., 2., 3., 4., 5., 6.]), (b, &[10., 20., 30.])],
        y,
    )
    .unwrap();
    assert_eq!(out, vec![11., 22., 33., 14., 25., 36.]);
}

#[test]
fn mul_mat_is_b_times_a_transposed() {
    // a: ne [k=2, n=3]; b: ne [k=2, m=2]; r: ne [n=3, m=2], r[i, j] = Σ_k a[k, i]·b[k, j].
    let ctx = ctx();
    let a = input(&ctx, "a", &[2, 3]);
    let b = input(&ctx, "b", &[2, 2]);
    let y = ctx.mul_mat(a, b).unwrap();
    assert_eq!(y.ne(), [3, 2, 1, 1]);
    let av = [1., 2., 3., 4., 5., 6.]; // rows of a: [1,2], [3,4], [5,6]
    let bv = [1., 10., 100., 1000.]; // rows of b: [1,10], [100,1000]
    let out = run(&ctx, 1, &[(a, &av), (b, &bv)], y).unwrap();
    assert_eq!(out, vec![21., 43., 65., 2100., 4300., 6500.]);
}

/// Naive PyTorch-style Conv1d: w (Cout, Cin, K), x (N, Cin, L) → (N, Cout, Lout), all row-major.
#[allow(clippy::too_many_arguments)]
fn naive_conv1d(
    w: &[f32],
    x: &[f32],
    n: usize,
    cin: usize,
    cout: usize,
    k: usize,
    l: usize,
    s: usize,
    p: usize,
    d: usize,
) -> Vec<f32> {
    let lout = (l + 2 * p - d * (k - 1) - 1) / s + 1;
    let mut y = vec![0f32; n * cout * lout];
    for b in 0..n {
        for o in 0..cout {
            for t in 0..lout {
                let mut acc = 0f32;
                for c in 0..cin {
                    for j in 0..k {
                        let pos = (t * s + j * d) as i64 - p as i64;
                        if pos >= 0 && (pos as usize) < l {
                            acc += w[(o * cin + c) * k + j] * x[(b * cin + c) * l + pos as usize];
                        }
                    }
                }
                y[(b * cout + o) * lout + t] = acc;
            }
        }
    }
    y
}

#[test]
fn conv_1d_via_im2col_matches_naive() {
    for &(n, s, p, d) in &[
        (1usize, 1usize, 1usize, 1usize),
        (1, 2, 2, 2),
        (2, 2, 1, 1),
        (3, 1, 0, 3),
    ] {
        let (cin, cout, k, l) = (3usize, 4usize, 3usize, 11usize);
        let ctx = ctx();
        let w = input(&ctx, "w", &[k as i64, cin as i64, cout as i64]);
        let x = input(&ctx, "x", &[l as i64, cin as i64, n as i64]);
        let y = ctx.conv_1d(w, x, s, p, d).unwrap();
        let wv = seq(k * cin * cout, 1.0, 0.1);
        let xv = seq(l * cin * n, 2.0, 0.7);
        let out = run(&ctx, 2, &[(w, &wv), (x, &xv)], y).unwrap();
        let lout = (l + 2 * p - d * (k - 1) - 1) / s + 1;
        assert_eq!(y.ne(), [lout as i64, cout as i64, n as i64, 1]);
        assert_close(&out, &naive_conv1d(&wv, &xv, n, cin, cout, k, l, s, p, d), 1e-5);
    }
}

#[test]
fn conv_1d_direct_matches_naive_on_every_thread_count() {
    for &(s, p, d, threads) in &[
        (1usize, 1usize, 1usize, 1usize),
        (2, 2, 2, 2),
        (1, 0, 3, 3),
        (6, 3, 1, 2),
        (1, 7, 1, 4),
    ] {
        let (cin, cout, k, l) = (3usize, 5usize, 3usize, 13usize);
        let ctx = ctx();
        let w = input(&ctx, "w", &[k as i64, cin as i64, cout as i64]);
        let x = input(&ctx, "x", &[l as i64, cin as i64]);
        let y = ctx.conv_1d_direct(w, x, s, p, d).unwrap();
        let wv = seq(k * cin * cout, 1.0, 0.1);
        let xv = seq(l * cin, 2.0, 0.7);
        let out = run(&ctx, threads, &[(w, &wv), (x, &xv)], y).unwrap();
        let lout = (l + 2 * p - d * (k - 1) - 1) / s + 1;
        assert_eq!(y.ne(), [lout as i64, cout as i64, 1, 1]);
        assert_close(&out, &naive_conv1d(&wv, &xv, 1, cin, cout, k, l, s, p, d), 1e-5);
    }
    // Refused before any compute: a kernel longer than the padded input, F16 data, a batch.
    let ctx = ctx();
    let w = input(&ctx, "w", &[9, 2, 2]);
    let x = input(&ctx, "x", &[4, 2]);
    assert!(matches!(
        ctx.conv_1d_direct(w, x, 1, 2, 1),
        Err(GgmlError::Shape { .. })
    ));
    let xb = input(&ctx, "xb", &[12, 2, 2]);
    assert!(matches!(
        ctx.conv_1d_direct(w, xb, 1, 0, 1),
        Err(GgmlError::Shape { .. })
    ));
    let xh = ctx.cast(input(&ctx, "xh", &[12, 2]), GgmlType::F16).unwrap();
    assert!(matches!(
        ctx.conv_1d_direct(w, xh, 1, 0, 1),
        Err(GgmlError::Type { .. })
    ));
}

/// `ConvTranspose1d` by the definition: weight `(C_in, C_out, K)`, input `[C_in][L]`.
fn naive_conv_transpose1d(
    w: &[f32],
    x: &[f32],
    cin: usize,
    cout: usize,
    k: usize,
    l: usize,
    s: usize,
) -> Vec<f32> {
    let lout = (l - 1) * s + k;
    let mut y = vec![0f32; cout * lout];
    for c in 0..cin {
        for o in 0..cout {
            for t in 0..l {
                for j in 0..k {
                    y[o * lout + t * s + j] += x[c * l + t] * w[(c * cout + o) * k + j];
                }
            }
        }
    }
    y
}

#[test]
fn direct_convs_widen_16_bit_kernels_on_every_thread_count() {
    // Kernel values exact in f16 (multiples of 1/8 below 2), so the widened kernel is
    // the f32 one and the results match the f32 definitions to f32 rounding.
    let exact = |n: usize| -> Vec<f32> { (0..n).map(|i| ((i * 7 % 17) as f32 - 8.0) * 0.125).collect() };
    for ty in [GgmlType::F16] {
        for threads in 1..=3 {
            let (cin, cout, k, l, s, p, d) = (3usize, 5usize, 3usize, 13usize, 1usize, 2usize, 2usize);
            let ctx = ctx();
            let w = input(&ctx, "w", &[k as i64, cin as i64, cout as i64]);
            let x = input(&ctx, "x", &[l as i64, cin as i64]);
            let y = ctx.conv_1d_direct(ctx.cast(w, ty).unwrap(), x, s, p, d).unwrap();
            let (wv, xv) = (exact(k * cin * cout), seq(l * cin, 2.0, 0.7));
            let out = run(&ctx, threads, &[(w, &wv), (x, &xv)], y).unwrap();
            assert_close(&out, &naive_conv1d(&wv, &xv, 1, cin, cout, k, l, s, p, d), 1e-5);

            let (cin, cout, k, l, s) = (2usize, 3usize, 4usize, 5usize, 2usize);
            let ctx = self::ctx();
            let w = input(&ctx, "w", &[k as i64, cout as i64, cin as i64]);
            let x = input(&ctx, "x", &[l as i64, cin as i64]);
            let y = ctx
                .conv_transpose_1d_direct(ctx.cast(w, ty).unwrap(), x, s)
                .unwrap();
            let (wv, xv) = (exact(k * cout * cin), seq(l * cin, 1.5, 0.9));
            let out = run(&ctx, threads, &[(w, &wv), (x, &xv)], y).unwrap();
            assert_close(&out, &naive_conv_transpose1d(&wv, &xv, cin, cout, k, l, s), 1e-5);
        }
    }
    // A quantized kernel is refused at build time.
    let ctx = ctx();
    let w = ctx.new_tensor(GgmlType::Q8_0, &[32, 2, 2]).unwrap();
    let x = input(&ctx, "x", &[40, 2]);
    assert!(matches!(
        ctx.conv_1d_direct(w, x, 1, 0, 1),
        Err(GgmlError::Type { .. })
    ));
}

#[test]
fn conv_transpose_1d_matches_naive() {
    // torch ConvTranspose1d(Cin=2, Cout=3, K=4, stride=2), weight (Cin, Cout, K) = ggml [K, Cout, Cin].
    let (cin, cout, k, l, s) = (2usize, 3usize, 4usize, 5usize, 2usize);
    let ctx = ctx();
    let w = input(&ctx, "w", &[k as i64, cout as i64, cin as i64]);
    let x = input(&ctx, "x", &[l as i64, cin as i64]);
    let y = ctx.conv_transpose_1d(w, x, s).unwrap();
    let wv = seq(k * cout * cin, 1.0, 0.3);
    let xv = seq(l * cin, 1.5, 0.9);
    let out = run(&ctx, 1, &[(w, &wv), (x, &xv)], y).unwrap();
    let direct: Vec<Vec<f32>> = (1..=3)
        .map(|threads| {
            let ctx = self::ctx();
            let w = input(&ctx, "w", &[k as i64, cout as i64, cin as i64]);
            let x = input(&ctx, "x", &[l as i64, cin as i64]);
            let yd = ctx.conv_transpose_1d_direct(w, x, s).unwrap();
            assert_eq!(yd.ne(), y.ne());
            run(&ctx, threads, &[(w, &wv), (x, &xv)], yd).unwrap()
        })
        .collect();
    let want = naive_conv_transpose1d(&wv, &xv, cin, cout, k, l, s);
    assert_close(&out, &want, 1e-5);
    for d in &direct {
        assert_close(d, &want, 1e-5);
    }
}

#[test]
fn cumsum_unary_and_pad_reflect() {
    let ctx = ctx();
    let a = input(&ctx, "a", &[6]);
    let y = ctx.cumsum(a).unwrap();
    let out = run(&ctx, 1, &[(a, &[1., 2., 3., 4., 5., 6.])], y).unwrap();
    assert_eq!(out, vec![1., 3., 6., 10., 15., 21.]);

    let ctx = self::ctx();
    let a = input(&ctx, "a", &[4]);
    let y = ctx.pad_reflect_1d(a, 2, 1).unwrap();
    let out = run(&ctx, 1, &[(a, &[1., 2., 3., 4.])], y).unwrap();
    assert_eq!(out, vec![3., 2., 1., 2., 3., 4., 3.]);

    let ctx = self::ctx();
    let a = input(&ctx, "a", &[3]);
    let s = ctx.sin(a).unwrap();
    let c = ctx.cos(a).unwrap();
    let e = ctx.exp(a).unwrap();
    let y = ctx.concat(ctx.concat(s, c, 0).unwrap(), e, 0).unwrap();
    let v = [0.0f32, 0.5, -1.25];
    let out = run(&ctx, 1, &[(a, &v)], y).unwrap();
    let want: Vec<f32> = v
        .iter()
        .map(|x| x.sin())
        .chain(v.iter().map(|x| x.cos()))
        .chain(v.iter().map(|x| x.exp()))
        .collect();
    assert_close(&out, &want, 1e-6);
}

#[test]
fn get_rows_gathers_and_checks_indices() {
    let ctx = ctx();
    let table = input(&ctx, "table", &[2, 3]);
    let idx = ctx
        .new_tensor_1d(GgmlType::I32, 4)
        .unwrap()
        .set_name("idx")
        .unwrap()
        .set_input()
        .unwrap();
    let y = ctx.get_rows(table, idx).unwrap().set_output().unwrap();
    let dev = ComputeDevice::cpu(1).unwrap();
    let mut g = ctx.new_graph(16).unwrap();
    g.build_forward_expand(y).unwrap();
    let mut alloc = GraphAllocator::new(&dev).unwrap();
    let mut r = alloc.alloc(&g).unwrap();
    r.set_f32(table, &[0., 1., 10., 11., 20., 21.]).unwrap();
    let err = r.set_i32(idx, &[0, 3, 1, 1]).unwrap_err();
    assert!(
        matches!(
            err,
            GgmlError::IndexOutOfRange {
                value: 3,
                position: 1,
                rows: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        r.set_i32(idx, &[0, -1, 1, 1]),
        Err(GgmlError::IndexOutOfRange { .. })
    ));
    // Compute refuses while the index input is unset (a failed set does not count).
    assert!(matches!(r.compute(), Err(GgmlError::TensorUse { .. })));
    r.set_i32(idx, &[2, 0, 1, 2]).unwrap();
    r.compute().unwrap();
    assert_eq!(r.get_f32(y).unwrap(), vec![20., 21., 0., 1., 10., 11., 20., 21.]);
}

#[test]
fn views_permute_reshape_interpolate() {
    let ctx = ctx();
    let a = input(&ctx, "a", &[3, 2]); // rows [0,1,2], [3,4,5]
    let t = ctx.cont(ctx.transpose(a).unwrap()).unwrap(); // [2, 3]: rows [0,3], [1,4], [2,5]
    let v = ctx.view(t, &[2, 2], &[8], 8).unwrap(); // rows 1..3 of t
    let v = ctx.cont(v).unwrap();
    let r = ctx.reshape(v, &[4]).unwrap();
    let up = ctx.interpolate(r, [8, 1, 1, 1], ScaleMode::Nearest).unwrap();
    let out = run(&ctx, 1, &[(a, &[0., 1., 2., 3., 4., 5.])], up).unwrap();
    assert_eq!(out, vec![1., 1., 4., 4., 2., 2., 5., 5.]);
}

fn atan2_graph<'a>(ctx: &'a Context, y: Tensor<'a>, x: Tensor<'a>) -> Tensor<'a> {
    ctx.map_custom2(y, x, Split::Outer(1), |args: CustomArgs<'_>| {
        let start = args.blocks.start * args.block_len;
        for (i, d) in args.dst.iter_mut().enumerate() {
            *d = args.srcs[0].data[start + i].atan2(args.srcs[1].data[start + i]);
        }
    })
    .unwrap()
}

#[test]
fn custom_atan2_matches_rust_on_1_and_4_threads() {
    let (n0, n1) = (7usize, 5usize);
    let yv = seq(n0 * n1, 1.0, 0.2);
    let xv = seq(n0 * n1, 1.0, 1.9);
    let want: Vec<f32> = yv.iter().zip(&xv).map(|(y, x)| y.atan2(*x)).collect();
    let mut results = Vec::new();
    for threads in [1, 4] {
        let ctx = ctx();
        let y = input(&ctx, "y", &[n0 as i64, n1 as i64]);
        let x = input(&ctx, "x", &[n0 as i64, n1 as i64]);
        let out = run(&ctx, threads, &[(y, &yv), (x, &xv)], atan2_graph(&ctx, y, x)).unwrap();
        assert_eq!(out, want);
        results.push(out);
    }
    assert_eq!(results[0], results[1]);
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// One LSTM direction over pre-computed input projections: gates_x [4H, T] (i, f, g, o),
/// w_hh [H, 4H] (ggml order: ne0 = H), returns h [H, T].
fn lstm_reference(gx: &[f32], w_hh: &[f32], h: usize, t: usize) -> Vec<f32> {
    let (mut hs, mut c) = (vec![0f32; h], vec![0f32; h]);
    let mut out = vec![0f32; h * t];
    for step in 0..t {
        let mut g = gx[step * 4 * h..(step + 1) * 4 * h].to_vec();
        for (r, gr) in g.iter_mut().enumerate() {
            *gr += (0..h).map(|k| w_hh[r * h + k] * hs[k]).sum::<f32>();
        }
        for j in 0..h {
            let (i, f, gg, o) = (
                sigmoid(g[j]),
                sigmoid(g[h + j]),
                g[2 * h + j].tanh(),
                sigmoid(g[3 * h + j]),
            );
            c[j] = f * c[j] + i * gg;
            hs[j] = o * c[j].tanh();
        }
        out[step * h..(step + 1) * h].copy_from_slice(&hs);
    }
    out
}

#[test]
fn custom_lstm_recurrence_matches_rust() {
    let (h, t, inp) = (4usize, 6usize, 3usize);
    let w_ihv = seq(4 * h * inp, 0.5, 0.4);
    let w_hhv = seq(4 * h * h, 0.5, 1.3);
    let xv = seq(inp * t, 1.0, 2.2);
    // Reference: input projection in Rust, then the recurrence.
    let mut gx = vec![0f32; 4 * h * t];
    for s in 0..t {
        for r in 0..4 * h {
            gx[s * 4 * h + r] = (0..inp).map(|k| w_ihv[r * inp + k] * xv[s * inp + k]).sum();
        }
    }
    let want = lstm_reference(&gx, &w_hhv, h, t);
    for threads in [1, 3] {
        let ctx = ctx();
        let w_ih = input(&ctx, "w_ih", &[inp as i64, 4 * h as i64]);
        let w_hh = input(&ctx, "w_hh", &[h as i64, 4 * h as i64]);
        let x = input(&ctx, "x", &[inp as i64, t as i64]);
        let gates = ctx.mul_mat(w_ih, x).unwrap(); // [4H, T]
        let hh = h;
        let y = ctx
            .custom(
                [h as i64, t as i64, 1, 1],
                &[gates, w_hh],
                Split::Whole,
                move |args: CustomArgs<'_>| {
                    let tt = args.srcs[0].ne[1];
                    let r = lstm_reference(args.srcs[0].data, args.srcs[1].data, hh, tt);
                    args.dst.copy_from_slice(&r);
                },
            )
            .unwrap();
        let out = run(&ctx, threads, &[(w_ih, &w_ihv), (w_hh, &w_hhv), (x, &xv)], y).unwrap();
        assert_close(&out, &want, 1e-5);
    }
}

#[test]
fn custom_op_panic_is_an_error() {
    let ctx = ctx();
    let a = input(&ctx, "a", &[4, 4]);
    let y = ctx
        .map_custom1(a, Split::Outer(1), |_args: CustomArgs<'_>| panic!("boom"))
        .unwrap()
        .set_name("panicky")
        .unwrap();
    let err = run(&ctx, 2, &[(a, &[0.0; 16])], y).unwrap_err();
    match err {
        GgmlError::CustomOpPanic { op, message } => {
            assert_eq!(op, "panicky");
            assert_eq!(message, "boom");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn one_and_several_threads_agree() {
    let build_and_run = |threads: usize| {
        let ctx = ctx();
        let w = input(&ctx, "w", &[5, 8, 16]);
        let x = input(&ctx, "x", &[64, 8]);
        let m = input(&ctx, "m", &[16, 33]);
        let c = ctx.conv_1d(w, x, 2, 2, 1).unwrap(); // [31, 16]
        let c = ctx.leaky_relu(c, 0.2).unwrap();
        let c = ctx.cont(ctx.transpose(c).unwrap()).unwrap(); // [16, 31]
        let y = ctx.mul_mat(m, c).unwrap(); // [33, 31]
        let y = ctx.norm(y, 1e-5).unwrap();
        let y = ctx.soft_max_ext(y, None, 0.5).unwrap();
        run(
            &ctx,
            threads,
            &[
                (w, &seq(5 * 8 * 16, 0.3, 0.0)),
                (x, &seq(64 * 8, 1.0, 0.5)),
                (m, &seq(16 * 33, 0.2, 0.9)),
            ],
            y,
        )
        .unwrap()
    };
    let one = build_and_run(1);
    assert_eq!(one, build_and_run(2));
    assert_eq!(one, build_and_run(4));
}

#[test]
fn shape_errors_are_errors_not_aborts() {
    let ctx = ctx();
    let a = input(&ctx, "a", &[4, 3]);
    let b = input(&ctx, "b", &[5, 3]);
    let c = input(&ctx, "c", &[3, 2]);
    let i = ctx.new_tensor_1d(GgmlType::I32, 2).unwrap();
    let shape = |r: Result<Tensor<'_>>| matches!(r, Err(GgmlError::Shape { .. }));
    assert!(shape(ctx.mul_mat(a, b)));
    assert!(shape(ctx.add(a, b)));
    assert!(shape(ctx.mul(a, c)));
    assert!(shape(ctx.concat(a, c, 0)));
    assert!(ctx.concat(a, b, 0).is_ok());
    assert!(matches!(ctx.concat(a, b, 4), Err(GgmlError::Argument { .. })));
    assert!(shape(ctx.reshape(a, &[5, 2])));
    assert!(shape(ctx.view(a, &[4, 4], &[16], 0)));
    assert!(shape(ctx.view(a, &[2], &[], 44)));
    assert!(ctx.view(a, &[2], &[], 40).is_ok());
    assert!(shape(ctx.repeat(b, a)));
    assert!(matches!(
        ctx.permute(a, [0, 1, 1, 3]),
        Err(GgmlError::Argument { .. })
    ));
    let k = input(&ctx, "k", &[7, 3, 2]);
    let x = input(&ctx, "x", &[5, 3]);
    assert!(shape(ctx.conv_1d(k, x, 1, 0, 1))); // kernel span 7 > 5
    let x4 = input(&ctx, "x4", &[8, 4]);
    assert!(shape(ctx.conv_1d(k, x4, 1, 0, 1))); // C_in 4 vs 3
    assert!(matches!(
        ctx.conv_1d(k, x, 0, 3, 1),
        Err(GgmlError::Argument { .. })
    ));
    let kt = input(&ctx, "kt", &[4, 2, 3]);
    assert!(shape(ctx.conv_transpose_1d(kt, input(&ctx, "x3", &[5, 3, 2]), 2)));
    assert!(shape(ctx.conv_transpose_1d(kt, input(&ctx, "x2", &[5, 2]), 2)));
    assert!(shape(ctx.pad_reflect_1d(a, 4, 0)));
    assert!(shape(
        ctx.get_rows(a, ctx.new_tensor_2d(GgmlType::I32, 2, 2).unwrap())
    ));
    assert!(matches!(ctx.get_rows(a, a), Err(GgmlError::Type { .. })));
    assert!(matches!(ctx.sin(i), Err(GgmlError::Type { .. })));
    assert!(matches!(
        ctx.mul_mat(a, ctx.transpose(a).unwrap()),
        Err(GgmlError::Shape { .. } | GgmlError::Layout { .. })
    ));
    assert!(matches!(
        ctx.mul_mat(ctx.transpose(c).unwrap(), c),
        Err(GgmlError::Shape { .. } | GgmlError::Layout { .. })
    ));
    assert!(matches!(
        ctx.cumsum(ctx.transpose(a).unwrap()),
        Err(GgmlError::Layout { .. })
    ));
    assert!(shape(ctx.col2im_1d(input(&ctx, "cols", &[7, 3]), 2, 2, 0)));
    assert!(matches!(
        ctx.new_tensor(GgmlType::F32, &[0, 2]),
        Err(GgmlError::Shape { .. })
    ));
    assert!(matches!(
        ctx.new_tensor(GgmlType::Q8_0, &[30]),
        Err(GgmlError::Shape { .. })
    ));
    assert!(matches!(
        ctx.new_tensor(GgmlType::F32, &[i64::MAX, 4]),
        Err(GgmlError::Shape { .. })
    ));
    assert!(matches!(
        ctx.map_custom2(a, ctx.transpose(a).unwrap(), Split::Whole, |_| {}),
        Err(GgmlError::Layout { .. })
    ));
}

#[test]
fn context_and_graph_capacity_are_checked() {
    let ctx = Context::new(ContextParams::default().with_n_tensors(3).with_graphs(0, 1)).unwrap();
    let a = ctx.new_tensor_1d(GgmlType::F32, 4).unwrap();
    let b = ctx.add(a, a).unwrap();
    let c = ctx.add(b, a).unwrap();
    assert!(matches!(ctx.add(c, a), Err(GgmlError::ContextFull { .. })));
    assert!(matches!(ctx.new_graph(8), Err(GgmlError::ContextFull { .. })));

    let ctx = self::ctx();
    let a = input(&ctx, "a", &[4]);
    let mut cur = a;
    for _ in 0..5 {
        cur = ctx.sqr(cur).unwrap();
    }
    let mut g = ctx.new_graph(4).unwrap();
    assert!(matches!(
        g.build_forward_expand(cur),
        Err(GgmlError::GraphFull {
            kind: "nodes",
            needed: 5,
            capacity: 4
        })
    ));
    assert_eq!(g.n_nodes(), 0);
    let mut g = ctx.new_graph(5).unwrap();
    g.build_forward_expand(cur).unwrap();
    assert_eq!((g.n_nodes(), g.n_leafs()), (5, 1));
}

#[test]
fn names_longer_than_63_bytes_are_rejected() {
    let ctx = ctx();
    let t = ctx.new_tensor_1d(GgmlType::F32, 1).unwrap();
    let ok = "n".repeat(63);
    assert_eq!(t.set_name(&ok).unwrap().name(), ok);
    let long = "x".repeat(64);
    assert!(matches!(t.set_name(&long), Err(GgmlError::Name { .. })));
    assert_eq!(t.name(), ok, "a rejected name leaves the old one");
    assert!(matches!(t.set_name("a\0b"), Err(GgmlError::Name { .. })));
    let mut wb = WeightsBuilder::new();
    assert!(wb.add(&"w".repeat(64), GgmlType::F32, &[1]).is_err());
}

#[test]
fn compute_run_checks_inputs_and_outputs() {
    let ctx = ctx();
    let a = input(&ctx, "a", &[4]);
    let b = input(&ctx, "b", &[4]);
    let s = ctx.add(a, b).unwrap();
    let y = ctx.sqr(s).unwrap().set_output().unwrap();
    let dev = ComputeDevice::cpu(1).unwrap();
    let mut g = ctx.new_graph(16).unwrap();
    g.build_forward_expand(y).unwrap();
    let mut alloc = GraphAllocator::new(&dev).unwrap();
    let mut r = alloc.alloc(&g).unwrap();
    assert!(matches!(
        r.set_f32(a, &[1.0; 3]),
        Err(GgmlError::Size {
            expected: 4,
            actual: 3,
            ..
        })
    ));
    assert!(matches!(
        r.set_f32(s, &[1.0; 4]),
        Err(GgmlError::TensorUse { .. })
    ));
    r.set_f32(a, &[1.0, 2.0, 3.0, 4.0]).unwrap();
    assert!(
        matches!(r.compute(), Err(GgmlError::TensorUse { .. })),
        "b not set"
    );
    assert!(r.get_f32(y).is_err(), "read before compute");
    r.set_f32(b, &[1.0; 4]).unwrap();
    r.compute().unwrap();
    assert_eq!(r.get_f32(y).unwrap(), vec![4.0, 9.0, 16.0, 25.0]);
    assert!(
        matches!(r.get_f32(s), Err(GgmlError::TensorUse { .. })),
        "not an output"
    );
}

#[test]
fn weights_round_trip_and_compute() {
    let dev = ComputeDevice::cpu(2).unwrap();
    let mut wb = WeightsBuilder::new();
    wb.add("proj.weight", GgmlType::F32, &[2, 3])
        .unwrap()
        .add("proj.bias", GgmlType::F32, &[3])
        .unwrap();
    assert!(
        wb.add("proj.bias", GgmlType::F32, &[3]).is_err(),
        "duplicate name"
    );
    let mut w = wb.allocate(&dev).unwrap();
    assert_eq!(w.download("proj.bias").unwrap(), vec![0u8; 12], "zero-filled");
    let wv = [1f32, 2., 3., 4., 5., 6.];
    w.upload_f32("proj.weight", &wv).unwrap();
    w.upload_f32("proj.bias", &[0.5, 0.25, 0.125]).unwrap();
    let bytes: Vec<u8> = wv.iter().flat_map(|v| v.to_ne_bytes()).collect();
    assert_eq!(w.download("proj.weight").unwrap(), bytes);
    assert!(matches!(
        w.upload("proj.weight", &bytes[..20]),
        Err(GgmlError::Size {
            expected: 24,
            actual: 20,
            ..
        })
    ));
    assert!(matches!(w.tensor("nope"), Err(GgmlError::UnknownTensor(_))));
    assert!(
        w.tensor("proj.weight").unwrap().set_name("x").is_err(),
        "weights are frozen"
    );

    let w = Arc::new(w); // shared, read-only
    let ctx = ctx();
    let x = input(&ctx, "x", &[2, 2]);
    let y = ctx
        .add(
            ctx.mul_mat(w.tensor("proj.weight").unwrap(), x).unwrap(),
            w.tensor("proj.bias").unwrap(),
        )
        .unwrap();
    let out = run(&ctx, 2, &[(x, &[1., 0., 0., 1.])], y).unwrap();
    assert_eq!(out, vec![1.5, 3.25, 5.125, 2.5, 4.25, 6.125]);
}

#[repr(C, align(32))]
struct Aligned([f32; 16]);

#[test]
fn weights_wrap_host_memory_without_copy() {
    let dev = ComputeDevice::cpu(1).unwrap();
    let mut host = Aligned([0.0; 16]);
    for (i, v) in host.0.iter_mut().enumerate() {
        *v = i as f32;
    }
    let bytes: Vec<u8> = host.0.iter().flat_map(|v| v.to_ne_bytes()).collect();
    // Borrowed: the weights cannot outlive `host`.
    let data: &[u8] = {
        // SAFETY: `Aligned` is 64 bytes of plain f32s, so viewing it as bytes is valid.
        unsafe { std::slice::from_raw_parts(host.0.as_ptr().cast::<u8>(), 64) }
    };
    let mut wb = WeightsBuilder::new();
    wb.add_at("a", GgmlType::F32, &[4], 0)
        .unwrap()
        .add_at("b", GgmlType::F32, &[2, 2], 32)
        .unwrap();
    let mut w = wb.wrap_host(&dev, data).unwrap();
    assert_eq!(w.download("b").unwrap(), bytes[32..48].to_vec());
    assert!(
        w.upload("a", &bytes[..16]).is_err(),
        "wrapped host memory is read-only"
    );
    let ctx = ctx();
    let x = input(&ctx, "x", &[4]);
    let y = ctx.add(w.tensor("a").unwrap(), x).unwrap();
    assert_eq!(run(&ctx, 1, &[(x, &[1.0; 4])], y).unwrap(), vec![1., 2., 3., 4.]);
    drop(w);

    let mut bad = WeightsBuilder::new();
    bad.add_at("a", GgmlType::F32, &[4], 4).unwrap();
    assert!(bad.wrap_host(&dev, data).is_err(), "misaligned tensor offset");
    let mut oob = WeightsBuilder::new();
    oob.add_at("a", GgmlType::F32, &[16], 32).unwrap();
    assert!(oob.wrap_host(&dev, data).is_err(), "out of bounds");
    let mut unaligned = WeightsBuilder::new();
    unaligned.add_at("a", GgmlType::F32, &[1], 0).unwrap();
    assert!(unaligned.wrap_host(&dev, &data[4..]).is_err(), "unaligned base");

    // Owned: an Arc keeps the memory alive; the weights are 'static.
    let owner = Arc::new(Aligned(host.0));
    let mut wb = WeightsBuilder::new();
    wb.add_at("a", GgmlType::F32, &[16], 0).unwrap();
    let w: Weights<'static> = wb
        .wrap_host_owned(&dev, Arc::clone(&owner), |o: &Aligned| {
            // SAFETY: as above, plain f32s viewed as bytes, borrowed from `o`.
            unsafe { std::slice::from_raw_parts(o.0.as_ptr().cast::<u8>(), 64) }
        })
        .unwrap();
    drop(owner);
    assert_eq!(w.download("a").unwrap(), bytes);
}

#[test]
fn weights_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Weights<'static>>();
    fn assert_send<T: Send>() {}
    assert_send::<Context>();
    assert_send::<ComputeDevice>();
}

#[test]
fn scheduler_runs_on_cpu() {
    let dev = ComputeDevice::cpu(2).unwrap();
    assert_eq!(dev.kind(), DeviceKind::Cpu);
    assert!(ComputeDevice::available().iter().any(|n| n == "CPU"));
    let ctx = ctx();
    let a = input(&ctx, "a", &[3]);
    let y = ctx
        .scale(ctx.sqr(a).unwrap(), 2.0, 1.0)
        .unwrap()
        .set_output()
        .unwrap();
    let mut g = ctx.new_graph(16).unwrap();
    g.build_forward_expand(y).unwrap();
    let mut sched = Scheduler::new(&[&dev], 64).unwrap();
    let mut r = sched.alloc(&g).unwrap();
    r.set_f32(a, &[1., 2., 3.]).unwrap();
    r.compute().unwrap();
    assert_eq!(r.get_f32(y).unwrap(), vec![3., 9., 19.]);
    assert!(Scheduler::new(&[], 8).is_err());
}

/// `((2a + 1)²)²` as four nodes, so an abort check is asked more than once when it says "go on".
fn four_nodes(ctx: &Context) -> (Tensor<'_>, Tensor<'_>, Graph<'_>) {
    let a = input(ctx, "a", &[3]);
    let y = ctx
        .sqr(ctx.sqr(ctx.scale(a, 2.0, 1.0).unwrap()).unwrap())
        .unwrap();
    let y = ctx.scale(y, 1.0, 0.0).unwrap().set_output().unwrap();
    let mut g = ctx.new_graph(16).unwrap();
    g.build_forward_expand(y).unwrap();
    (a, y, g)
}

#[test]
fn compute_until_stops_between_nodes() {
    let dev = ComputeDevice::cpu(2).unwrap();
    let ctx = ctx();
    let (a, y, g) = four_nodes(&ctx);

    let mut alloc = GraphAllocator::new(&dev).unwrap();
    let mut r = alloc.alloc(&g).unwrap();
    r.set_f32(a, &[0., 1., 2.]).unwrap();
    assert!(matches!(r.compute_until(&|| true), Err(GgmlError::Aborted)));
    // The graph's ops may work in place on their inputs: set them again for each run.
    r.set_f32(a, &[0., 1., 2.]).unwrap();
    let asked = std::cell::Cell::new(0usize);
    r.compute_until(&|| {
        asked.set(asked.get() + 1);
        false
    })
    .unwrap();
    assert!(asked.get() >= 2, "asked {} times", asked.get());
    assert_eq!(r.get_f32(y).unwrap(), vec![1., 81., 625.]);
    // A panicking check counts as "abort"; the device works again afterwards.
    assert!(matches!(
        r.compute_until(&|| panic!("check failed")),
        Err(GgmlError::Aborted)
    ));
    r.set_f32(a, &[0., 1., 2.]).unwrap();
    r.compute().unwrap();
    assert_eq!(r.get_f32(y).unwrap(), vec![1., 81., 625.]);
    drop(r);

    // The scheduler path sets the check on its CPU backend too (a new context: a graph is
    // allocated once).
    let ctx = self::ctx();
    let (a, y, g) = four_nodes(&ctx);
    let mut sched = Scheduler::new(&[&dev], 64).unwrap();
    let mut r = sched.alloc(&g).unwrap();
    r.set_f32(a, &[0., 1., 2.]).unwrap();
    assert!(matches!(r.compute_until(&|| true), Err(GgmlError::Aborted)));
    r.set_f32(a, &[0., 1., 2.]).unwrap();
    r.compute_until(&|| false).unwrap();
    assert_eq!(r.get_f32(y).unwrap(), vec![1., 81., 625.]);
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(tracing::Level, String, String)>>>);

struct Capture(Captured);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        struct V(String);
        impl tracing::field::Visit for V {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut v = V(String::new());
        event.record(&mut v);
        let m = event.metadata();
        self.0
             .0
            .lock()
            .unwrap()
            .push((*m.level(), m.target().to_owned(), v.0));
    }
}

#[test]
fn ggml_log_goes_to_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(Capture(captured.clone()));
    crate::log::install();
    tracing::subscriber::with_default(subscriber, || {
        let path = c"/nonexistent/dir/model.gguf";
        let params = crate::sys::gguf_init_params {
            no_alloc: true,
            ctx: std::ptr::null_mut(),
        };
        // SAFETY: a valid C string and params; the call fails (and logs) without side effects.
        let g = unsafe { crate::sys::gguf_init_from_file(path.as_ptr(), params) };
        assert!(g.is_null());
    });
    let events = captured.0.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|(lvl, target, msg)| *lvl == tracing::Level::ERROR
                && target == "ggml"
                && msg.contains("failed to open GGUF file")),
        "{events:?}"
    );
}

#[test]
fn a_context_allocated_twice_is_an_error_not_a_crash() {
    let c = ctx();
    let x = input(&c, "x", &[4]);
    let y = c.sin(x).unwrap();
    let xd = [0.0, 1.0, 2.0, 3.0];
    let first = run(&c, 1, &[(x, &xd)], y).unwrap();
    assert_eq!(first[1], 1f32.sin());
    let err = run(&c, 1, &[(x, &xd)], y).unwrap_err();
    assert!(err.to_string().contains("new context"), "{err}");
}

#[test]
fn to_f32_converts_f16_and_q8_0_and_checks_sizes() {
    let f16: Vec<u8> = [0x3C00u16, 0xC000, 0x3800]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(GgmlType::F16.to_f32(&f16, 3).unwrap(), vec![1.0, -2.0, 0.5]);
    let mut q8 = 0x3800u16.to_le_bytes().to_vec(); // d = 0.5
    q8.extend((0..32).map(|i: i8| (i - 16) as u8));
    let want: Vec<f32> = (0..32).map(|i| 0.5 * (i - 16) as f32).collect();
    assert_eq!(GgmlType::Q8_0.to_f32(&q8, 32).unwrap(), want);
    assert!(GgmlType::Q8_0.to_f32(&q8, 16).is_err(), "half a block");
    assert!(GgmlType::Q8_0.to_f32(&q8[..33], 32).is_err(), "short data");
    assert!(GgmlType::F16.to_f32(&f16, 2).is_err(), "extra bytes");
}
