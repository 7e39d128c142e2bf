//! A small in-memory GGUF writer (version 3), for building test files.
//!
//! It is not a converter: real model files come from `scripts/convert_kokoro.py`. It writes
//! exactly what [`GgufFile`](crate::GgufFile) reads: metadata in insertion order, tensor infos,
//! padding, then each tensor's data at the next multiple of the alignment.

use crate::error::GgufError;
use crate::reader::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};
use crate::types::GgmlType;
use crate::value::{Array, Value};

/// Collects metadata and tensors, then serializes them with [`to_bytes`](Self::to_bytes).
#[derive(Debug, Clone, Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata entry (appended; duplicates are written as given, so tests can build
    /// invalid files).
    pub fn kv(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        self.metadata.push((key.into(), value));
        self
    }

    /// Adds a `u32` entry.
    pub fn u32(&mut self, key: impl Into<String>, v: u32) -> &mut Self {
        self.kv(key, Value::U32(v))
    }

    /// Adds a string entry.
    pub fn string(&mut self, key: impl Into<String>, v: impl Into<String>) -> &mut Self {
        self.kv(key, Value::String(v.into()))
    }

    /// Adds a string-array entry.
    pub fn strings<S: Into<String>>(
        &mut self,
        key: impl Into<String>,
        v: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        let v = v.into_iter().map(Into::into).collect();
        self.kv(key, Value::Array(Array::String(v)))
    }

    /// Adds a tensor with raw little-endian data; `ne` is in ggml order.
    pub fn tensor(
        &mut self,
        name: impl Into<String>,
        ne: &[u64],
        ggml_type: GgmlType,
        data: Vec<u8>,
    ) -> &mut Self {
        self.tensors.push((name.into(), ne.to_vec(), ggml_type, data));
        self
    }

    /// Adds an F32 tensor.
    pub fn tensor_f32(&mut self, name: impl Into<String>, ne: &[u64], data: &[f32]) -> &mut Self {
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensor(name, ne, GgmlType::F32, bytes)
    }

    /// Serializes the file. Errors if a tensor's data length does not match its shape and type,
    /// or `general.alignment` is not a power-of-two `u32`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, GgufError> {
        let alignment = match self.metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY) {
            None => DEFAULT_ALIGNMENT,
            Some((_, Value::U32(a))) if a.is_power_of_two() => u64::from(*a),
            Some(_) => {
                return Err(GgufError::Writer(
                    "general.alignment must be a power-of-two u32".to_owned(),
                ))
            }
        };
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut out, k);
            out.extend_from_slice(&v.value_type().id().to_le_bytes());
            put_value(&mut out, v);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for (name, ne, ty, data) in &self.tensors {
            let size = ty.byte_size(ne).ok_or_else(|| {
                GgufError::Writer(format!("tensor {name:?}: shape {ne:?} invalid for {ty}"))
            })?;
            if size != data.len() as u64 {
                return Err(GgufError::Writer(format!(
                    "tensor {name:?}: {} data bytes, shape {ne:?} of {ty} needs {size}",
                    data.len()
                )));
            }
            put_str(&mut out, name);
            out.extend_from_slice(&(ne.len() as u32).to_le_bytes());
            for d in ne {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + size).next_multiple_of(alignment);
        }
        pad(&mut out, alignment);
        let data_start = out.len() as u64;
        for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
            out.resize((data_start + off) as usize, 0);
            out.extend_from_slice(data);
        }
        if !self.tensors.is_empty() {
            pad(&mut out, alignment);
        }
        Ok(out)
    }
}

fn pad(out: &mut Vec<u8>, alignment: u64) {
    let len = (out.len() as u64).next_multiple_of(alignment);
    out.resize(len as usize, 0);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_str(out, s),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Array(a) => {
            out.extend_from_slice(&a.element_type().id().to_le_bytes());
            out.extend_from_slice(&(a.len() as u64).to_le_bytes());
            macro_rules! each {
                ($v:expr) => {
                    for x in $v {
                        out.extend_from_slice(&x.to_le_bytes());
                    }
                };
            }
            match a {
                Array::U8(v) => each!(v),
                Array::I8(v) => each!(v),
                Array::U16(v) => each!(v),
                Array::I16(v) => each!(v),
                Array::U32(v) => each!(v),
                Array::I32(v) => each!(v),
                Array::F32(v) => each!(v),
                Array::U64(v) => each!(v),
                Array::I64(v) => each!(v),
                Array::F64(v) => each!(v),
                Array::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
                Array::String(v) => v.iter().for_each(|s| put_str(out, s)),
            }
        }
    }
}
