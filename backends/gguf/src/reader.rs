//! The GGUF parser and the [`GgufFile`] handle.
//!
//! Parsing validates the whole header before anything is handed out: magic, version, counts
//! against the bytes left, string and array lengths, UTF-8, value types, duplicate keys and tensor
//! names, tensor dimensions, types and byte sizes (with overflow checks), alignment of every data
//! offset, bounds of every tensor inside the data section, and that no two tensors overlap. Every
//! failure is a [`GgufError`]; no input makes the parser panic or allocate more than a small
//! multiple of the file size.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use crate::error::GgufError;
use crate::types::GgmlType;
use crate::value::{Array, Value, ValueType};

/// `GGUF` magic bytes.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Key holding the data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// Maximum tensor rank (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

/// Metadata of one tensor, as stored in the header.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The name; any length (no `GGML_MAX_NAME` limit).
    pub name: String,
    /// Dimensions in ggml order (`ne[0]` fastest); `ne.len()` is the stored `n_dims`.
    pub ne: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset of the data relative to the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub size: u64,
}

impl TensorInfo {
    /// Number of elements (product of `ne`; 1 for a 0-d tensor).
    pub fn n_elements(&self) -> u64 {
        // Cannot overflow: the parser checked the byte size, which is at least n / block_size,
        // and n itself was computed with checked multiplication.
        self.ne.iter().product()
    }
}

/// A borrowed tensor: its header info and its bytes inside the file's mapping.
#[derive(Debug, Clone, Copy)]
pub struct TensorRef<'a> {
    pub info: &'a TensorInfo,
    /// The raw data, little-endian, exactly `info.size` bytes.
    pub data: &'a [u8],
}

impl<'a> TensorRef<'a> {
    /// The data as `f32` without copying, when the tensor is F32, the host is little-endian and
    /// the bytes are 4-byte aligned in memory (always true for a memory-mapped file, whose data
    /// offsets are multiples of the alignment).
    pub fn as_f32(&self) -> Option<&'a [f32]> {
        if self.info.ggml_type != GgmlType::F32 || cfg!(target_endian = "big") {
            return None;
        }
        bytemuck::try_cast_slice(self.data).ok()
    }
}

/// Where the bytes live: a read-only memory mapping, or an owned buffer (tests, fuzzing).
enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Mmap(m) => m,
            Self::Owned(v) => v,
        }
    }
}

/// A parsed, validated GGUF file.
///
/// Tensor data is never copied: [`tensor`](Self::tensor) hands out slices of the mapping. Keep the
/// file in an `Arc` to share one mapping (and so one copy of the weights in memory) between model
/// instances; it is `Send + Sync`.
pub struct GgufFile {
    backing: Backing,
    version: u32,
    alignment: u64,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    data_offset: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("len", &self.backing.bytes().len())
            .field("alignment", &self.alignment)
            .field("n_metadata", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .field("data_offset", &self.data_offset)
            .finish()
    }
}

impl GgufFile {
    /// Memory-maps and validates the file at `path`.
    ///
    /// The file must not be modified or truncated while it is open (see the `SAFETY` note in
    /// [`map_file`]); replacing it by rename is fine.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref();
        let io = |source| GgufError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            // Mapping an empty file fails on some platforms; report it as what it is.
            return Self::from_bytes(Vec::new());
        }
        let map = map_file(&file).map_err(io)?;
        Self::parse(Backing::Mmap(map))
    }

    /// Parses and validates an in-memory file (tests, fuzzing, small files).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, GgufError> {
        Self::parse(Backing::Owned(bytes))
    }

    fn parse(backing: Backing) -> Result<Self, GgufError> {
        let header = parse_header(backing.bytes())?;
        Ok(Self {
            backing,
            version: header.version,
            alignment: header.alignment,
            key_index: header
                .metadata
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect(),
            metadata: header.metadata,
            tensor_index: header
                .tensors
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.clone(), i))
                .collect(),
            tensors: header.tensors,
            data_offset: header.data_offset,
        })
    }

    /// GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Data alignment in bytes.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// File size in bytes.
    pub fn file_size(&self) -> u64 {
        self.backing.bytes().len() as u64
    }

    /// Offset of the data section from the start of the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// All metadata entries, in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn require(&self, key: &str) -> Result<&Value, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey(key.to_owned()))
    }

    /// A `u32` value; any other type is an error naming the key.
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        match self.require(key)? {
            Value::U32(v) => Ok(*v),
            v => Err(GgufError::wrong_type(key, ValueType::U32, v)),
        }
    }

    /// A `f32` value.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        match self.require(key)? {
            Value::F32(v) => Ok(*v),
            v => Err(GgufError::wrong_type(key, ValueType::F32, v)),
        }
    }

    /// A string value.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        match self.require(key)? {
            Value::String(v) => Ok(v),
            v => Err(GgufError::wrong_type(key, ValueType::String, v)),
        }
    }

    /// An array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<&[String], GgufError> {
        match self.require(key)? {
            Value::Array(Array::String(v)) => Ok(v),
            v => Err(GgufError::WrongType {
                key: key.to_owned(),
                expected: "array[string]".to_owned(),
                found: v.type_description(),
            }),
        }
    }

    /// An array of `u32`.
    pub fn get_u32_array(&self, key: &str) -> Result<&[u32], GgufError> {
        match self.require(key)? {
            Value::Array(Array::U32(v)) => Ok(v),
            v => Err(GgufError::WrongType {
                key: key.to_owned(),
                expected: "array[u32]".to_owned(),
                found: v.type_description(),
            }),
        }
    }

    /// An array of `f32`.
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32], GgufError> {
        match self.require(key)? {
            Value::Array(Array::F32(v)) => Ok(v),
            v => Err(GgufError::WrongType {
                key: key.to_owned(),
                expected: "array[f32]".to_owned(),
                found: v.type_description(),
            }),
        }
    }

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor called `name`, with its data borrowed from the mapping.
    pub fn tensor(&self, name: &str) -> Option<TensorRef<'_>> {
        let info = &self.tensors[*self.tensor_index.get(name)?];
        Some(TensorRef {
            info,
            data: self.tensor_data(info),
        })
    }

    /// The bytes of a tensor of this file.
    ///
    /// # Panics
    /// If `info` does not come from this file's [`tensors`](Self::tensors) (its range was checked
    /// at parse time only for this file's infos).
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        // Both casts and the sum were checked against the file length by `parse_header`.
        let start = (self.data_offset + info.offset) as usize;
        &self.backing.bytes()[start..start + info.size as usize]
    }

    /// The whole tensor-data section of the file (from [`data_offset`](Self::data_offset) to
    /// the end), borrowed from the mapping; every [`TensorInfo::offset`] is relative to its
    /// start. For wrapping all weights at once without copying (its start is aligned to
    /// [`alignment`](Self::alignment) within the file, and a mapping starts on a page boundary).
    pub fn data_section(&self) -> &[u8] {
        let bytes = self.backing.bytes();
        bytes.get(self.data_offset as usize..).unwrap_or(&[])
    }

    /// Total bytes of tensor data.
    pub fn tensor_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.size).sum()
    }
}

/// Maps `file` read-only.
#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: `Mmap::map` is unsafe because the mapped bytes change (or the process gets SIGBUS)
    // if the file is modified or truncated while mapped. We assume model files are not modified
    // in place while open (tools replace them by writing a new file and renaming it over the old
    // one, which leaves existing mappings intact); this assumption is documented on
    // `GgufFile::open`. The mapping is read-only and only ever exposed as `&[u8]`.
    unsafe { memmap2::Mmap::map(file) }
}

struct Header {
    version: u32,
    alignment: u64,
    metadata: Vec<(String, Value)>,
    tensors: Vec<TensorInfo>,
    data_offset: u64,
}

/// A bounds-checked little-endian cursor.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos as u64,
                needed: n,
                available: self.remaining(),
            });
        }
        // n ≤ remaining ≤ usize::MAX, so the cast is lossless.
        let n = n as usize;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn i64(&mut self, what: &dyn Fn() -> String) -> Result<i64, GgufError> {
        self.array(what).map(i64::from_le_bytes)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(&|| format!("length of {}", what()))?;
        let start = self.pos as u64;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8 {
            what: what(),
            offset: start,
        })
    }

    /// Reads an element count and checks that `count` elements of at least `min_size` bytes
    /// each can fit in the rest of the file.
    fn count(&mut self, min_size: u64, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        let offset = self.pos as u64;
        let count = self.u64(what)?;
        self.check_count(count as i128, min_size, offset, what)
    }

    fn check_count(
        &self,
        count: i128,
        min_size: u64,
        offset: u64,
        what: &dyn Fn() -> String,
    ) -> Result<u64, GgufError> {
        let fits = u64::try_from(count)
            .ok()
            .filter(|&c| c.checked_mul(min_size).is_some_and(|b| b <= self.remaining()));
        fits.ok_or_else(|| GgufError::BadCount {
            what: what(),
            count,
            offset,
        })
    }
}

fn parse_header(buf: &[u8]) -> Result<Header, GgufError> {
    let mut c = Cursor { buf, pos: 0 };
    let magic: [u8; 4] = c.array(&|| "magic".to_owned())?;
    if magic != MAGIC {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = c.u32(&|| "version".to_owned())?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let (tc_off, n_tensors) = (c.pos as u64, c.i64(&|| "tensor count".to_owned())?);
    let (kc_off, n_kv) = (c.pos as u64, c.i64(&|| "metadata count".to_owned())?);
    // Smallest tensor info: name length 8 + n_dims 4 + type 4 + offset 8.
    let n_tensors = c.check_count(n_tensors.into(), 24, tc_off, &|| "tensor".to_owned())?;
    // Smallest key-value: key length 8 + type 4 + a 1-byte value.
    let n_kv = c.check_count(n_kv.into(), 13, kc_off, &|| "metadata key-value".to_owned())?;

    let mut metadata: Vec<(String, Value)> = Vec::new();
    let mut key_index: HashMap<String, usize> = HashMap::new();
    for i in 0..n_kv {
        let key = c.string(&|| format!("metadata key #{i}"))?;
        let type_off = c.pos as u64;
        let type_id = c.u32(&|| format!("type of metadata key {key:?}"))?;
        let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
            key: key.clone(),
            id: type_id,
            offset: type_off,
        })?;
        let value = read_value(&mut c, &key, ty)?;
        if key_index.insert(key.clone(), metadata.len()).is_some() {
            return Err(GgufError::DuplicateKey(key));
        }
        metadata.push((key, value));
    }

    let alignment = match key_index.get(ALIGNMENT_KEY).map(|&i| &metadata[i].1) {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(Value::U32(a)) => return Err(GgufError::BadAlignment(format!("{a} is not a power of two"))),
        Some(v) => {
            return Err(GgufError::BadAlignment(format!(
                "type {}, expected u32",
                v.type_description()
            )))
        }
    };

    let mut tensors: Vec<TensorInfo> = Vec::new();
    let mut names: HashMap<String, ()> = HashMap::new();
    for i in 0..n_tensors {
        let name = c.string(&|| format!("name of tensor #{i}"))?;
        let n_dims = c.u32(&|| format!("n_dims of tensor {name:?}"))?;
        if n_dims > MAX_DIMS {
            return Err(GgufError::TooManyDims {
                name,
                n_dims,
                max: MAX_DIMS,
            });
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for dim in 0..n_dims as usize {
            let d = c.i64(&|| format!("ne[{dim}] of tensor {name:?}"))?;
            let d = u64::try_from(d).map_err(|_| GgufError::NegativeDim {
                name: name.clone(),
                dim,
                value: d,
            })?;
            ne.push(d);
        }
        let type_id = c.u32(&|| format!("type of tensor {name:?}"))?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
            name: name.clone(),
            id: type_id,
        })?;
        let offset = c.u64(&|| format!("data offset of tensor {name:?}"))?;
        let size = ggml_type
            .byte_size(&ne)
            .filter(|&s| usize::try_from(s).is_ok())
            .ok_or_else(|| GgufError::BadTensorShape {
                name: name.clone(),
                ne: ne.clone(),
                ggml_type: ggml_type.name().to_owned(),
                block: ggml_type.block_size(),
            })?;
        if offset % alignment != 0 {
            return Err(GgufError::MisalignedTensor {
                name,
                offset,
                alignment,
            });
        }
        if names.insert(name.clone(), ()).is_some() {
            return Err(GgufError::DuplicateTensor(name));
        }
        tensors.push(TensorInfo {
            name,
            ne,
            ggml_type,
            offset,
            size,
        });
    }

    let header_end = c.pos as u64;
    let file_len = buf.len() as u64;
    // header_end ≤ file_len ≤ u64::MAX / 2 in practice, but stay checked.
    let data_offset = header_end
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| GgufError::BadAlignment("data offset overflows".to_owned()))?;
    let data_len = file_len.saturating_sub(data_offset);
    for t in &tensors {
        // Zero-sized tensors too: their (empty) slice must still start inside the file.
        let end = t.offset.checked_add(t.size);
        if data_offset > file_len || end.is_none_or(|e| e > data_len) {
            return Err(GgufError::TensorOutOfBounds {
                name: t.name.clone(),
                offset: t.offset,
                size: t.size,
                data_len,
            });
        }
    }
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().filter(|t| t.size > 0).collect();
    by_offset.sort_by_key(|t| t.offset);
    for pair in by_offset.windows(2) {
        if pair[0].offset + pair[0].size > pair[1].offset {
            return Err(GgufError::OverlappingTensors {
                first: pair[0].name.clone(),
                second: pair[1].name.clone(),
            });
        }
    }

    Ok(Header {
        version,
        alignment,
        metadata,
        tensors,
        data_offset,
    })
}

fn read_value(c: &mut Cursor<'_>, key: &str, ty: ValueType) -> Result<Value, GgufError> {
    let what = || format!("value of metadata key {key:?}");
    Ok(match ty {
        ValueType::U8 => Value::U8(u8::from_le_bytes(c.array(&what)?)),
        ValueType::I8 => Value::I8(i8::from_le_bytes(c.array(&what)?)),
        ValueType::U16 => Value::U16(u16::from_le_bytes(c.array(&what)?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(c.array(&what)?)),
        ValueType::U32 => Value::U32(u32::from_le_bytes(c.array(&what)?)),
        ValueType::I32 => Value::I32(i32::from_le_bytes(c.array(&what)?)),
        ValueType::F32 => Value::F32(f32::from_le_bytes(c.array(&what)?)),
        ValueType::Bool => Value::Bool(c.array::<1>(&what)?[0] != 0),
        ValueType::String => Value::String(c.string(&what)?),
        ValueType::U64 => Value::U64(u64::from_le_bytes(c.array(&what)?)),
        ValueType::I64 => Value::I64(i64::from_le_bytes(c.array(&what)?)),
        ValueType::F64 => Value::F64(f64::from_le_bytes(c.array(&what)?)),
        ValueType::Array => Value::Array(read_array(c, key)?),
    })
}

fn read_array(c: &mut Cursor<'_>, key: &str) -> Result<Array, GgufError> {
    let type_off = c.pos as u64;
    let type_id = c.u32(&|| format!("array type of metadata key {key:?}"))?;
    let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
        key: key.to_owned(),
        id: type_id,
        offset: type_off,
    })?;
    let n = c.count(ty.min_encoded_size(), &|| {
        format!("array length of metadata key {key:?}")
    })?;
    let what = || format!("array element of metadata key {key:?}");
    // Counts were bounded by the bytes left, so these loops allocate at most a small multiple of
    // the file size.
    macro_rules! fixed {
        ($variant:ident, $t:ty) => {{
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(<$t>::from_le_bytes(c.array(&what)?));
            }
            Array::$variant(v)
        }};
    }
    Ok(match ty {
        ValueType::U8 => fixed!(U8, u8),
        ValueType::I8 => fixed!(I8, i8),
        ValueType::U16 => fixed!(U16, u16),
        ValueType::I16 => fixed!(I16, i16),
        ValueType::U32 => fixed!(U32, u32),
        ValueType::I32 => fixed!(I32, i32),
        ValueType::F32 => fixed!(F32, f32),
        ValueType::U64 => fixed!(U64, u64),
        ValueType::I64 => fixed!(I64, i64),
        ValueType::F64 => fixed!(F64, f64),
        ValueType::Bool => {
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(c.array::<1>(&what)?[0] != 0);
            }
            Array::Bool(v)
        }
        ValueType::String => {
            let mut v = Vec::new();
            for i in 0..n {
                v.push(c.string(&|| format!("string #{i} of metadata key {key:?}"))?);
            }
            Array::String(v)
        }
        ValueType::Array => return Err(GgufError::NestedArray { key: key.to_owned() }),
    })
}
