//! Computation graphs (`struct ggml_cgraph`).

use std::collections::HashSet;
use std::ptr::NonNull;

use crate::context::{Context, Tensor};
use crate::error::{GgmlError, Result};
use crate::sys;

/// A forward computation graph allocated in a [`Context`], with a fixed node capacity.
///
/// The wrapper mirrors ggml's graph walk in Rust so that expanding never exceeds the capacity
/// (ggml asserts on that) and so that compute can check inputs and outputs.
pub struct Graph<'ctx> {
    raw: NonNull<sys::ggml_cgraph>,
    ctx: &'ctx Context,
    size: usize,
    pub(crate) members: HashSet<usize>,
    pub(crate) leafs: Vec<*mut sys::ggml_tensor>,
    n_nodes: usize,
}

impl std::fmt::Debug for Graph<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("size", &self.size)
            .field("n_nodes", &self.n_nodes)
            .field("n_leafs", &self.leafs.len())
            .finish()
    }
}

impl Context {
    /// A new graph with room for `size` nodes and `size` leafs.
    ///
    /// # C equivalent
    /// `ggml_new_graph_custom(ctx, size, false)`
    pub fn new_graph(&self, size: usize) -> Result<Graph<'_>> {
        if size == 0 || size > i32::MAX as usize / 4 {
            return Err(GgmlError::Argument {
                op: "new_graph",
                detail: format!("size {size} must be in 1..{}", i32::MAX / 4),
            });
        }
        // SAFETY: a pure size computation.
        let bytes = unsafe { sys::ggml_graph_overhead_custom(size, false) };
        // `ggml_graph_overhead_custom` already includes the object header.
        self.ensure_room(1, bytes.saturating_sub(self.object_header()))?;
        // SAFETY: live context with room for the graph object (checked), size >= 1.
        let raw = unsafe { sys::ggml_new_graph_custom(self.raw(), size, false) };
        let raw = NonNull::new(raw)
            .ok_or_else(|| GgmlError::Alloc("ggml_new_graph_custom returned NULL".into()))?;
        Ok(Graph {
            raw,
            ctx: self,
            size,
            members: HashSet::new(),
            leafs: Vec::new(),
            n_nodes: 0,
        })
    }

    fn object_header(&self) -> usize {
        // SAFETY: a pure size computation.
        unsafe { sys::ggml_tensor_overhead() - std::mem::size_of::<sys::ggml_tensor>() }
    }
}

impl<'ctx> Graph<'ctx> {
    pub(crate) fn raw(&self) -> *mut sys::ggml_cgraph {
        self.raw.as_ptr()
    }

    /// The context the graph lives in.
    pub fn context(&self) -> &'ctx Context {
        self.ctx
    }

    /// Node capacity.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of computed nodes so far.
    ///
    /// # C equivalent
    /// `ggml_graph_n_nodes`
    pub fn n_nodes(&self) -> usize {
        self.n_nodes
    }

    /// Number of leafs (inputs and weights) so far.
    pub fn n_leafs(&self) -> usize {
        self.leafs.len()
    }

    /// Whether `t` is part of the graph.
    pub fn contains(&self, t: Tensor<'_>) -> bool {
        self.members.contains(&t.key())
    }

    /// Adds `t` and everything it depends on.
    ///
    /// Errors, before touching the graph, if the nodes or leafs would exceed the capacity, or
    /// if a custom op built in another context is reached (its panics could not be reported).
    ///
    /// # C equivalent
    /// `ggml_build_forward_expand`
    pub fn build_forward_expand(&mut self, t: Tensor<'ctx>) -> Result<()> {
        // Walk the new part of the graph the way ggml_visit_parents_graph does.
        let mut new: HashSet<usize> = HashSet::new();
        let (mut new_nodes, mut new_leafs) = (0usize, 0usize);
        let mut new_leaf_ptrs = Vec::new();
        let mut stack = vec![t.raw()];
        let custom = self.ctx.state.borrow();
        while let Some(p) = stack.pop() {
            let key = p as usize;
            if self.members.contains(&key) || !new.insert(key) {
                continue;
            }
            // SAFETY: `p` is `t` or a source of a tensor reachable from `t`; sources are kept
            // alive by their contexts, which outlive `'ctx` (tensor lifetimes are covariant
            // borrows of their contexts, and `t: Tensor<'ctx>`).
            let h = unsafe { &*p };
            let is_leaf = h.op == sys::GGML_OP_NONE && h.flags & sys::GGML_TENSOR_FLAG_PARAM as i32 == 0;
            if is_leaf {
                new_leafs += 1;
                new_leaf_ptrs.push(p);
            } else {
                new_nodes += 1;
            }
            let is_custom = matches!(
                h.op,
                sys::GGML_OP_MAP_CUSTOM1
                    | sys::GGML_OP_MAP_CUSTOM2
                    | sys::GGML_OP_MAP_CUSTOM3
                    | sys::GGML_OP_CUSTOM
            );
            if is_custom && !custom.custom_ops.contains(&key) {
                return Err(GgmlError::TensorUse {
                    tensor: t.name(),
                    reason: "depends on a custom op built in another context; build custom ops in the graph's context",
                });
            }
            stack.extend(h.src.iter().copied().filter(|s| !s.is_null()));
        }
        drop(custom);
        if self.n_nodes + new_nodes > self.size {
            return Err(GgmlError::GraphFull {
                kind: "nodes",
                needed: self.n_nodes + new_nodes,
                capacity: self.size,
            });
        }
        if self.leafs.len() + new_leafs > self.size {
            return Err(GgmlError::GraphFull {
                kind: "leafs",
                needed: self.leafs.len() + new_leafs,
                capacity: self.size,
            });
        }
        // SAFETY: live graph and tensor; the node and leaf counts stay within the capacity
        // (checked above), and the hash set holds 2·size entries, more than nodes + leafs.
        unsafe { sys::ggml_build_forward_expand(self.raw(), t.raw()) };
        self.members.extend(new);
        self.leafs.extend(new_leaf_ptrs);
        self.n_nodes += new_nodes;
        // SAFETY: live graph.
        let n = unsafe { sys::ggml_graph_n_nodes(self.raw()) };
        debug_assert_eq!(n as usize, self.n_nodes, "the Rust graph walk must mirror ggml's");
        Ok(())
    }
}
