//! ggml tensor types: ids as stored in GGUF tensor infos, with block sizes and block byte sizes.
//!
//! Ids and sizes follow ggml's `enum ggml_type` and `type_traits` table (`ggml.h`, `ggml.c`).
//! Only the types whose layout is listed here are accepted; a file using another id (the IQ*/TQ*
//! families, MXFP4, or the repacked types ggml removed) is rejected with
//! [`GgufError::UnknownTensorType`](crate::GgufError::UnknownTensorType) instead of being guessed at.

use std::fmt;

/// A ggml tensor element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    I8,
    I16,
    I32,
    I64,
    F64,
    Bf16,
}

/// Every supported type, in id order.
pub const ALL_TYPES: [GgmlType; 20] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Q8K,
    GgmlType::I8,
    GgmlType::I16,
    GgmlType::I32,
    GgmlType::I64,
    GgmlType::F64,
    GgmlType::Bf16,
];

impl GgmlType {
    /// The type for a ggml type id, or `None` for ids this crate does not know the layout of.
    pub fn from_id(id: u32) -> Option<Self> {
        ALL_TYPES.iter().copied().find(|t| t.id() == id)
    }

    /// The `ggml_type` id (`GGML_TYPE_*`).
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q8_1 => 9,
            Self::Q2K => 10,
            Self::Q3K => 11,
            Self::Q4K => 12,
            Self::Q5K => 13,
            Self::Q6K => 14,
            Self::Q8K => 15,
            Self::I8 => 24,
            Self::I16 => 25,
            Self::I32 => 26,
            Self::I64 => 27,
            Self::F64 => 28,
            Self::Bf16 => 30,
        }
    }

    /// Elements per block (`blck_size`): 1 for plain types, 32 for Q4_0…Q8_1, 256 for k-quants.
    pub fn block_size(self) -> u64 {
        match self {
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 | Self::Q8_1 => 32,
            Self::Q2K | Self::Q3K | Self::Q4K | Self::Q5K | Self::Q6K | Self::Q8K => 256,
            _ => 1,
        }
    }

    /// Bytes per block (`type_size`).
    pub fn type_size(self) -> u64 {
        match self {
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::Bf16 | Self::I16 => 2,
            Self::I8 => 1,
            Self::I64 | Self::F64 => 8,
            Self::Q4_0 => 18, // f16 d + 16 bytes of nibbles
            Self::Q4_1 => 20, // f16 d, f16 m + 16
            Self::Q5_0 => 22, // f16 d + 4 (high bits) + 16
            Self::Q5_1 => 24, // f16 d, f16 m + 4 + 16
            Self::Q8_0 => 34, // f16 d + 32 × i8
            Self::Q8_1 => 36, // f16 d, f16 s + 32 × i8
            Self::Q2K => 84,  // 16 scales + 64 qs + 2 × f16
            Self::Q3K => 110, // 32 hmask + 64 qs + 12 scales + f16
            Self::Q4K => 144, // 2 × f16 + 12 scales + 128 qs
            Self::Q5K => 176, // 2 × f16 + 12 scales + 32 qh + 128 qs
            Self::Q6K => 210, // 128 ql + 64 qh + 16 scales + f16
            Self::Q8K => 292, // f32 d + 256 qs + 16 × i16 bsums
        }
    }

    /// The name ggml prints (`ggml_type_name`), e.g. `q8_0`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Q4_0 => "q4_0",
            Self::Q4_1 => "q4_1",
            Self::Q5_0 => "q5_0",
            Self::Q5_1 => "q5_1",
            Self::Q8_0 => "q8_0",
            Self::Q8_1 => "q8_1",
            Self::Q2K => "q2_K",
            Self::Q3K => "q3_K",
            Self::Q4K => "q4_K",
            Self::Q5K => "q5_K",
            Self::Q6K => "q6_K",
            Self::Q8K => "q8_K",
            Self::I8 => "i8",
            Self::I16 => "i16",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::F64 => "f64",
            Self::Bf16 => "bf16",
        }
    }

    /// Bytes taken by a row-major tensor of this type with the given `ne` (ggml order), or `None`
    /// when `ne[0]` is not a multiple of the block size or the size overflows `u64`.
    pub fn byte_size(self, ne: &[u64]) -> Option<u64> {
        let first = ne.first().copied().unwrap_or(1);
        if first % self.block_size() != 0 {
            return None;
        }
        let mut n: u64 = 1;
        for &d in ne {
            n = n.checked_mul(d)?;
        }
        (n / self.block_size()).checked_mul(self.type_size())
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        for t in ALL_TYPES {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
        }
        assert_eq!(GgmlType::from_id(4), None, "Q4_2 was removed from ggml");
        assert_eq!(GgmlType::from_id(16), None, "IQ2_XXS layout is not supported");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(GgmlType::F32.byte_size(&[256, 510]), Some(256 * 510 * 4));
        assert_eq!(GgmlType::F16.byte_size(&[3]), Some(6));
        assert_eq!(GgmlType::Q8_0.byte_size(&[640, 256]), Some(640 / 32 * 34 * 256));
        assert_eq!(
            GgmlType::Q8_0.byte_size(&[20, 2]),
            None,
            "20 is not a multiple of 32"
        );
        assert_eq!(
            GgmlType::F32.byte_size(&[]),
            Some(4),
            "a 0-d tensor holds one element"
        );
        assert_eq!(GgmlType::F32.byte_size(&[u64::MAX, 2]), None);
        assert_eq!(GgmlType::F32.byte_size(&[0, 7]), Some(0));
    }
}
