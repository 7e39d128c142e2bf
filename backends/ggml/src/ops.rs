//! Graph operations. Every method checks what ggml (graph construction *and* the CPU kernel)
//! would assert, and returns [`GgmlError`] instead of letting `GGML_ASSERT` abort the process.
//!
//! All methods build a new node in `self` (the graph's context); operands may come from longer
//! lived contexts (weights), which is why they take `Tensor<'a>` with `'a` the borrow of `self`.

use crate::context::{checked_elements, Context, Tensor};
use crate::error::{GgmlError, Result};
use crate::sys;
use crate::types::GgmlType;

/// Interpolation mode for [`Context::interpolate`] (`enum ggml_scale_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleMode {
    /// Nearest neighbour.
    Nearest,
    /// Linear in dims 0 and 1, half-pixel centres (PyTorch `align_corners=False`).
    Bilinear,
    /// Linear with `align_corners=True`.
    BilinearAlignCorners,
}

pub(crate) fn shape(t: &Tensor<'_>) -> String {
    let ne = t.ne();
    format!("[{}, {}, {}, {}]", ne[0], ne[1], ne[2], ne[3])
}

fn shape_err(op: &'static str, detail: String) -> GgmlError {
    GgmlError::Shape { op, detail }
}

fn arg_err(op: &'static str, detail: String) -> GgmlError {
    GgmlError::Argument { op, detail }
}

fn require_types(
    op: &'static str,
    operand: &'static str,
    t: &Tensor<'_>,
    allowed: &[GgmlType],
) -> Result<()> {
    match GgmlType::from_raw(t.raw_type()) {
        Some(ty) if allowed.contains(&ty) => Ok(()),
        _ => Err(GgmlError::Type {
            op,
            operand,
            ty: t.type_name(),
        }),
    }
}

fn require_f32(op: &'static str, operand: &'static str, t: &Tensor<'_>) -> Result<()> {
    require_types(op, operand, t, &[GgmlType::F32])
}

/// `nb[0] == type_size`: the CPU kernels read rows with unit stride.
fn require_dense_rows(op: &'static str, operand: &'static str, t: &Tensor<'_>) -> Result<()> {
    if t.nb()[0] != t.ty().type_size() {
        return Err(GgmlError::Layout {
            op,
            operand,
            requirement: "dense along ne[0] (nb[0] == type size)",
        });
    }
    Ok(())
}

fn require_contiguous(op: &'static str, operand: &'static str, t: &Tensor<'_>) -> Result<()> {
    if !t.is_contiguous() {
        return Err(GgmlError::Layout {
            op,
            operand,
            requirement: "contiguous (use cont first)",
        });
    }
    Ok(())
}

/// `ggml_can_repeat(small, big)`: every dim of `big` is a multiple of `small`'s.
fn can_repeat(small: &Tensor<'_>, big: &Tensor<'_>) -> bool {
    let (s, b) = (small.ne(), big.ne());
    (0..4).all(|d| b[d] % s[d] == 0)
}

fn i32_arg(op: &'static str, name: &str, v: i64) -> Result<i32> {
    i32::try_from(v).map_err(|_| arg_err(op, format!("{name} = {v} does not fit in i32")))
}

macro_rules! unary_op {
    ($(#[$doc:meta])* $name:ident, $cfn:ident) => {
        $(#[$doc])*
        ///
        /// `a` must be F32 with dense rows.
        ///
        /// # C equivalent
        #[doc = concat!("`", stringify!($cfn), "`")]
        pub fn $name<'a>(&'a self, a: Tensor<'a>) -> Result<Tensor<'a>> {
            const OP: &str = stringify!($name);
            require_f32(OP, "a", &a)?;
            require_dense_rows(OP, "a", &a)?;
            self.ensure_tensors(1)?;
            // SAFETY: live context with room for the result; `a` is a live F32 tensor with dense
            // rows, which is what the unary CPU kernel asserts.
            let p = unsafe { sys::$cfn(self.raw(), a.raw()) };
            self.wrap(OP, p)
        }
    };
}

macro_rules! binary_op {
    ($(#[$doc:meta])* $name:ident, $cfn:ident) => {
        $(#[$doc])*
        ///
        /// `b` is broadcast over `a` (`ggml_can_repeat(b, a)`: every `a.ne[d]` is a multiple of
        /// `b.ne[d]`); the result has `a`'s shape. Both F32; `a` with dense rows.
        ///
        /// # C equivalent
        #[doc = concat!("`", stringify!($cfn), "`")]
        pub fn $name<'a>(&'a self, a: Tensor<'a>, b: Tensor<'a>) -> Result<Tensor<'a>> {
            const OP: &str = stringify!($name);
            require_f32(OP, "a", &a)?;
            require_f32(OP, "b", &b)?;
            require_dense_rows(OP, "a", &a)?;
            if !can_repeat(&b, &a) {
                return Err(shape_err(OP, format!("b {} cannot be broadcast to a {}", shape(&b), shape(&a))));
            }
            self.ensure_tensors(1)?;
            // SAFETY: live context with room; `ggml_can_repeat(b, a)`, F32/F32 and dense rows of
            // `a` checked, which is what graph construction and the CPU kernel assert.
            let p = unsafe { sys::$cfn(self.raw(), a.raw(), b.raw()) };
            self.wrap(OP, p)
        }
    };
}

impl Context {
    binary_op!(
        /// Element-wise `a + b`.
        add, ggml_add
    );
    binary_op!(
        /// Element-wise `a - b`.
        sub, ggml_sub
    );
    binary_op!(
        /// Element-wise `a * b`.
        mul, ggml_mul
    );
    binary_op!(
        /// Element-wise `a / b`.
        div, ggml_div
    );

    unary_op!(
        /// Element-wise sine.
        sin, ggml_sin
    );
    unary_op!(
        /// Element-wise cosine.
        cos, ggml_cos
    );
    unary_op!(
        /// Element-wise `exp`.
        exp, ggml_exp
    );
    unary_op!(
        /// Element-wise natural log.
        log, ggml_log
    );
    unary_op!(
        /// Element-wise `tanh`.
        tanh, ggml_tanh
    );
    unary_op!(
        /// Element-wise logistic sigmoid.
        sigmoid, ggml_sigmoid
    );
    unary_op!(
        /// GELU, tanh approximation (`gelu_new`).
        gelu, ggml_gelu
    );
    unary_op!(
        /// GELU with the exact erf.
        gelu_erf, ggml_gelu_erf
    );
    unary_op!(
        /// ReLU.
        relu, ggml_relu
    );
    unary_op!(
        /// Element-wise square.
        sqr, ggml_sqr
    );
    unary_op!(
        /// Element-wise square root.
        sqrt, ggml_sqrt
    );
    unary_op!(
        /// Element-wise `|x|`.
        abs, ggml_abs
    );
    unary_op!(
        /// Element-wise `-x`.
        neg, ggml_neg
    );
    unary_op!(
        /// Heaviside step: 1 where `x > 0`, else 0.
        step, ggml_step
    );
    unary_op!(
        /// Element-wise floor.
        floor, ggml_floor
    );

    /// LeakyReLU with `negative_slope`. `a` F32, contiguous.
    ///
    /// # C equivalent
    /// `ggml_leaky_relu(ctx, a, negative_slope, false)`
    pub fn leaky_relu<'a>(&'a self, a: Tensor<'a>, negative_slope: f32) -> Result<Tensor<'a>> {
        const OP: &str = "leaky_relu";
        require_f32(OP, "a", &a)?;
        require_contiguous(OP, "a", &a)?;
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; F32 contiguous input as the CPU kernel requires.
        let p = unsafe { sys::ggml_leaky_relu(self.raw(), a.raw(), negative_slope, false) };
        self.wrap(OP, p)
    }

    /// `s · a + b` for scalars (`b = 0` is a plain scale). `a` F32, padded-1d layout.
    ///
    /// # C equivalent
    /// `ggml_scale_bias` (`ggml_scale` when `b == 0`)
    pub fn scale<'a>(&'a self, a: Tensor<'a>, s: f32, b: f32) -> Result<Tensor<'a>> {
        const OP: &str = "scale";
        require_f32(OP, "a", &a)?;
        let (ne, nb) = (a.ne(), a.nb());
        let padded_1d = nb[0] == 4 && nb[2] == nb[1] * ne[1] as usize && nb[3] == nb[2] * ne[2] as usize;
        if !padded_1d {
            return Err(GgmlError::Layout {
                op: OP,
                operand: "a",
                requirement: "padded 1-d (contiguous dims 1..3)",
            });
        }
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; `ggml_is_padded_1d(a)` checked above.
        let p = unsafe { sys::ggml_scale_bias(self.raw(), a.raw(), s, b) };
        self.wrap(OP, p)
    }

    /// Clamps every element to `[min, max]`. `a` F32.
    ///
    /// # C equivalent
    /// `ggml_clamp`
    pub fn clamp<'a>(&'a self, a: Tensor<'a>, min: f32, max: f32) -> Result<Tensor<'a>> {
        const OP: &str = "clamp";
        require_f32(OP, "a", &a)?;
        require_contiguous(OP, "a", &a)?;
        if min > max || min.is_nan() || max.is_nan() {
            return Err(arg_err(OP, format!("min {min} > max {max}")));
        }
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; F32 contiguous input.
        let p = unsafe { sys::ggml_clamp(self.raw(), a.raw(), min, max) };
        self.wrap(OP, p)
    }

    /// Matrix product with ggml's convention: for `a` `[k, n]` and `b` `[k, m]` the result is
    /// `[n, m]` with `r[i, j] = Σ_k a[k, i] · b[k, j]`, i.e. `r = b · aᵀ` in row-major terms
    /// (PyTorch `F.linear(b, a)` for a weight `a` of shape `(n, k)`). Dims 2 and 3 of `a` are
    /// broadcast over `b`'s.
    ///
    /// Checks: `a.ne[0] == b.ne[0]`, `b.ne[2] % a.ne[2] == 0`, `b.ne[3] % a.ne[3] == 0`, `a` not
    /// transposed and with dense rows; `b` F32 with dense rows; `a` F32, F16, BF16 or quantized.
    ///
    /// # C equivalent
    /// `ggml_mul_mat`
    pub fn mul_mat<'a>(&'a self, a: Tensor<'a>, b: Tensor<'a>) -> Result<Tensor<'a>> {
        const OP: &str = "mul_mat";
        let (na, nb_) = (a.ne(), b.ne());
        if na[0] != nb_[0] {
            return Err(shape_err(
                OP,
                format!(
                    "a {} and b {} differ in ne[0] ({} vs {})",
                    shape(&a),
                    shape(&b),
                    na[0],
                    nb_[0]
                ),
            ));
        }
        for d in 2..4 {
            if nb_[d] % na[d] != 0 {
                return Err(shape_err(
                    OP,
                    format!(
                        "a {} cannot be broadcast over b {} in ne[{d}] ({} vs {})",
                        shape(&a),
                        shape(&b),
                        na[d],
                        nb_[d]
                    ),
                ));
            }
        }
        if a.is_transposed() {
            return Err(GgmlError::Layout {
                op: OP,
                operand: "a",
                requirement: "not transposed (use cont)",
            });
        }
        if matches!(a.ty(), GgmlType::I8 | GgmlType::I16 | GgmlType::I32) {
            return Err(GgmlError::Type {
                op: OP,
                operand: "a",
                ty: a.type_name(),
            });
        }
        require_dense_rows(OP, "a", &a)?;
        require_f32(OP, "b", &b)?;
        require_dense_rows(OP, "b", &b)?;
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; `ggml_can_mul_mat(a, b)` and `!ggml_is_transposed(a)`
        // checked, plus the CPU kernel's type and stride requirements.
        let p = unsafe { sys::ggml_mul_mat(self.raw(), a.raw(), b.raw()) };
        self.wrap(OP, p)
    }

    /// Concatenates `a` and `b` along `dim` (0..=3); all other dims must match. Same type.
    ///
    /// # C equivalent
    /// `ggml_concat`
    pub fn concat<'a>(&'a self, a: Tensor<'a>, b: Tensor<'a>, dim: usize) -> Result<Tensor<'a>> {
        const OP: &str = "concat";
        if dim > 3 {
            return Err(arg_err(OP, format!("dim {dim} is not in 0..=3")));
        }
        if a.raw_type() != b.raw_type() {
            return Err(GgmlError::Type {
                op: OP,
                operand: "b (must match a)",
                ty: b.type_name(),
            });
        }
        require_types(OP, "a", &a, &[GgmlType::F32, GgmlType::F16, GgmlType::I32])?;
        let (na, nb_) = (a.ne(), b.ne());
        if let Some(d) = (0..4).find(|&d| d != dim && na[d] != nb_[d]) {
            return Err(shape_err(
                OP,
                format!(
                    "a {} and b {} differ in ne[{d}] ({} vs {}) (concat dim {dim})",
                    shape(&a),
                    shape(&b),
                    na[d],
                    nb_[d]
                ),
            ));
        }
        require_dense_rows(OP, "a", &a)?;
        require_dense_rows(OP, "b", &b)?;
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; dim in range, same types, other dims equal, dense
        // rows: everything graph construction and the CPU kernel assert.
        let p = unsafe { sys::ggml_concat(self.raw(), a.raw(), b.raw(), dim as i32) };
        self.wrap(OP, p)
    }

    /// Repeats `a` to the shape of `b` (`ggml_can_repeat(a, b)`).
    ///
    /// # C equivalent
    /// `ggml_repeat`
    pub fn repeat<'a>(&'a self, a: Tensor<'a>, b: Tensor<'a>) -> Result<Tensor<'a>> {
        self.repeat_4d(a, b.ne())
    }

    /// Repeats `a` to shape `ne` (every `ne[d]` a multiple of `a.ne[d]`). `a` F32.
    ///
    /// # C equivalent
    /// `ggml_repeat_4d`
    pub fn repeat_4d<'a>(&'a self, a: Tensor<'a>, ne: [i64; 4]) -> Result<Tensor<'a>> {
        const OP: &str = "repeat";
        require_f32(OP, "a", &a)?;
        let na = a.ne();
        if let Some(d) = (0..4).find(|&d| ne[d] < 1 || ne[d] % na[d] != 0) {
            return Err(shape_err(
                OP,
                format!("a {} cannot be repeated to {ne:?} (ne[{d}])", shape(&a)),
            ));
        }
        checked_elements(OP, &ne)?;
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; repeatability checked.
        let p = unsafe { sys::ggml_repeat_4d(self.raw(), a.raw(), ne[0], ne[1], ne[2], ne[3]) };
        self.wrap(OP, p)
    }

    /// Reshapes a contiguous tensor to `ne` (1..=4 dims, same element count). A view: no copy.
    ///
    /// # C equivalent
    /// `ggml_reshape_1d` .. `ggml_reshape_4d`
    pub fn reshape<'a>(&'a self, a: Tensor<'a>, ne: &[i64]) -> Result<Tensor<'a>> {
        const OP: &str = "reshape";
        if ne.is_empty() || ne.len() > 4 {
            return Err(arg_err(OP, format!("{} dimensions, expected 1..=4", ne.len())));
        }
        if ne.iter().any(|&n| n < 1) {
            return Err(shape_err(OP, format!("target {ne:?} has a dimension < 1")));
        }
        require_contiguous(OP, "a", &a)?;
        let n = checked_elements(OP, ne)?;
        if n != a.n_elements() {
            return Err(shape_err(
                OP,
                format!(
                    "a {} has {} elements, target {ne:?} has {n}",
                    shape(&a),
                    a.n_elements()
                ),
            ));
        }
        if ne[0] % a.ty().block_size() as i64 != 0 {
            return Err(shape_err(
                OP,
                format!("target ne[0] = {} is not a multiple of the block size", ne[0]),
            ));
        }
        self.ensure_tensors(1)?;
        let (c, r) = (self.raw(), a.raw());
        // SAFETY: live context with room; `a` contiguous and the element counts equal, which is
        // all ggml_reshape_* assert.
        let p = unsafe {
            match *ne {
                [n0] => sys::ggml_reshape_1d(c, r, n0),
                [n0, n1] => sys::ggml_reshape_2d(c, r, n0, n1),
                [n0, n1, n2] => sys::ggml_reshape_3d(c, r, n0, n1, n2),
                [n0, n1, n2, n3] => sys::ggml_reshape_4d(c, r, n0, n1, n2, n3),
                _ => std::ptr::null_mut(),
            }
        };
        self.wrap(OP, p)
    }

    /// A strided view into `a`: shape `ne` (1..=4 dims), byte strides `nb[1..]` for dims 1..
    /// (`nb[0]` is the element size), starting `offset` bytes into `a`. Every addressed byte must
    /// lie inside `a` (checked with the given strides, stricter than ggml's own check).
    /// Non-quantized types only.
    ///
    /// # C equivalent
    /// `ggml_view_1d` .. `ggml_view_4d`
    pub fn view<'a>(
        &'a self,
        a: Tensor<'a>,
        ne: &[i64],
        nb_rest: &[usize],
        offset: usize,
    ) -> Result<Tensor<'a>> {
        const OP: &str = "view";
        let nd = ne.len();
        if nd == 0 || nd > 4 || nb_rest.len() != nd - 1 {
            return Err(arg_err(
                OP,
                format!(
                    "{nd} dimensions with {} strides (need 1..=4 dims and dims-1 strides)",
                    nb_rest.len()
                ),
            ));
        }
        if ne.iter().any(|&n| n < 1) {
            return Err(shape_err(OP, format!("view shape {ne:?} has a dimension < 1")));
        }
        let ty = a.ty();
        if ty.block_size() != 1 {
            return Err(GgmlError::Type {
                op: OP,
                operand: "a",
                ty: a.type_name(),
            });
        }
        checked_elements(OP, ne)?;
        let es = ty.type_size();
        // Last byte addressed: offset + Σ (ne[d]-1)·nb[d] + element size.
        let mut end = offset as u128 + es as u128;
        end += (ne[0] as u128 - 1) * es as u128;
        for d in 1..nd {
            end += (ne[d] as u128 - 1) * nb_rest[d - 1] as u128;
        }
        if end > a.n_bytes() as u128 {
            return Err(shape_err(
                OP,
                format!("view {ne:?} strides {nb_rest:?} at offset {offset} reaches byte {end}, a {} has {} bytes", shape(&a), a.n_bytes()),
            ));
        }
        // ggml's own check: the dense size of the view from the offset fits the source base.
        let dense = ne.iter().fold(es as u128, |acc, &n| acc * n as u128);
        if offset as u128 + dense > a.n_bytes() as u128 {
            return Err(shape_err(
                OP,
                format!("view {ne:?} at offset {offset} exceeds a {}", shape(&a)),
            ));
        }
        self.ensure_tensors(1)?;
        let (c, r) = (self.raw(), a.raw());
        // SAFETY: live context with room; every addressed byte is inside `a`'s data (checked
        // above), so the view and ggml's `data_size + view_offs <= ggml_nbytes(view_src)` hold.
        let p = unsafe {
            match (ne, nb_rest) {
                ([n0], []) => sys::ggml_view_1d(c, r, *n0, offset),
                ([n0, n1], [b1]) => sys::ggml_view_2d(c, r, *n0, *n1, *b1, offset),
                ([n0, n1, n2], [b1, b2]) => sys::ggml_view_3d(c, r, *n0, *n1, *n2, *b1, *b2, offset),
                ([n0, n1, n2, n3], [b1, b2, b3]) => {
                    sys::ggml_view_4d(c, r, *n0, *n1, *n2, *n3, *b1, *b2, *b3, offset)
                }
                _ => std::ptr::null_mut(),
            }
        };
        self.wrap(OP, p)
    }

    /// Permutes dims: source dim `i` becomes dim `axes[i]` (ggml's convention). `axes` must be
    /// a permutation of 0..4. A view; follow with [`Context::cont`] before most ops.
    ///
    /// # C equivalent
    /// `ggml_permute`
    pub fn permute<'a>(&'a self, a: Tensor<'a>, axes: [usize; 4]) -> Result<Tensor<'a>> {
        const OP: &str = "permute";
        let mut seen = [false; 4];
        for &x in &axes {
            if x > 3 || seen[x] {
                return Err(arg_err(
                    OP,
                    format!("axes {axes:?} are not a permutation of 0..4"),
                ));
            }
            seen[x] = true;
        }
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; axes are a permutation of 0..4.
        let p = unsafe {
            sys::ggml_permute(
                self.raw(),
                a.raw(),
                axes[0] as i32,
                axes[1] as i32,
                axes[2] as i32,
                axes[3] as i32,
            )
        };
        self.wrap(OP, p)
    }

    /// Swaps dims 0 and 1 (a view).
    ///
    /// # C equivalent
    /// `ggml_transpose`
    pub fn transpose<'a>(&'a self, a: Tensor<'a>) -> Result<Tensor<'a>> {
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; ggml_transpose has no preconditions.
        let p = unsafe { sys::ggml_transpose(self.raw(), a.raw()) };
        self.wrap("transpose", p)
    }

    /// A copy of `a` converted to `ty` (same shape, contiguous). `a` F32, F16 or BF16; `ty` F32
    /// or F16.
    ///
    /// # C equivalent
    /// `ggml_cast`
    pub fn cast<'a>(&'a self, a: Tensor<'a>, ty: GgmlType) -> Result<Tensor<'a>> {
        const OP: &str = "cast";
        require_types(OP, "a", &a, &[GgmlType::F32, GgmlType::F16, GgmlType::BF16])?;
        if !matches!(ty, GgmlType::F32 | GgmlType::F16) {
            return Err(GgmlError::Type {
                op: OP,
                operand: "ty",
                ty: ty.name(),
            });
        }
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; a float-to-float copy the CPU dup kernel supports for
        // any strides.
        let p = unsafe { sys::ggml_cast(self.raw(), a.raw(), ty.to_raw()) };
        self.wrap(OP, p)
    }

    /// A contiguous copy of `a` (same shape). F32 or F16.
    ///
    /// # C equivalent
    /// `ggml_cont`
    pub fn cont<'a>(&'a self, a: Tensor<'a>) -> Result<Tensor<'a>> {
        let ne = a.ne();
        self.cont_4d(a, ne)
    }

    /// A contiguous copy of `a` with shape `ne` (same element count).
    ///
    /// # C equivalent
    /// `ggml_cont_4d`
    pub fn cont_4d<'a>(&'a self, a: Tensor<'a>, ne: [i64; 4]) -> Result<Tensor<'a>> {
        const OP: &str = "cont";
        require_types(OP, "a", &a, &[GgmlType::F32, GgmlType::F16, GgmlType::I32])?;
        if ne.iter().any(|&n| n < 1) || checked_elements(OP, &ne)? != a.n_elements() {
            return Err(shape_err(
                OP,
                format!(
                    "a {} has {} elements, target {ne:?} differs",
                    shape(&a),
                    a.n_elements()
                ),
            ));
        }
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; element counts equal.
        let p = unsafe { sys::ggml_cont_4d(self.raw(), a.raw(), ne[0], ne[1], ne[2], ne[3]) };
        self.wrap(OP, p)
    }

    /// Gathers rows: for `a` `[n0, rows, n2, n3]` and I32 indices `idx` `[n, n2, n3]`, returns
    /// `[n0, n, n2, n3]` with row `idx[i]` of `a` at position `i`. The result is F32 (I32 for an
    /// I32 `a`).
    ///
    /// `idx` must be a leaf I32 tensor created in **this** context and set with
    /// [`crate::ComputeRun::set_i32`], which checks every index against `a.ne[1]` (ggml's CPU
    /// kernel aborts on an out-of-range index).
    ///
    /// # C equivalent
    /// `ggml_get_rows`
    pub fn get_rows<'a>(&'a self, a: Tensor<'a>, idx: Tensor<'a>) -> Result<Tensor<'a>> {
        const OP: &str = "get_rows";
        require_types(OP, "idx", &idx, &[GgmlType::I32])?;
        require_types(
            OP,
            "a",
            &a,
            &[
                GgmlType::F32,
                GgmlType::F16,
                GgmlType::BF16,
                GgmlType::I32,
                GgmlType::Q4_0,
                GgmlType::Q4_1,
                GgmlType::Q5_0,
                GgmlType::Q5_1,
                GgmlType::Q8_0,
                GgmlType::Q4_K,
                GgmlType::Q5_K,
                GgmlType::Q6_K,
            ],
        )?;
        let (na, ni) = (a.ne(), idx.ne());
        if na[2] != ni[1] || na[3] != ni[2] || ni[3] != 1 {
            return Err(shape_err(
                OP,
                format!(
                    "a {} and idx {} need a.ne[2] == idx.ne[1], a.ne[3] == idx.ne[2], idx.ne[3] == 1",
                    shape(&a),
                    shape(&idx)
                ),
            ));
        }
        if !idx.is_leaf() || !std::ptr::eq(idx.context(), self) {
            return Err(GgmlError::TensorUse { tensor: idx.name(), reason: "get_rows indices must be a leaf input of the same context (so that their values can be checked)" });
        }
        require_contiguous(OP, "idx", &idx)?;
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; the shape and type assertions of ggml_get_rows hold.
        let p = unsafe { sys::ggml_get_rows(self.raw(), a.raw(), idx.raw()) };
        let t = self.wrap(OP, p)?;
        let mut st = self.state.borrow_mut();
        let bound = st.index_bounds.entry(idx.key()).or_insert(na[1]);
        *bound = (*bound).min(na[1]);
        Ok(t)
    }

    /// Normalises each row (dim 0) to zero mean and unit variance: `(x − μ)/√(σ² + eps)`, no
    /// affine part. F32 with dense rows; `eps >= 0`. On a `[T, C]` layout this is InstanceNorm,
    /// on `[C, T]` LayerNorm over channels.
    ///
    /// # C equivalent
    /// `ggml_norm`
    pub fn norm<'a>(&'a self, a: Tensor<'a>, eps: f32) -> Result<Tensor<'a>> {
        const OP: &str = "norm";
        require_f32(OP, "a", &a)?;
        require_dense_rows(OP, "a", &a)?;
        if eps.is_nan() || eps < 0.0 {
            return Err(arg_err(OP, format!("eps {eps} must be >= 0")));
        }
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; F32, dense rows and eps >= 0 as the kernel asserts.
        let p = unsafe { sys::ggml_norm(self.raw(), a.raw(), eps) };
        self.wrap(OP, p)
    }

    /// RMS norm of each row: `x / √(mean(x²) + eps)`. F32 with dense rows; `eps >= 0`.
    ///
    /// # C equivalent
    /// `ggml_rms_norm`
    pub fn rms_norm<'a>(&'a self, a: Tensor<'a>, eps: f32) -> Result<Tensor<'a>> {
        const OP: &str = "rms_norm";
        require_f32(OP, "a", &a)?;
        require_dense_rows(OP, "a", &a)?;
        if eps.is_nan() || eps < 0.0 {
            return Err(arg_err(OP, format!("eps {eps} must be >= 0")));
        }
        self.ensure_tensors(1)?;
        // SAFETY: as for `norm`.
        let p = unsafe { sys::ggml_rms_norm(self.raw(), a.raw(), eps) };
        self.wrap(OP, p)
    }

    /// Group norm: normalises over `ne0·ne1·(ne2/n_groups)` elements per group of dim 2.
    /// F32, contiguous; `1 <= n_groups <= ne[2]`.
    ///
    /// # C equivalent
    /// `ggml_group_norm`
    pub fn group_norm<'a>(&'a self, a: Tensor<'a>, n_groups: usize, eps: f32) -> Result<Tensor<'a>> {
        const OP: &str = "group_norm";
        require_f32(OP, "a", &a)?;
        require_contiguous(OP, "a", &a)?;
        if n_groups == 0 || n_groups as i64 > a.ne()[2] || eps.is_nan() || eps < 0.0 {
            return Err(arg_err(
                OP,
                format!(
                    "n_groups {n_groups} must be in 1..={} and eps {eps} >= 0",
                    a.ne()[2]
                ),
            ));
        }
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; F32 contiguous input.
        let p = unsafe { sys::ggml_group_norm(self.raw(), a.raw(), n_groups as i32, eps) };
        self.wrap(OP, p)
    }

    /// `softmax(a · scale + mask)` along rows (dim 0). `a` F32 contiguous; `mask` (optional)
    /// F32 contiguous with `mask.ne[0] == a.ne[0]`, `mask.ne[1] >= a.ne[1]` and dims 2, 3
    /// broadcastable.
    ///
    /// # C equivalent
    /// `ggml_soft_max_ext(ctx, a, mask, scale, 0.0f)`
    pub fn soft_max_ext<'a>(
        &'a self,
        a: Tensor<'a>,
        mask: Option<Tensor<'a>>,
        scale: f32,
    ) -> Result<Tensor<'a>> {
        const OP: &str = "soft_max_ext";
        require_f32(OP, "a", &a)?;
        require_contiguous(OP, "a", &a)?;
        if let Some(m) = &mask {
            require_f32(OP, "mask", m)?;
            require_contiguous(OP, "mask", m)?;
            let (na, nm) = (a.ne(), m.ne());
            if nm[0] != na[0] || nm[1] < na[1] || na[2] % nm[2] != 0 || na[3] % nm[3] != 0 {
                return Err(shape_err(
                    OP,
                    format!("mask {} does not fit a {}", shape(m), shape(&a)),
                ));
            }
        }
        self.ensure_tensors(1)?;
        let mp = mask.map_or(std::ptr::null_mut(), |m| m.raw());
        // SAFETY: live context with room; the mask assertions of ggml_soft_max_impl hold, and
        // max_bias is 0 so no mask is required.
        let p = unsafe { sys::ggml_soft_max_ext(self.raw(), a.raw(), mp, scale, 0.0) };
        self.wrap(OP, p)
    }

    /// Sums each row: `[n0, n1, n2, n3]` → `[1, n1, n2, n3]`. F32, dense rows.
    ///
    /// # C equivalent
    /// `ggml_sum_rows`
    pub fn sum_rows<'a>(&'a self, a: Tensor<'a>) -> Result<Tensor<'a>> {
        const OP: &str = "sum_rows";
        require_f32(OP, "a", &a)?;
        require_dense_rows(OP, "a", &a)?;
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; F32 with dense rows as the kernel asserts.
        let p = unsafe { sys::ggml_sum_rows(self.raw(), a.raw()) };
        self.wrap(OP, p)
    }

    /// Mean of each row: `[n0, ...]` → `[1, ...]`. F32, dense rows.
    ///
    /// # C equivalent
    /// `ggml_mean`
    pub fn mean<'a>(&'a self, a: Tensor<'a>) -> Result<Tensor<'a>> {
        const OP: &str = "mean";
        require_f32(OP, "a", &a)?;
        require_dense_rows(OP, "a", &a)?;
        self.ensure_tensors(1)?;
        // SAFETY: as for `sum_rows`.
        let p = unsafe { sys::ggml_mean(self.raw(), a.raw()) };
        self.wrap(OP, p)
    }

    /// Running sum along dim 0 (f32 accumulation). F32, dense rows.
    ///
    /// # C equivalent
    /// `ggml_cumsum`
    pub fn cumsum<'a>(&'a self, a: Tensor<'a>) -> Result<Tensor<'a>> {
        const OP: &str = "cumsum";
        require_f32(OP, "a", &a)?;
        require_dense_rows(OP, "a", &a)?;
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; F32 with nb[0] == 4 as the kernel asserts.
        let p = unsafe { sys::ggml_cumsum(self.raw(), a.raw()) };
        self.wrap(OP, p)
    }

    /// Zero padding: `lp[d]` elements before and `rp[d]` after dim `d`. F32, contiguous.
    ///
    /// # C equivalent
    /// `ggml_pad_ext`
    pub fn pad_ext<'a>(&'a self, a: Tensor<'a>, lp: [usize; 4], rp: [usize; 4]) -> Result<Tensor<'a>> {
        const OP: &str = "pad_ext";
        require_f32(OP, "a", &a)?;
        require_contiguous(OP, "a", &a)?;
        let ne = a.ne();
        let mut out = [0i64; 4];
        let mut args = [0i32; 8];
        for d in 0..4 {
            args[2 * d] = i32_arg(OP, "left pad", lp[d] as i64)?;
            args[2 * d + 1] = i32_arg(OP, "right pad", rp[d] as i64)?;
            out[d] = ne[d] + lp[d] as i64 + rp[d] as i64;
        }
        checked_elements(OP, &out)?;
        self.ensure_tensors(1)?;
        let [l0, r0, l1, r1, l2, r2, l3, r3] = args;
        // SAFETY: live context with room; non-negative pads; F32 contiguous input.
        let p = unsafe { sys::ggml_pad_ext(self.raw(), a.raw(), l0, r0, l1, r1, l2, r2, l3, r3) };
        self.wrap(OP, p)
    }

    /// Reflection padding of dim 0 (`[a, b, c, d]` with (1, 1) → `[b, a, b, c, d, c]`, the edge
    /// sample is not repeated, as torch `reflect`). `p0, p1 < ne[0]`; F32, contiguous.
    ///
    /// # C equivalent
    /// `ggml_pad_reflect_1d`
    pub fn pad_reflect_1d<'a>(&'a self, a: Tensor<'a>, p0: usize, p1: usize) -> Result<Tensor<'a>> {
        const OP: &str = "pad_reflect_1d";
        require_f32(OP, "a", &a)?;
        require_contiguous(OP, "a", &a)?;
        let n0 = a.ne()[0];
        if p0 as i64 >= n0 || p1 as i64 >= n0 {
            return Err(shape_err(
                OP,
                format!("pads ({p0}, {p1}) must be < ne[0] = {n0} of a {}", shape(&a)),
            ));
        }
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; pads in range, F32 contiguous: ggml's assertions hold.
        let p = unsafe { sys::ggml_pad_reflect_1d(self.raw(), a.raw(), p0 as i32, p1 as i32) };
        self.wrap(OP, p)
    }

    /// Resamples `a` to shape `ne`. `Bilinear` interpolates dims 0 and 1 (a 1-D linear resample
    /// when `ne[1]` is unchanged), nearest otherwise. F32.
    ///
    /// # C equivalent
    /// `ggml_interpolate`
    pub fn interpolate<'a>(&'a self, a: Tensor<'a>, ne: [i64; 4], mode: ScaleMode) -> Result<Tensor<'a>> {
        const OP: &str = "interpolate";
        require_f32(OP, "a", &a)?;
        if ne.iter().any(|&n| n < 1) {
            return Err(shape_err(OP, format!("target {ne:?} has a dimension < 1")));
        }
        checked_elements(OP, &ne)?;
        let m = match mode {
            ScaleMode::Nearest => sys::GGML_SCALE_MODE_NEAREST,
            ScaleMode::Bilinear => sys::GGML_SCALE_MODE_BILINEAR,
            ScaleMode::BilinearAlignCorners => {
                sys::GGML_SCALE_MODE_BILINEAR | sys::GGML_SCALE_FLAG_ALIGN_CORNERS
            }
        };
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; valid mode without antialias; F32 input.
        let p = unsafe { sys::ggml_interpolate(self.raw(), a.raw(), ne[0], ne[1], ne[2], ne[3], m) };
        self.wrap(OP, p)
    }

    /// 1-D im2col: for a kernel `[K, C_in, C_out]` (only its shape is read) and data
    /// `[L, C_in, N]`, returns `[K·C_in, L_out, N]` with
    /// `L_out = (L + 2p − d(K−1) − 1)/s + 1`. `data` F32; `dst_type` F32 or F16.
    ///
    /// # C equivalent
    /// `ggml_im2col(ctx, kernel, data, s0, 0, p0, 0, d0, 0, false, dst_type)`
    pub fn im2col_1d<'a>(
        &'a self,
        kernel: Tensor<'a>,
        data: Tensor<'a>,
        stride: usize,
        padding: usize,
        dilation: usize,
        dst_type: GgmlType,
    ) -> Result<Tensor<'a>> {
        const OP: &str = "im2col";
        require_f32(OP, "data", &data)?;
        if !matches!(dst_type, GgmlType::F32 | GgmlType::F16) {
            return Err(GgmlError::Type {
                op: OP,
                operand: "dst_type",
                ty: dst_type.name(),
            });
        }
        let (nk, nd) = (kernel.ne(), data.ne());
        if nd[1] != nk[1] || nd[3] != 1 {
            return Err(shape_err(
                OP,
                format!(
                    "data {} needs ne[1] == kernel.ne[1] ({}) and ne[3] == 1 (kernel {})",
                    shape(&data),
                    nk[1],
                    shape(&kernel)
                ),
            ));
        }
        let l_out = conv_out_len(OP, nd[0], nk[0], stride, padding, dilation)?;
        checked_elements(OP, &[nk[0] * nk[1], l_out, nd[2]])?;
        require_dense_rows(OP, "data", &data)?;
        self.ensure_tensors(1)?;
        let (s, p0, d) = (stride as i32, padding as i32, dilation as i32);
        // SAFETY: live context with room; the 1-D shape assertions hold and the output length
        // is positive (checked); stride and dilation are >= 1; F32 data for the CPU kernel.
        let p = unsafe {
            sys::ggml_im2col(
                self.raw(),
                kernel.raw(),
                data.raw(),
                s,
                0,
                p0,
                0,
                d,
                0,
                false,
                dst_type.to_raw(),
            )
        };
        self.wrap(OP, p)
    }

    /// 1-D convolution (PyTorch `Conv1d` without bias, cross-correlation) as F32 im2col +
    /// `mul_mat`, which works with F32 kernels on the CPU (`ggml_conv_1d` needs F16 kernels).
    ///
    /// `kernel` `[K, C_in, C_out]` (= torch `(C_out, C_in, K)` memory), F32 or F16, contiguous;
    /// `data` `[L, C_in, N]` F32. Result `[L_out, C_out, N]` F32.
    ///
    /// # C equivalent
    /// `ggml_im2col(..., GGML_TYPE_F32)` + `ggml_mul_mat` + `ggml_reshape_3d` (the body of
    /// `ggml_conv_1d`, with an F32 im2col)
    pub fn conv_1d<'a>(
        &'a self,
        kernel: Tensor<'a>,
        data: Tensor<'a>,
        stride: usize,
        padding: usize,
        dilation: usize,
    ) -> Result<Tensor<'a>> {
        const OP: &str = "conv_1d";
        require_types(OP, "kernel", &kernel, &[GgmlType::F32, GgmlType::F16])?;
        require_contiguous(OP, "kernel", &kernel)?;
        let nk = kernel.ne();
        if nk[3] != 1 {
            return Err(shape_err(
                OP,
                format!("kernel {} must be 3-D [K, C_in, C_out]", shape(&kernel)),
            ));
        }
        self.ensure_tensors(6)?;
        let cols = self.im2col_1d(kernel, data, stride, padding, dilation, GgmlType::F32)?; // [K·Cin, Lout, N]
        let ncol = cols.ne();
        let (k_cin, l_out, n) = (ncol[0], ncol[1], ncol[2]);
        let cols2 = self.reshape(cols, &[k_cin, l_out * n])?; // [K·Cin, Lout·N]
        let w2 = self.reshape(kernel, &[k_cin, nk[2]])?; // [K·Cin, Cout]
                                                         // ggml's fast F32 GEMM (llamafile's tinyBLAS) needs the row count of the first operand
                                                         // to be a multiple of 4 and otherwise falls back to a much slower dot-product loop. With
                                                         // the columns first that count is the output length (odd at the generator's last stage);
                                                         // with the kernel first it is C_out, at the price of a transpose.
        let cols_first = (l_out * n) % 4 == 0 || nk[2] % 4 != 0;
        if kernel.ty() == GgmlType::F32 && cols_first {
            let r = self.mul_mat(cols2, w2)?; // [Lout·N, Cout]
            let r = self.reshape(r, &[l_out * n, nk[2]])?;
            if n == 1 {
                return Ok(r);
            }
            // r[t + n·Lout, c] → [Lout, N, Cout] → permute to [Lout, Cout, N]
            let r = self.reshape(r, &[l_out, n, nk[2]])?;
            let r = self.permute(r, [0, 2, 1, 3])?;
            self.cont(r)
        } else {
            // Kernel first: required for F16 kernels (b must be F32), faster for odd lengths.
            let r = self.mul_mat(w2, cols2)?; // [Cout, Lout·N]
            let r = self.reshape(r, &[nk[2], l_out, n])?;
            let r = self.permute(r, [1, 0, 2, 3])?; // [Lout, Cout, N]
            self.cont(r)
        }
    }

    /// Transposed 1-D convolution with stride `s` (ggml supports padding 0, dilation 1 only:
    /// crop with a view for PyTorch padding). `kernel` `[K, C_out, C_in]` (= torch
    /// `(C_in, C_out, K)` memory) F32 or F16, contiguous; `data` `[L, C_in]` F32 contiguous (2-D).
    /// Result `[(L−1)·s + K, C_out]` F32.
    ///
    /// # C equivalent
    /// `ggml_conv_transpose_1d(ctx, kernel, data, s0, 0, 1)`
    pub fn conv_transpose_1d<'a>(
        &'a self,
        kernel: Tensor<'a>,
        data: Tensor<'a>,
        stride: usize,
    ) -> Result<Tensor<'a>> {
        const OP: &str = "conv_transpose_1d";
        require_types(OP, "kernel", &kernel, &[GgmlType::F32, GgmlType::F16])?;
        require_f32(OP, "data", &data)?;
        require_contiguous(OP, "kernel", &kernel)?;
        require_contiguous(OP, "data", &data)?;
        let (nk, nd) = (kernel.ne(), data.ne());
        if nd[2] != 1 || nd[3] != 1 {
            return Err(shape_err(
                OP,
                format!("data {} must be a matrix [L, C_in]", shape(&data)),
            ));
        }
        if nk[2] != nd[1] || nk[3] != 1 {
            return Err(shape_err(
                OP,
                format!(
                    "kernel {} needs ne[2] == data.ne[1] ({}) and ne[3] == 1",
                    shape(&kernel),
                    nd[1]
                ),
            ));
        }
        if stride == 0 {
            return Err(arg_err(OP, "stride 0".into()));
        }
        let s = i32_arg(OP, "stride", stride as i64)?;
        let l_out = (nd[0] - 1)
            .checked_mul(stride as i64)
            .and_then(|v| v.checked_add(nk[0]));
        let l_out = l_out.ok_or_else(|| arg_err(OP, "output length overflows".into()))?;
        checked_elements(OP, &[l_out, nk[1]])?;
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; `b` is a matrix, a.ne[2] == b.ne[1], a.ne[3] == 1,
        // p0 = 0 and d0 = 1 as ggml asserts; contiguous F32/F16 kernel and F32 data for the CPU.
        let p = unsafe { sys::ggml_conv_transpose_1d(self.raw(), kernel.raw(), data.raw(), s, 0, 1) };
        self.wrap(OP, p)
    }

    /// Scatter-adds GEMM columns into a 1-D signal (the overlap-add half of a transposed
    /// convolution): `a` `[K·oc, T_in]` → `[(T_in − 1)·s + K − 2p, oc]`. F32, contiguous matrix.
    ///
    /// # C equivalent
    /// `ggml_col2im_1d`
    pub fn col2im_1d<'a>(
        &'a self,
        a: Tensor<'a>,
        stride: usize,
        oc: usize,
        padding: usize,
    ) -> Result<Tensor<'a>> {
        const OP: &str = "col2im_1d";
        require_f32(OP, "a", &a)?;
        require_contiguous(OP, "a", &a)?;
        let ne = a.ne();
        if ne[2] != 1 || ne[3] != 1 {
            return Err(shape_err(OP, format!("a {} must be a matrix", shape(&a))));
        }
        if stride == 0 || oc == 0 {
            return Err(arg_err(OP, format!("stride {stride} and oc {oc} must be >= 1")));
        }
        let (s, o, p0) = (
            i32_arg(OP, "stride", stride as i64)?,
            i32_arg(OP, "oc", oc as i64)?,
            i32_arg(OP, "padding", padding as i64)?,
        );
        if ne[0] % oc as i64 != 0 {
            return Err(shape_err(
                OP,
                format!("a.ne[0] = {} is not a multiple of oc = {oc}", ne[0]),
            ));
        }
        let k = ne[0] / oc as i64;
        let t_out = (ne[1] - 1) * stride as i64 + k - 2 * padding as i64;
        if t_out <= 0 {
            return Err(shape_err(
                OP,
                format!(
                    "output length {t_out} for a {} (s {stride}, p {padding})",
                    shape(&a)
                ),
            ));
        }
        self.ensure_tensors(1)?;
        // SAFETY: live context with room; all of ggml_col2im_1d's assertions checked above.
        let p = unsafe { sys::ggml_col2im_1d(self.raw(), a.raw(), s, o, p0) };
        self.wrap(OP, p)
    }
}

/// Output length of a convolution, or an error when it would be < 1 or the arguments are bad.
fn conv_out_len(
    op: &'static str,
    l: i64,
    k: i64,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Result<i64> {
    if stride == 0 || dilation == 0 {
        return Err(arg_err(
            op,
            format!("stride {stride} and dilation {dilation} must be >= 1"),
        ));
    }
    i32_arg(op, "stride", stride as i64)?;
    i32_arg(op, "padding", padding as i64)?;
    i32_arg(op, "dilation", dilation as i64)?;
    let span = (dilation as i64) * (k - 1) + 1;
    let num = l + 2 * padding as i64 - span;
    if num < 0 {
        return Err(shape_err(
            op,
            format!("input length {l} (+2·{padding} padding) is shorter than the kernel span {span}"),
        ));
    }
    Ok(num / stride as i64 + 1)
}
