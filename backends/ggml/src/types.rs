//! ggml element types.

use crate::sys;

/// The ggml element types this wrapper lets tensors have (`enum ggml_type`).
///
/// Activations are `F32`; weights may also be `F16`, `BF16` or one of the block-quantized
/// types (only `mul_mat` and `get_rows` read those).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// 8-bit integer.
    I8,
    /// 16-bit integer.
    I16,
    /// 32-bit integer (indices for `get_rows`).
    I32,
    /// Block-quantized, 32 weights per block.
    Q4_0,
    /// Block-quantized, 32 weights per block.
    Q4_1,
    /// Block-quantized, 32 weights per block.
    Q5_0,
    /// Block-quantized, 32 weights per block.
    Q5_1,
    /// Block-quantized, 32 weights per block.
    Q8_0,
    /// k-quant, 256 weights per block.
    Q4_K,
    /// k-quant, 256 weights per block.
    Q5_K,
    /// k-quant, 256 weights per block.
    Q6_K,
}

impl GgmlType {
    /// The C enum value.
    pub(crate) fn to_raw(self) -> sys::ggml_type {
        match self {
            Self::F32 => sys::GGML_TYPE_F32,
            Self::F16 => sys::GGML_TYPE_F16,
            Self::BF16 => sys::GGML_TYPE_BF16,
            Self::I8 => sys::GGML_TYPE_I8,
            Self::I16 => sys::GGML_TYPE_I16,
            Self::I32 => sys::GGML_TYPE_I32,
            Self::Q4_0 => sys::GGML_TYPE_Q4_0,
            Self::Q4_1 => sys::GGML_TYPE_Q4_1,
            Self::Q5_0 => sys::GGML_TYPE_Q5_0,
            Self::Q5_1 => sys::GGML_TYPE_Q5_1,
            Self::Q8_0 => sys::GGML_TYPE_Q8_0,
            Self::Q4_K => sys::GGML_TYPE_Q4_K,
            Self::Q5_K => sys::GGML_TYPE_Q5_K,
            Self::Q6_K => sys::GGML_TYPE_Q6_K,
        }
    }

    /// The wrapper type for a C enum value, `None` for types this crate does not expose.
    pub(crate) fn from_raw(raw: sys::ggml_type) -> Option<Self> {
        const ALL: [GgmlType; 14] = [
            GgmlType::F32,
            GgmlType::F16,
            GgmlType::BF16,
            GgmlType::I8,
            GgmlType::I16,
            GgmlType::I32,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q8_0,
            GgmlType::Q4_K,
            GgmlType::Q5_K,
            GgmlType::Q6_K,
        ];
        ALL.into_iter().find(|t| t.to_raw() == raw)
    }

    /// ggml's name of the type (`"f32"`, `"q8_0"`, ...).
    ///
    /// # C equivalent
    /// `ggml_type_name`
    pub fn name(self) -> &'static str {
        raw_type_name(self.to_raw())
    }

    /// Bytes per block (per element for non-quantized types).
    ///
    /// # C equivalent
    /// `ggml_type_size`
    pub fn type_size(self) -> usize {
        // SAFETY: `ggml_type_size` reads a static table indexed by a valid enum value.
        unsafe { sys::ggml_type_size(self.to_raw()) }
    }

    /// Elements per block (1 for non-quantized types).
    ///
    /// # C equivalent
    /// `ggml_blck_size`
    pub fn block_size(self) -> usize {
        // SAFETY: as for `type_size`: a static table lookup with a valid enum value.
        let n = unsafe { sys::ggml_blck_size(self.to_raw()) };
        usize::try_from(n).unwrap_or(1)
    }

    /// Whether the type is block-quantized.
    pub fn is_quantized(self) -> bool {
        // SAFETY: a static table lookup with a valid enum value.
        unsafe { sys::ggml_is_quantized(self.to_raw()) }
    }
}

/// ggml's name of a raw type value; `"unknown"` outside the table.
pub(crate) fn raw_type_name(raw: sys::ggml_type) -> &'static str {
    if raw >= sys::GGML_TYPE_COUNT {
        return "unknown";
    }
    // SAFETY: `raw` is a valid enum value (checked above); `ggml_type_name` returns a pointer to
    // a static NUL-terminated string (or NULL for removed types, handled below).
    let p = unsafe { sys::ggml_type_name(raw) };
    if p.is_null() {
        return "unknown";
    }
    // SAFETY: non-NULL, NUL-terminated, and static for the life of the process.
    let s = unsafe { std::ffi::CStr::from_ptr(p) };
    s.to_str().unwrap_or("unknown")
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl GgmlType {
    /// Converts `n` values stored as this type in `bytes` (ggml's block layout) to `f32`.
    ///
    /// Errors when `n` is not a whole number of blocks, when `bytes` is not exactly that many
    /// blocks, or when ggml has no conversion for the type.
    ///
    /// # C equivalent
    /// `ggml_get_type_traits(type)->to_float(bytes, out, n)`
    pub fn to_f32(self, bytes: &[u8], n: usize) -> crate::Result<Vec<f32>> {
        let (bs, ts) = (self.block_size(), self.type_size());
        if bs == 0 || !n.is_multiple_of(bs) || bytes.len() != n / bs * ts {
            return Err(crate::GgmlError::Shape {
                op: "to_f32",
                detail: format!(
                    "{n} {} values need {} bytes in whole blocks of {bs}; got {} bytes",
                    self.name(),
                    n.div_ceil(bs.max(1)) * ts,
                    bytes.len()
                ),
            });
        }
        if self == GgmlType::F32 {
            return Ok(bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect());
        }
        // SAFETY: a static table lookup with a valid enum value; the pointer is never NULL.
        let traits = unsafe { &*sys::ggml_get_type_traits(self.to_raw()) };
        let Some(to_float) = traits.to_float else {
            return Err(crate::GgmlError::Type {
                op: "to_f32",
                operand: "type",
                ty: self.name(),
            });
        };
        let mut out = vec![0f32; n];
        let k = i64::try_from(n).map_err(|_| crate::GgmlError::Shape {
            op: "to_f32",
            detail: format!("{n} values"),
        })?;
        // SAFETY: `bytes` holds exactly n/bs blocks of this type (checked) and `out` has room
        // for n floats; the conversion reads and writes nothing else.
        unsafe { to_float(bytes.as_ptr().cast(), out.as_mut_ptr(), k) };
        Ok(out)
    }
}
