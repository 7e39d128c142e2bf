//! A minimal `.npz` reader for the golden fixtures: zip (stored or deflate, zip64 extras) of
//! `.npy` files (format 1.0–3.0, little-endian `<f4` / `<i8`, C order).

use std::collections::HashMap;
use std::path::Path;

/// One array: shape (numpy order) and data.
#[derive(Debug, Clone)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Data,
}

#[derive(Debug, Clone)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl Array {
    pub fn f32(&self) -> &[f32] {
        match &self.data {
            Data::F32(v) => v,
            Data::I64(_) => panic!("array is int64, expected float32"),
        }
    }

    pub fn i64(&self) -> &[i64] {
        match &self.data {
            Data::I64(v) => v,
            Data::F32(_) => panic!("array is float32, expected int64"),
        }
    }
}

fn u16_at(b: &[u8], o: usize) -> usize {
    u16::from_le_bytes([b[o], b[o + 1]]) as usize
}

fn u32_at(b: &[u8], o: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]))
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Reads every array of an `.npz` file, keyed by name without the `.npy` suffix.
pub fn read(path: &Path) -> HashMap<String, Array> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let eocd = (0..=bytes.len() - 22)
        .rev()
        .find(|&i| u32_at(&bytes, i) == 0x0605_4b50)
        .expect("zip end-of-central-directory record");
    let n_entries = u16_at(&bytes, eocd + 10);
    let mut p = u32_at(&bytes, eocd + 16) as usize;
    let mut out = HashMap::new();
    for _ in 0..n_entries {
        assert_eq!(u32_at(&bytes, p), 0x0201_4b50, "central directory entry");
        let method = u16_at(&bytes, p + 10);
        let mut csize = u32_at(&bytes, p + 20);
        let mut usize_ = u32_at(&bytes, p + 24);
        let name_len = u16_at(&bytes, p + 28);
        let extra_len = u16_at(&bytes, p + 30);
        let comment_len = u16_at(&bytes, p + 32);
        let mut offset = u32_at(&bytes, p + 42);
        let name = String::from_utf8(bytes[p + 46..p + 46 + name_len].to_vec()).expect("utf-8 name");
        // zip64 extra field: the 0xFFFFFFFF fields, in the order usize, csize, offset.
        let mut e = p + 46 + name_len;
        let e_end = e + extra_len;
        while e + 4 <= e_end {
            let (id, len) = (u16_at(&bytes, e), u16_at(&bytes, e + 2));
            if id == 1 {
                let mut q = e + 4;
                for field in [&mut usize_, &mut csize, &mut offset] {
                    if *field == 0xFFFF_FFFF {
                        *field = u64_at(&bytes, q);
                        q += 8;
                    }
                }
            }
            e += 4 + len;
        }
        p = e_end + comment_len;
        let lh = offset as usize;
        assert_eq!(u32_at(&bytes, lh), 0x0403_4b50, "local header of {name}");
        let start = lh + 30 + u16_at(&bytes, lh + 26) + u16_at(&bytes, lh + 28);
        let raw = &bytes[start..start + csize as usize];
        let npy = match method {
            0 => raw.to_vec(),
            8 => miniz_oxide::inflate::decompress_to_vec(raw)
                .unwrap_or_else(|e| panic!("{}: inflate {name}: {e:?}", path.display())),
            m => panic!("{name}: zip method {m} unsupported"),
        };
        assert_eq!(npy.len() as u64, usize_, "{name}: size");
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_owned();
        out.insert(key, parse_npy(&npy, &name));
    }
    out
}

fn parse_npy(b: &[u8], name: &str) -> Array {
    assert_eq!(&b[..6], b"\x93NUMPY", "{name}: npy magic");
    let (hlen, hstart) = if b[6] == 1 {
        (u16_at(b, 8), 10)
    } else {
        (u32_at(b, 8) as usize, 12)
    };
    let header = std::str::from_utf8(&b[hstart..hstart + hlen]).expect("npy header");
    assert!(header.contains("'fortran_order': False"), "{name}: C order only");
    let shape_s = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("npy shape");
    let shape: Vec<usize> = shape_s
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("shape entry"))
        .collect();
    let n: usize = shape.iter().product();
    let body = &b[hstart + hlen..];
    let data = if header.contains("'descr': '<f4'") {
        Data::F32(
            body[..4 * n]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    } else if header.contains("'descr': '<i8'") {
        Data::I64(
            body[..8 * n]
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    i64::from_le_bytes(a)
                })
                .collect(),
        )
    } else {
        panic!("{name}: unsupported dtype in {header}")
    };
    Array { shape, data }
}
