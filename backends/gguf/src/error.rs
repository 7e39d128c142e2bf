//! Errors of the GGUF reader and writer.

use std::path::PathBuf;

use crate::value::ValueType;

/// Everything that can go wrong opening, parsing or querying a GGUF file.
///
/// Offsets are byte offsets from the start of the file, so a message points at the bad bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    #[error("cannot read GGUF file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a GGUF file: magic is {found:02x?}, expected \"GGUF\"")]
    BadMagic { found: [u8; 4] },
    #[error(
        "unsupported GGUF version {0} (supported: 2 and 3; a byte-swapped version means a big-endian file)"
    )]
    UnsupportedVersion(u32),
    #[error("file truncated: {what} at offset {offset} needs {needed} bytes, {available} left")]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        available: u64,
    },
    #[error("{what} count {count} at offset {offset} is impossible for a file of this size")]
    BadCount { what: String, count: i128, offset: u64 },
    #[error("{what} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { what: String, offset: u64 },
    #[error("metadata key {key:?}: unknown value type id {id} at offset {offset}")]
    UnknownValueType { key: String, id: u32, offset: u64 },
    #[error("metadata key {key:?}: nested arrays are not supported")]
    NestedArray { key: String },
    #[error("duplicate metadata key {0:?}")]
    DuplicateKey(String),
    #[error("metadata key \"general.alignment\": {0}")]
    BadAlignment(String),
    #[error("duplicate tensor name {0:?}")]
    DuplicateTensor(String),
    #[error("tensor {name:?}: {n_dims} dimensions (at most {max})")]
    TooManyDims { name: String, n_dims: u32, max: u32 },
    #[error("tensor {name:?}: dimension {dim} is {value} (must be ≥ 0)")]
    NegativeDim { name: String, dim: usize, value: i64 },
    #[error("tensor {name:?}: unknown or unsupported ggml type id {id}")]
    UnknownTensorType { name: String, id: u32 },
    #[error("tensor {name:?}: shape {ne:?} does not fit type {ggml_type} (ne[0] must be a multiple of {block}, size must fit in memory)")]
    BadTensorShape {
        name: String,
        ne: Vec<u64>,
        ggml_type: String,
        block: u64,
    },
    #[error("tensor {name:?}: data offset {offset} is not a multiple of the alignment {alignment}")]
    MisalignedTensor {
        name: String,
        offset: u64,
        alignment: u64,
    },
    #[error(
        "tensor {name:?}: data [{offset}, {offset}+{size}) lies outside the {data_len}-byte data section"
    )]
    TensorOutOfBounds {
        name: String,
        offset: u64,
        size: u64,
        data_len: u64,
    },
    #[error("tensors {first:?} and {second:?} overlap in the data section")]
    OverlappingTensors { first: String, second: String },
    #[error("metadata key {0:?} is missing")]
    MissingKey(String),
    #[error("metadata key {key:?} has type {found}, expected {expected}")]
    WrongType {
        key: String,
        expected: String,
        found: String,
    },
    #[error("writer: {0}")]
    Writer(String),
}

impl GgufError {
    pub(crate) fn wrong_type(key: &str, expected: ValueType, found: &crate::Value) -> Self {
        Self::WrongType {
            key: key.to_owned(),
            expected: expected.name().to_owned(),
            found: found.type_description(),
        }
    }
}
