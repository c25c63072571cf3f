//! File formats as DLIO writes them (dlio.md §3.2): npz (stored zip of `x.npy` + `y.npy`),
//! tfrecord (framing with masked CRC32C around `tf.train.Example{image, size}`), the v3 "jpeg"
//! (raw bytes with a `.jpeg` name; under v2 a real JPEG, [`jpeg_v2`]), and parquet as the v3 fork
//! writes it with pyarrow ([`parquet`]). Writers stream the payload in chunks from a
//! caller-supplied fill function; parsers check what numpy / TensorFlow check when they load a
//! file. hdf5 is not produced: no v3.0 workload uses it.

pub mod jpeg_v2;
pub mod parquet;

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::Error;
use crate::workload::{Format, Semantics};

/// What a writer needs to know about one file.
#[derive(Debug, Clone)]
pub struct FileSpec {
    pub format: Format,
    pub dim1: u64,
    pub dim2: u64,
    pub samples: u64,
    pub itemsize: u64,
    /// NumPy dtype string of the samples (`|u1` for uint8).
    pub descr: &'static str,
    /// Value of the tfrecord `size` feature (v3: `dim1·dim2·itemsize`, v2: `dimension`).
    pub tf_size_feature: i64,
    /// The `dataset.parquet` section (parquet only; see [`parquet::ParquetLayout::from_workload`]).
    /// Legacy-mode files (no columns) hold `dim1·dim2` uint8 per row.
    pub parquet: Option<Arc<parquet::ParquetLayout>>,
    /// v2 jpeg files are real JPEGs ([`jpeg_v2`]); v3 writes raw bytes.
    pub semantics: Semantics,
}

impl FileSpec {
    /// Payload bytes of one sample.
    pub fn sample_bytes(&self) -> u64 {
        self.dim1 * self.dim2 * self.itemsize
    }

    /// The exact size of the file the writer produces; for a v2 JPEG (see [`Self::size_is_exact`])
    /// the pixel bytes, an estimate: its encoded size is known only once encoded.
    pub fn file_size(&self) -> u64 {
        match self.format {
            Format::Npz => {
                let (xh, yh) = (
                    npy_header(self.descr, &self.x_shape()).len() as u64,
                    npy_header("<i8", &[self.samples]).len() as u64,
                );
                let x = xh + self.sample_bytes() * self.samples;
                let y = yh + 8 * self.samples;
                2 * (30 + 5) + x + y + 2 * (46 + 5) + 22
            }
            Format::Npy => {
                npy_header(self.descr, &self.x_shape()).len() as u64
                    + self.sample_bytes() * self.samples
            }
            Format::Tfrecord => {
                self.samples * (16 + example_len(self.sample_bytes(), self.tf_size_feature))
            }
            Format::Parquet => match &self.parquet {
                Some(l) => l.file_size(self.dim1 * self.dim2, self.samples),
                None => 0,
            },
            _ => self.sample_bytes() * self.samples,
        }
    }

    /// False for v2 JPEGs, whose encoded size [`Self::file_size`] can only estimate.
    pub fn size_is_exact(&self) -> bool {
        !self.is_jpeg_v2()
    }

    fn is_jpeg_v2(&self) -> bool {
        self.format == Format::Jpeg && self.semantics == Semantics::V2
    }

    /// Whether the file found at `path` (`existing_len` bytes, `None` if absent) is a complete
    /// file of this spec, so datagen may keep it.
    pub fn existing_is_complete(&self, path: &Path, existing_len: Option<u64>) -> bool {
        if self.is_jpeg_v2() {
            existing_len.is_some() && jpeg_v2::is_complete(path, self.dim1, self.dim2)
        } else {
            existing_len == Some(self.file_size())
        }
    }

    fn x_shape(&self) -> [u64; 3] {
        [self.dim1, self.dim2, self.samples]
    }
}

/// NumPy dtype string for a `record_element_type`.
pub fn numpy_descr(dtype: &str) -> &'static str {
    match dtype {
        "uint8" => "|u1",
        "int8" => "|i1",
        "uint16" => "<u2",
        "int16" => "<i2",
        "float16" => "<f2",
        "uint32" => "<u4",
        "int32" => "<i4",
        "float32" => "<f4",
        "uint64" => "<u8",
        "int64" => "<i8",
        "float64" => "<f8",
        _ => "|u1",
    }
}

/// A version 1.0 NPY header, padded with spaces to a multiple of 64 bytes and ending in `\n`.
pub fn npy_header(descr: &str, shape: &[u64]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    let shape_txt = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    let total = (10 + dict.len() + 1).div_ceil(64) * 64;
    let mut h = Vec::with_capacity(total);
    h.extend_from_slice(b"\x93NUMPY\x01\x00");
    h.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    h
}

/// Streams `n` payload bytes through `chunk` (reused), filling from `fill(offset, buf)` and passing
/// each piece to `sink`.
fn stream(
    n: u64,
    chunk: &mut [u8],
    fill: &mut dyn FnMut(u64, &mut [u8]),
    sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut off = 0u64;
    while off < n {
        let len = (n - off).min(chunk.len() as u64) as usize;
        let buf = &mut chunk[..len];
        fill(off, buf);
        sink(buf)?;
        off += len as u64;
    }
    Ok(())
}

/// Writes one file of `spec` to `file` (positioned at 0). `fill(offset, buf)` supplies the sample
/// bytes (offset within the file's sample payload); `chunk` is a reusable buffer. Returns bytes written.
pub fn write_file(
    file: &mut File,
    path: &Path,
    spec: &FileSpec,
    chunk: &mut [u8],
    fill: &mut dyn FnMut(u64, &mut [u8]),
) -> Result<u64, Error> {
    let io = |e| Error::io(path, e);
    match spec.format {
        Format::Npz => write_npz(file, spec, chunk, fill).map_err(io)?,
        Format::Npy => {
            file.write_all(&npy_header(spec.descr, &spec.x_shape()))
                .map_err(io)?;
            stream(spec.sample_bytes() * spec.samples, chunk, fill, &mut |b| {
                file.write_all(b)
            })
            .map_err(io)?;
        }
        Format::Tfrecord => write_tfrecord(file, spec, chunk, fill).map_err(io)?,
        // DLIO 2.0.0 writes one PIL-encoded grayscale image per file; the v3 fork raw bytes.
        Format::Jpeg if spec.semantics == Semantics::V2 => {
            return jpeg_v2::write(file, path, spec.dim1, spec.dim2, chunk, fill);
        }
        Format::Jpeg | Format::Png => {
            stream(spec.sample_bytes() * spec.samples, chunk, fill, &mut |b| {
                file.write_all(b)
            })
            .map_err(io)?;
        }
        Format::Parquet => {
            let layout = spec.parquet.as_deref().ok_or_else(|| Error::Format {
                path: path.to_path_buf(),
                message: "parquet file without a dataset.parquet layout (internal: build the \
                          FileSpec with datagen::file_spec)"
                    .into(),
            })?;
            let written = parquet::write(
                &mut *file,
                layout,
                spec.dim1 * spec.dim2,
                spec.samples,
                Some(fill),
            )
            .map_err(io)?;
            if written != spec.file_size() {
                return Err(Error::Format {
                    path: path.to_path_buf(),
                    message: format!(
                        "parquet writer produced {written} bytes, its dry run predicted {} \
                         (internal error: please report)",
                        spec.file_size()
                    ),
                });
            }
            return Ok(written);
        }
        Format::Hdf5 | Format::Other => {
            return Err(Error::Format {
                path: path.to_path_buf(),
                message: format!(
                    "generating {:?} files is not supported by this build (supported: npz, npy, \
                     jpeg, png, tfrecord, parquet; no v3.0 workload uses hdf5)",
                    spec.format
                ),
            });
        }
    }
    Ok(spec.file_size())
}

// ---------------------------------------------------------------------------------------------
// npz: a stored (uncompressed) zip with x.npy and y.npy, as np.savez writes it.

fn local_header(name: &str, crc: u32, size: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(30 + name.len());
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    h.extend_from_slice(&20u16.to_le_bytes()); // version needed
    h.extend_from_slice(&0u16.to_le_bytes()); // flags
    h.extend_from_slice(&0u16.to_le_bytes()); // method: stored
    h.extend_from_slice(&0u16.to_le_bytes()); // time
    h.extend_from_slice(&0x0021u16.to_le_bytes()); // date 1980-01-01
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h
}

fn central_header(name: &str, crc: u32, size: u32, offset: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(46 + name.len());
    h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    h.extend_from_slice(&20u16.to_le_bytes()); // made by
    h.extend_from_slice(&20u16.to_le_bytes()); // needed
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0x0021u16.to_le_bytes());
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&[0u8; 8]); // extra len, comment len, disk, internal attrs
    h.extend_from_slice(&0o600u32.wrapping_shl(16).to_le_bytes()); // external attrs
    h.extend_from_slice(&offset.to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h
}

fn write_npz(
    file: &mut File,
    spec: &FileSpec,
    chunk: &mut [u8],
    fill: &mut dyn FnMut(u64, &mut [u8]),
) -> std::io::Result<()> {
    let too_big = || {
        std::io::Error::other("npz member larger than 4 GiB (zip64 not supported by this writer)")
    };
    let xh = npy_header(spec.descr, &spec.x_shape());
    let x_len = u32::try_from(xh.len() as u64 + spec.sample_bytes() * spec.samples)
        .map_err(|_| too_big())?;
    // Placeholder local header; rewritten with the CRC once the data is written.
    file.write_all(&local_header("x.npy", 0, x_len))?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&xh);
    file.write_all(&xh)?;
    stream(spec.sample_bytes() * spec.samples, chunk, fill, &mut |b| {
        crc.update(b);
        file.write_all(b)
    })?;
    let x_crc = crc.finalize();
    let y_off = 35 + u64::from(x_len);
    let yh = npy_header("<i8", &[spec.samples]);
    let mut y = yh;
    y.resize(y.len() + 8 * spec.samples as usize, 0);
    let y_crc = crc32fast::hash(&y);
    let y_len = y.len() as u32;
    file.write_all(&local_header("y.npy", y_crc, y_len))?;
    file.write_all(&y)?;
    let cd_off = y_off + 35 + u64::from(y_len);
    let y_off32 = u32::try_from(y_off).map_err(|_| too_big())?;
    let cd_off32 = u32::try_from(cd_off).map_err(|_| too_big())?;
    let mut tail = central_header("x.npy", x_crc, x_len, 0);
    tail.extend(central_header("y.npy", y_crc, y_len, y_off32));
    let cd_len = tail.len() as u32;
    tail.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    tail.extend_from_slice(&[0u8; 4]);
    tail.extend_from_slice(&2u16.to_le_bytes());
    tail.extend_from_slice(&2u16.to_le_bytes());
    tail.extend_from_slice(&cd_len.to_le_bytes());
    tail.extend_from_slice(&cd_off32.to_le_bytes());
    tail.extend_from_slice(&0u16.to_le_bytes());
    file.write_all(&tail)?;
    file.write_all_at(&local_header("x.npy", x_crc, x_len), 0)
}

/// One array member of an npz file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyMember {
    pub name: String,
    pub descr: String,
    pub shape: Vec<u64>,
    /// Offset of the array data within the npz file.
    pub data_offset: u64,
    pub data_len: u64,
}

fn bad(path: &Path, m: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: m.into(),
    }
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}
fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

/// Parses an NPY header at the start of `b`: `(descr, shape, header length)`.
pub fn parse_npy_header(path: &Path, b: &[u8]) -> Result<(String, Vec<u64>, usize), Error> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(bad(path, "not an NPY array (magic missing)"));
    }
    let (hlen, start) = match b[6] {
        1 => (le16(b, 8) as usize, 10),
        2 | 3 => (le32(b, 8) as usize, 12),
        v => return Err(bad(path, format!("unsupported NPY version {v}"))),
    };
    let dict = std::str::from_utf8(
        b.get(start..start + hlen)
            .ok_or_else(|| bad(path, "NPY header truncated"))?,
    )
    .map_err(|_| bad(path, "NPY header not text"))?;
    let field = |k: &str| dict.find(k).map(|i| &dict[i + k.len()..]);
    let descr = field("'descr': '")
        .and_then(|s| s.split('\'').next())
        .ok_or_else(|| bad(path, "NPY header without descr"))?;
    let shape_txt = field("'shape': (")
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad(path, "NPY header without shape"))?;
    let shape = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<u64>()
                .map_err(|_| bad(path, format!("bad NPY shape ({shape_txt})")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if dict.contains("'fortran_order': True") {
        return Err(bad(path, "fortran-ordered arrays are not produced by DLIO"));
    }
    Ok((descr.to_string(), shape, start + hlen))
}

/// Parses a whole npz file held in `b` the way `np.load(path)[name]` does: the zip directory, every
/// member's local header, its CRC32, and the NPY header (shape × itemsize must match the data).
pub fn parse_npz(path: &Path, b: &[u8]) -> Result<Vec<NpyMember>, Error> {
    let eocd = (0..b.len().saturating_sub(21))
        .rev()
        .find(|&i| le32(b, i) == 0x0605_4b50)
        .ok_or_else(|| {
            bad(
                path,
                "not a zip archive (no end-of-central-directory record)",
            )
        })?;
    let entries = le16(b, eocd + 10) as usize;
    let mut at = le32(b, eocd + 16) as usize;
    let mut out = Vec::with_capacity(entries);
    for _ in 0..entries {
        if at + 46 > b.len() || le32(b, at) != 0x0201_4b50 {
            return Err(bad(path, "corrupt zip central directory"));
        }
        let method = le16(b, at + 10);
        let crc = le32(b, at + 16) as u32;
        let size = le32(b, at + 24) as usize;
        let nlen = le16(b, at + 28) as usize;
        let skip = nlen + le16(b, at + 30) as usize + le16(b, at + 32) as usize;
        let lho = le32(b, at + 42) as usize;
        let name = String::from_utf8_lossy(&b[at + 46..at + 46 + nlen]).to_string();
        at += 46 + skip;
        if method != 0 {
            return Err(bad(
                path,
                format!("member {name}: compressed members are not read by this parser"),
            ));
        }
        if lho + 30 > b.len() || le32(b, lho) != 0x0403_4b50 {
            return Err(bad(path, format!("member {name}: bad local header")));
        }
        let data = lho + 30 + le16(b, lho + 26) as usize + le16(b, lho + 28) as usize;
        let member = b
            .get(data..data + size)
            .ok_or_else(|| bad(path, format!("member {name}: truncated")))?;
        if crc32fast::hash(member) != crc {
            return Err(bad(path, format!("member {name}: CRC-32 mismatch")));
        }
        let (descr, shape, hl) = parse_npy_header(path, member)?;
        let item = crate::layout::itemsize(match descr.as_str() {
            "|u1" | "|i1" | "|b1" => "uint8",
            d if d.ends_with('2') => "int16",
            d if d.ends_with('4') => "int32",
            _ => "int64",
        });
        let want = shape.iter().product::<u64>() * item;
        if want != (size - hl) as u64 {
            return Err(bad(
                path,
                format!(
                    "member {name}: shape {shape:?} needs {want} bytes, has {}",
                    size - hl
                ),
            ));
        }
        out.push(NpyMember {
            name,
            descr,
            shape,
            data_offset: (data + hl) as u64,
            data_len: want,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// tfrecord

/// TFRecord's masked CRC32C.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    mask(crc32c::crc32c(data))
}

fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> u64 {
    let mut n = 1;
    let mut v = v >> 7;
    while v > 0 {
        n += 1;
        v >>= 7;
    }
    n
}

/// Serialized `tf.train.Example` around an `image` payload of `n` bytes: `(prefix, suffix)`;
/// the full message is `prefix ‖ payload ‖ suffix`.
fn example_parts(n: u64, size_feature: i64) -> (Vec<u8>, Vec<u8>) {
    // image entry: MapEntry{key:"image", value: Feature{bytes_list: BytesList{value: [payload]}}}
    let bytes_list_len = 1 + varint_len(n) + n;
    let feature_img_len = 1 + varint_len(bytes_list_len) + bytes_list_len;
    let entry_img_len = 2 + 5 + 1 + varint_len(feature_img_len) + feature_img_len;
    // size entry: Feature{int64_list: Int64List{value: [size] packed}}
    let sv = size_feature as u64;
    let packed_len = varint_len(sv);
    let int64_list_len = 1 + varint_len(packed_len) + packed_len;
    let feature_size_len = 1 + varint_len(int64_list_len) + int64_list_len;
    let entry_size_len = 2 + 4 + 1 + varint_len(feature_size_len) + feature_size_len;
    let features_len = 1
        + varint_len(entry_img_len)
        + entry_img_len
        + 1
        + varint_len(entry_size_len)
        + entry_size_len;

    let mut pre = Vec::with_capacity(40);
    pre.push(0x0a); // Example.features
    varint(features_len, &mut pre);
    pre.push(0x0a); // Features.feature (map entry)
    varint(entry_img_len, &mut pre);
    pre.extend_from_slice(b"\x0a\x05image");
    pre.push(0x12); // value: Feature
    varint(feature_img_len, &mut pre);
    pre.push(0x0a); // Feature.bytes_list
    varint(bytes_list_len, &mut pre);
    pre.push(0x0a); // BytesList.value
    varint(n, &mut pre);

    let mut suf = Vec::with_capacity(24);
    suf.push(0x0a);
    varint(entry_size_len, &mut suf);
    suf.extend_from_slice(b"\x0a\x04size");
    suf.push(0x12);
    varint(feature_size_len, &mut suf);
    suf.push(0x1a); // Feature.int64_list
    varint(int64_list_len, &mut suf);
    suf.push(0x0a); // Int64List.value (packed)
    varint(packed_len, &mut suf);
    varint(sv, &mut suf);
    (pre, suf)
}

fn example_len(n: u64, size_feature: i64) -> u64 {
    let (p, s) = example_parts(n, size_feature);
    p.len() as u64 + n + s.len() as u64
}

fn write_tfrecord(
    file: &mut File,
    spec: &FileSpec,
    chunk: &mut [u8],
    fill: &mut dyn FnMut(u64, &mut [u8]),
) -> std::io::Result<()> {
    let n = spec.sample_bytes();
    let (pre, suf) = example_parts(n, spec.tf_size_feature);
    let len = pre.len() as u64 + n + suf.len() as u64;
    let len_bytes = len.to_le_bytes();
    for k in 0..spec.samples {
        file.write_all(&len_bytes)?;
        file.write_all(&masked_crc32c(&len_bytes).to_le_bytes())?;
        let mut crc = crc32c::crc32c(&pre);
        file.write_all(&pre)?;
        let base = k * n;
        stream(n, chunk, &mut |off, b| fill(base + off, b), &mut |b| {
            crc = crc32c::crc32c_append(crc, b);
            file.write_all(b)
        })?;
        crc = crc32c::crc32c_append(crc, &suf);
        file.write_all(&suf)?;
        file.write_all(&mask(crc).to_le_bytes())?;
    }
    Ok(())
}

/// Checks the framing and both CRCs of every record in a TFRecord file held in `b`, as
/// `TFRecordDataset` does; returns the payload length of each record.
pub fn parse_tfrecord(path: &Path, b: &[u8]) -> Result<Vec<u64>, Error> {
    let mut at = 0usize;
    let mut out = Vec::new();
    while at < b.len() {
        let hdr = b
            .get(at..at + 12)
            .ok_or_else(|| bad(path, format!("record {} header truncated", out.len())))?;
        if masked_crc32c(&hdr[..8]) != le32(hdr, 8) as u32 {
            return Err(bad(
                path,
                format!("record {}: length CRC mismatch", out.len()),
            ));
        }
        let len = u64::from_le_bytes(hdr[..8].try_into().unwrap_or([0; 8])) as usize;
        let data = b
            .get(at + 12..at + 12 + len)
            .ok_or_else(|| bad(path, format!("record {} truncated", out.len())))?;
        let crc = b
            .get(at + 12 + len..at + 16 + len)
            .ok_or_else(|| bad(path, "record footer truncated"))?;
        if masked_crc32c(data) != le32(crc, 0) as u32 {
            return Err(bad(
                path,
                format!("record {}: data CRC mismatch", out.len()),
            ));
        }
        out.push(len as u64);
        at += 16 + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
