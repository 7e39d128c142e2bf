//! Custom ops with safe Rust closures (`ggml_map_custom1/2/3`, `ggml_custom_4d`).
//!
//! ggml calls a custom op's C function on every thread of the compute with `(ith, nth)`. The
//! wrapper's trampoline turns the raw tensors into slices, gives each thread a **disjoint**
//! `&mut` part of the output (chosen by [`Split`]), calls the closure inside `catch_unwind`, and
//! records a panic so that the compute reports [`GgmlError::CustomOpPanic`] instead of unwinding
//! into C. The closure is owned (through an `Arc`) by the context the op was built in, so it
//! outlives every graph that can reach it.

use std::ops::Range;
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::context::{Context, PanicSlot, Tensor};
use crate::error::{GgmlError, Result};
use crate::sys;
use crate::types::GgmlType;

/// How the output of a custom op is divided among ggml's threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// One call (`ith == 0`) receives the whole output; for sequential work.
    Whole,
    /// The output is cut into blocks of the dims below `dim` (`dim` in 1..=3): block `j` is
    /// the `j`-th index of dims `dim..4` flattened. Each thread receives a contiguous range of
    /// blocks. `Outer(1)` splits rows; for a `[H, T, 2]` BiLSTM output `Outer(2)` gives each
    /// thread whole directions.
    Outer(usize),
}

/// A read-only input of a custom op, dense, in ggml order.
#[derive(Debug, Clone, Copy)]
pub struct SrcView<'a> {
    /// All elements, `ne[0]` fastest, for an F32 source; empty for the other types (only ops
    /// built by this crate take those: see `bytes`).
    pub data: &'a [f32],
    /// Shape, ggml order.
    pub ne: [usize; 4],
    /// The element type.
    pub ty: GgmlType,
    /// The source's bytes (ggml's layout of `ty`; for F32 the bytes of `data`).
    pub bytes: &'a [u8],
}

/// What a custom-op closure receives on one thread.
#[derive(Debug)]
pub struct CustomArgs<'a> {
    /// This thread's part of the output (zeroed before the call): blocks `blocks` of the split.
    pub dst: &'a mut [f32],
    /// Shape of the whole output, ggml order.
    pub dst_ne: [usize; 4],
    /// Which blocks of the output `dst` holds (the whole output is block 0 of 1 for
    /// [`Split::Whole`]).
    pub blocks: Range<usize>,
    /// Elements per block (`dst.len() == blocks.len() * block_len`).
    pub block_len: usize,
    /// The op's inputs, in the order given.
    pub srcs: &'a [SrcView<'a>],
    /// This thread's index.
    pub ith: usize,
    /// Number of threads running the op.
    pub nth: usize,
}

type Callback = dyn Fn(CustomArgs<'_>) + Send + Sync;

/// Owned by the context (`State::keepalive`); ggml holds a raw pointer to it as `userdata`.
struct OpData {
    f: Box<Callback>,
    split: Split,
    panics: Arc<PanicSlot>,
}

fn dims(t: *const sys::ggml_tensor) -> [usize; 4] {
    // SAFETY: called with live tensor headers from the trampoline.
    let ne = unsafe { (*t).ne };
    ne.map(|n| n.max(0) as usize)
}

/// Runs the closure for one thread. Everything that can panic is inside `catch_unwind`.
///
/// # Safety
/// `dst` and `srcs` are live, allocated, dense F32 tensors (checked when the op was built; the
/// allocator gave them data before compute), `dst` does not alias any source (custom ops are
/// never computed in place by ggml-alloc), and `ud` points to the `OpData` kept alive by the
/// context that owns the op.
unsafe fn run(
    dst: *mut sys::ggml_tensor,
    srcs: &[*const sys::ggml_tensor],
    ith: c_int,
    nth: c_int,
    ud: *mut c_void,
) {
    // SAFETY: see the function contract: `ud` is a live `OpData`.
    let op = unsafe { &*(ud as *const OpData) };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let (ith, nth) = (ith.max(0) as usize, nth.max(1) as usize);
        let dst_ne = dims(dst);
        let (block_len, n_blocks) = match op.split {
            Split::Whole => (dst_ne.iter().product::<usize>(), 1),
            Split::Outer(d) => (dst_ne[..d].iter().product(), dst_ne[d..].iter().product()),
        };
        let blocks = match op.split {
            Split::Whole if ith == 0 => 0..1,
            Split::Whole => return,
            Split::Outer(_) => (n_blocks * ith / nth)..(n_blocks * (ith + 1) / nth),
        };
        if blocks.is_empty() {
            return;
        }
        let views: Vec<SrcView<'_>> = srcs
            .iter()
            .map(|&s| {
                let ne = dims(s);
                let n: usize = ne.iter().product();
                // SAFETY: a live tensor header (function contract).
                let (raw_ty, data_ptr) = unsafe { ((*s).type_, (*s).data) };
                // Unreachable fallback: the op builders accept known types only.
                let ty = GgmlType::from_raw(raw_ty).unwrap_or(GgmlType::F32);
                // SAFETY: a live, allocated, dense source (function contract) of `ggml_nbytes`
                // bytes from its data pointer; read-only while the op runs (no thread writes a
                // source of a running node).
                let bytes = unsafe { std::slice::from_raw_parts(data_ptr as *const u8, sys::ggml_nbytes(s)) };
                let data = if raw_ty == sys::GGML_TYPE_F32 {
                    // SAFETY: an F32 source (checked when the op was built: only F32 sources
                    // and the 16-bit kernels of `custom_typed` are accepted) holds `n` aligned
                    // floats from its data pointer.
                    unsafe { std::slice::from_raw_parts(data_ptr as *const f32, n) }
                } else {
                    &[]
                };
                SrcView { data, ne, ty, bytes }
            })
            .collect();
        // SAFETY: dst is dense F32 (contract); `blocks` of different threads are disjoint
        // ranges, so each thread gets a disjoint `&mut` part; it is zeroed first so the closure
        // never reads uninitialised memory.
        let part = unsafe {
            let base = ((*dst).data as *mut f32).add(blocks.start * block_len);
            let len = blocks.len() * block_len;
            std::ptr::write_bytes(base, 0, len);
            std::slice::from_raw_parts_mut(base, len)
        };
        (op.f)(CustomArgs {
            dst: part,
            dst_ne,
            blocks,
            block_len,
            srcs: &views,
            ith,
            nth,
        });
    }));
    if let Err(payload) = outcome {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        // SAFETY: `dst` is a live header whose name is NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr((*dst).name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        if let Ok(mut v) = op.panics.caught.lock() {
            v.push((name, message));
        }
    }
}

unsafe extern "C" fn trampoline1(
    dst: *mut sys::ggml_tensor,
    a: *const sys::ggml_tensor,
    ith: c_int,
    nth: c_int,
    ud: *mut c_void,
) {
    // SAFETY: ggml passes the node and its source registered by `Context::map_custom1`, whose
    // contract `run` documents.
    unsafe { run(dst, &[a], ith, nth, ud) }
}

unsafe extern "C" fn trampoline2(
    dst: *mut sys::ggml_tensor,
    a: *const sys::ggml_tensor,
    b: *const sys::ggml_tensor,
    ith: c_int,
    nth: c_int,
    ud: *mut c_void,
) {
    // SAFETY: as for `trampoline1`.
    unsafe { run(dst, &[a, b], ith, nth, ud) }
}

unsafe extern "C" fn trampoline3(
    dst: *mut sys::ggml_tensor,
    a: *const sys::ggml_tensor,
    b: *const sys::ggml_tensor,
    c: *const sys::ggml_tensor,
    ith: c_int,
    nth: c_int,
    ud: *mut c_void,
) {
    // SAFETY: as for `trampoline1`.
    unsafe { run(dst, &[a, b, c], ith, nth, ud) }
}

unsafe extern "C" fn trampoline_n(dst: *mut sys::ggml_tensor, ith: c_int, nth: c_int, ud: *mut c_void) {
    // SAFETY: `dst` is the live node built by `Context::custom`; its non-NULL `src` entries are
    // the arguments given there.
    let srcs: Vec<*const sys::ggml_tensor> = unsafe { (*dst).src }
        .iter()
        .filter(|p| !p.is_null())
        .map(|&p| p as *const _)
        .collect();
    // SAFETY: as for `trampoline1`.
    unsafe { run(dst, &srcs, ith, nth, ud) }
}

fn check_src(op: &'static str, t: &Tensor<'_>) -> Result<()> {
    check_src_of(op, t, &[GgmlType::F32])
}

/// As [`check_src`], also accepting F16 (the 16-bit kernels the convolutions
/// widen per call).
fn check_src_16(op: &'static str, t: &Tensor<'_>) -> Result<()> {
    check_src_of(op, t, &[GgmlType::F32, GgmlType::F16])
}

/// A source of one of the types `types`, contiguous.
fn check_src_of(op: &'static str, t: &Tensor<'_>, types: &[GgmlType]) -> Result<()> {
    if !types.contains(&t.ty()) {
        return Err(GgmlError::Type {
            op,
            operand: "source",
            ty: t.type_name(),
        });
    }
    if !t.is_contiguous() {
        return Err(GgmlError::Layout {
            op,
            operand: "source",
            requirement: "contiguous (use cont first)",
        });
    }
    Ok(())
}

fn check_split(op: &'static str, split: Split) -> Result<()> {
    match split {
        Split::Outer(d) if !(1..=3).contains(&d) => Err(GgmlError::Argument {
            op,
            detail: format!("split dim {d} is not in 1..=3"),
        }),
        _ => Ok(()),
    }
}

impl Context {
    /// Registers the closure, returning the `userdata` pointer ggml will pass back.
    fn register(&self, f: Box<Callback>, split: Split) -> *mut c_void {
        let data = Arc::new(OpData {
            f,
            split,
            panics: Arc::clone(&self.panics),
        });
        let ptr = Arc::as_ptr(&data) as *mut c_void;
        self.state.borrow_mut().keepalive.push(data);
        ptr
    }

    fn finish_custom<'a>(&'a self, op: &'static str, p: *mut sys::ggml_tensor) -> Result<Tensor<'a>> {
        let t = self.wrap(op, p)?;
        self.state.borrow_mut().custom_ops.insert(t.key());
        Ok(t)
    }

    /// A custom op on one input; the output has `a`'s shape and type. Sources: F32, contiguous.
    ///
    /// The closure runs on ggml's compute threads; see [`CustomArgs`] and [`Split`]. A panic in
    /// it is caught and reported by the compute as [`GgmlError::CustomOpPanic`].
    ///
    /// ```
    /// # use tts_ggml::*;
    /// # fn demo(ctx: &Context, x: Tensor<'_>) -> Result<(), GgmlError> {
    /// // element-wise x², split by rows
    /// let y = ctx.map_custom1(x, Split::Outer(1), |args: CustomArgs<'_>| {
    ///     let start = args.blocks.start * args.block_len;
    ///     for (i, d) in args.dst.iter_mut().enumerate() {
    ///         let v = args.srcs[0].data[start + i];
    ///         *d = v * v;
    ///     }
    /// })?;
    /// # let _ = y; Ok(()) }
    /// ```
    ///
    /// # C equivalent
    /// `ggml_map_custom1(ctx, a, fun, GGML_N_TASKS_MAX, userdata)`
    pub fn map_custom1<'a, F>(&'a self, a: Tensor<'a>, split: Split, f: F) -> Result<Tensor<'a>>
    where
        F: Fn(CustomArgs<'_>) + Send + Sync + 'static,
    {
        const OP: &str = "map_custom1";
        check_src(OP, &a)?;
        check_split(OP, split)?;
        self.ensure_tensors(1)?;
        let ud = self.register(Box::new(f), split);
        // SAFETY: live context with room; `a` is a dense F32 tensor, so the output (a dup of
        // `a`) is too; `ud` stays alive in `self.state.keepalive` as long as the context;
        // `trampoline1` matches `ggml_custom1_op_t`.
        let p = unsafe {
            sys::ggml_map_custom1(
                self.raw(),
                a.raw(),
                Some(trampoline1),
                crate::consts::N_TASKS_MAX,
                ud,
            )
        };
        self.finish_custom(OP, p)
    }

    /// A custom op on two inputs; the output has `a`'s shape. Sources: F32, contiguous.
    ///
    /// # C equivalent
    /// `ggml_map_custom2(ctx, a, b, fun, GGML_N_TASKS_MAX, userdata)`
    pub fn map_custom2<'a, F>(
        &'a self,
        a: Tensor<'a>,
        b: Tensor<'a>,
        split: Split,
        f: F,
    ) -> Result<Tensor<'a>>
    where
        F: Fn(CustomArgs<'_>) + Send + Sync + 'static,
    {
        const OP: &str = "map_custom2";
        check_src(OP, &a)?;
        check_src(OP, &b)?;
        check_split(OP, split)?;
        self.ensure_tensors(1)?;
        let ud = self.register(Box::new(f), split);
        // SAFETY: as for `map_custom1`, with `trampoline2` matching `ggml_custom2_op_t`.
        let p = unsafe {
            sys::ggml_map_custom2(
                self.raw(),
                a.raw(),
                b.raw(),
                Some(trampoline2),
                crate::consts::N_TASKS_MAX,
                ud,
            )
        };
        self.finish_custom(OP, p)
    }

    /// A custom op on three inputs; the output has `a`'s shape. Sources: F32, contiguous.
    ///
    /// # C equivalent
    /// `ggml_map_custom3(ctx, a, b, c, fun, GGML_N_TASKS_MAX, userdata)`
    pub fn map_custom3<'a, F>(
        &'a self,
        a: Tensor<'a>,
        b: Tensor<'a>,
        c: Tensor<'a>,
        split: Split,
        f: F,
    ) -> Result<Tensor<'a>>
    where
        F: Fn(CustomArgs<'_>) + Send + Sync + 'static,
    {
        const OP: &str = "map_custom3";
        check_src(OP, &a)?;
        check_src(OP, &b)?;
        check_src(OP, &c)?;
        check_split(OP, split)?;
        self.ensure_tensors(1)?;
        let ud = self.register(Box::new(f), split);
        // SAFETY: as for `map_custom1`, with `trampoline3` matching `ggml_custom3_op_t`.
        let p = unsafe {
            sys::ggml_map_custom3(
                self.raw(),
                a.raw(),
                b.raw(),
                c.raw(),
                Some(trampoline3),
                crate::consts::N_TASKS_MAX,
                ud,
            )
        };
        self.finish_custom(OP, p)
    }

    /// A custom op with an F32 output of any shape `ne` and 1..=9 inputs (F32, contiguous), for
    /// ops whose output shape differs from their inputs (an LSTM recurrence: gates `[4H, T]` →
    /// hidden states `[H, T]`).
    ///
    /// # C equivalent
    /// `ggml_custom_4d(ctx, GGML_TYPE_F32, ne0, ne1, ne2, ne3, args, n_args, fun, GGML_N_TASKS_MAX, userdata)`
    pub fn custom<'a, F>(
        &'a self,
        ne: [i64; 4],
        srcs: &[Tensor<'a>],
        split: Split,
        f: F,
    ) -> Result<Tensor<'a>>
    where
        F: Fn(CustomArgs<'_>) + Send + Sync + 'static,
    {
        self.custom_checked("custom", ne, srcs, check_src, split, f)
    }

    /// As [`custom`](Self::custom), with F16 sources accepted too (their
    /// [`SrcView::data`] is empty: the closure reads [`SrcView::bytes`]); for this crate's ops
    /// that widen a 16-bit kernel themselves.
    pub(crate) fn custom_16<'a, F>(
        &'a self,
        op: &'static str,
        ne: [i64; 4],
        srcs: &[Tensor<'a>],
        split: Split,
        f: F,
    ) -> Result<Tensor<'a>>
    where
        F: Fn(CustomArgs<'_>) + Send + Sync + 'static,
    {
        self.custom_checked(op, ne, srcs, check_src_16, split, f)
    }

    fn custom_checked<'a, F>(
        &'a self,
        op: &'static str,
        ne: [i64; 4],
        srcs: &[Tensor<'a>],
        check: fn(&'static str, &Tensor<'_>) -> Result<()>,
        split: Split,
        f: F,
    ) -> Result<Tensor<'a>>
    where
        F: Fn(CustomArgs<'_>) + Send + Sync + 'static,
    {
        if srcs.is_empty() || srcs.len() >= crate::consts::MAX_SRC {
            return Err(GgmlError::Argument {
                op,
                detail: format!(
                    "{} sources, expected 1..={}",
                    srcs.len(),
                    crate::consts::MAX_SRC - 1
                ),
            });
        }
        if ne.iter().any(|&n| n < 1) {
            return Err(GgmlError::Shape {
                op,
                detail: format!("output shape {ne:?} has a dimension < 1"),
            });
        }
        crate::context::checked_elements(op, &ne)?;
        for s in srcs {
            check(op, s)?;
        }
        check_split(op, split)?;
        self.ensure_tensors(1)?;
        let ud = self.register(Box::new(f), split);
        let mut args: Vec<*mut sys::ggml_tensor> = srcs.iter().map(|t| t.raw()).collect();
        // SAFETY: live context with room; `args` holds `n_args < GGML_MAX_SRC` live dense
        // tensors (F32, or F16 through `custom_16`, which `run` does not read as floats); the output is a new dense F32 tensor; `ud` lives as long as the context;
        // `trampoline_n` matches `ggml_custom_op_t`.
        let p = unsafe {
            sys::ggml_custom_4d(
                self.raw(),
                sys::GGML_TYPE_F32,
                ne[0],
                ne[1],
                ne[2],
                ne[3],
                args.as_mut_ptr(),
                args.len() as i32,
                Some(trampoline_n),
                crate::consts::N_TASKS_MAX,
                ud,
            )
        };
        self.finish_custom(op, p)
    }
}
