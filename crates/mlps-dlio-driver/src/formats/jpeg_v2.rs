//! JPEG files as PyPI DLIO 2.0.0 writes and reads them (`dlio.semantics=v2`, dlio.md §3.2, §4.3).
//!
//! DLIO 2.0.0's `JPEGGenerator` builds a `dim1 × dim2` uint8 array (`np.random.randint(255)`),
//! wraps it with `PIL.Image.fromarray` (mode `"L"`, 8-bit grayscale, height `dim1`, width `dim2`)
//! and saves it with `format='JPEG'` and PIL's defaults: quality 75, baseline (not progressive),
//! standard Huffman tables (no `optimize`), JFIF header. One image per file, whatever
//! `num_samples_per_file` says. Its `ImageReader` does `np.asarray(PIL.Image.open(path))` per
//! sample: a full read and a full decode to `dim1·dim2` pixels.
//!
//! [`encode_gray`] reproduces the writer with `jpeg-encoder` (IJG quantisation tables scaled for
//! quality 75, the standard Huffman tables: what libjpeg does under PIL), with pixels from our
//! `DataGen` stream so every file is unique. [`JpegSampleDecoder`] reproduces the reader with
//! `zune-jpeg`, decoding into a buffer it reuses across samples. The v3 fork (the default
//! semantics) writes raw bytes under a `.jpeg` name instead and never decodes; that path lives in
//! [`super::write_file`] and is untouched here.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use jpeg_encoder::{ColorType, Encoder};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::Error;

/// PIL's default JPEG quality (`Image.save(..., format='JPEG')` without `quality=`).
pub const PIL_DEFAULT_QUALITY: u8 = 75;

/// The largest side a baseline JPEG can have (16-bit fields in the frame header).
pub const MAX_SIDE: u64 = u16::MAX as u64;

/// Encodes `pixels` (row-major, `height × width` 8-bit grayscale) as a baseline JPEG at PIL's
/// default quality, appending to `out`. `path` names the file in errors.
pub fn encode_gray(
    path: &Path,
    pixels: &[u8],
    height: u64,
    width: u64,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let (h, w) = checked_sides(path, height, width)?;
    let encoder = Encoder::new(&mut *out, PIL_DEFAULT_QUALITY);
    encoder
        .encode(pixels, w, h, ColorType::Luma)
        .map_err(|e| Error::Format {
            path: path.to_path_buf(),
            message: format!("JPEG encoding of a {height}×{width} grayscale image failed: {e}"),
        })
}

fn checked_sides(path: &Path, height: u64, width: u64) -> Result<(u16, u16), Error> {
    match (u16::try_from(height), u16::try_from(width)) {
        (Ok(h), Ok(w)) if h > 0 && w > 0 => Ok((h, w)),
        _ => Err(Error::Format {
            path: path.to_path_buf(),
            message: format!(
                "a JPEG image must be 1..={MAX_SIDE} pixels a side, this one would be \
                 {height}×{width}; lower dataset.record_length_bytes (or its stdev) for the \
                 jpeg format"
            ),
        }),
    }
}

/// Writes one v2 JPEG file of `dim1 × dim2` pixels to `file` (positioned at 0). The pixels come
/// from `fill(offset, buf)`, as for every other format; `scratch` is reused for them when large
/// enough. Returns the bytes written (the encoded size, known only once encoded).
pub fn write(
    file: &mut File,
    path: &Path,
    dim1: u64,
    dim2: u64,
    scratch: &mut [u8],
    fill: &mut dyn FnMut(u64, &mut [u8]),
) -> Result<u64, Error> {
    let (h, w) = checked_sides(path, dim1, dim2)?;
    let n = h as usize * w as usize;
    let mut owned = Vec::new();
    let pixels: &mut [u8] = if scratch.len() >= n {
        &mut scratch[..n]
    } else {
        owned.resize(n, 0);
        &mut owned
    };
    fill(0, pixels);
    // Random pixels compress poorly: the encoded file is close to the pixel count, plus headers.
    let mut encoded = Vec::with_capacity(n + n / 2 + 1024);
    encode_gray(path, pixels, dim1, dim2, &mut encoded)?;
    file.write_all(&encoded).map_err(|e| Error::io(path, e))?;
    Ok(encoded.len() as u64)
}

/// Decodes JPEG samples into one pixel buffer reused from sample to sample.
#[derive(Debug, Default)]
pub struct JpegSampleDecoder {
    pixels: Vec<u8>,
    height: usize,
    width: usize,
    channels: usize,
}

impl JpegSampleDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `data` (the whole content of `path`) to pixels, as `np.asarray(Image.open(path))`:
    /// grayscale stays one channel, colour images decode to RGB. Truncated or corrupt data is an
    /// error naming `path` (PIL raises too). Returns the decoded byte count.
    pub fn decode(&mut self, path: &Path, data: &[u8]) -> Result<usize, Error> {
        let bad = |what: String| Error::Format {
            path: path.to_path_buf(),
            message: format!(
                "not a decodable JPEG ({what}); under dlio.semantics=v2 jpeg samples are decoded \
                 as DLIO 2.0.0 does: regenerate the dataset with `datagen` and the same \
                 `--params dlio.semantics=v2`"
            ),
        };
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(data), decoder_options());
        decoder.decode_headers().map_err(|e| bad(e.to_string()))?;
        let info = decoder
            .info()
            .ok_or_else(|| bad("no frame header".into()))?;
        // PIL keeps a 1-component JPEG as mode "L"; anything else becomes RGB here.
        if info.components == 1 {
            decoder.set_options(decoder_options().jpeg_set_out_colorspace(ColorSpace::Luma));
        }
        let size = decoder
            .output_buffer_size()
            .ok_or_else(|| bad("no output size".into()))?;
        if self.pixels.len() < size {
            self.pixels.resize(size, 0);
        }
        decoder
            .decode_into(&mut self.pixels[..size])
            .map_err(|e| bad(e.to_string()))?;
        self.height = info.height as usize;
        self.width = info.width as usize;
        self.channels = if info.components == 1 { 1 } else { 3 };
        Ok(size)
    }

    /// `(height, width, channels)` of the last decoded image.
    pub fn dimensions(&self) -> (usize, usize, usize) {
        (self.height, self.width, self.channels)
    }

    /// Pixels of the last decoded image (row-major, `height · width · channels` bytes).
    pub fn pixels(&self) -> &[u8] {
        &self.pixels[..self.height * self.width * self.channels]
    }
}

/// Strict: a truncated or damaged file is an error (as PIL without `LOAD_TRUNCATED_IMAGES`),
/// not a silently grey-filled image.
fn decoder_options() -> DecoderOptions {
    DecoderOptions::new_safe()
        .set_strict_mode(true)
        .set_max_width(MAX_SIDE as usize)
        .set_max_height(MAX_SIDE as usize)
}

thread_local! {
    /// One decoder (and pixel buffer) per loader worker thread.
    static SAMPLE_DECODER: RefCell<JpegSampleDecoder> = RefCell::new(JpegSampleDecoder::new());
}

/// Decodes one sample with the calling thread's reused decoder (the training reader's hook).
pub fn decode_sample(path: &Path, data: &[u8]) -> Result<usize, Error> {
    SAMPLE_DECODER.with(|d| d.borrow_mut().decode(path, data))
}

/// Whether `path` already holds a complete v2 JPEG of `dim1 × dim2` (datagen's resume check,
/// since the encoded size cannot be predicted): it starts with SOI, its baseline frame header
/// gives the expected sides and one component, and it ends with EOI. A raw-bytes v3 file under
/// the same name fails this and is rewritten.
pub fn is_complete(path: &Path, dim1: u64, dim2: u64) -> bool {
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut head = [0u8; 4096];
    let Ok(n) = read_up_to(&mut f, &mut head) else {
        return false;
    };
    let mut tail = [0u8; 2];
    let tail_ok = f.seek(SeekFrom::End(-2)).is_ok() && f.read_exact(&mut tail).is_ok();
    tail_ok && tail == [0xFF, 0xD9] && frame_sides(&head[..n]) == Some((dim1, dim2, 1))
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = f.read(&mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// `(height, width, components)` from the first SOF marker among the header segments in `head`.
fn frame_sides(head: &[u8]) -> Option<(u64, u64, u8)> {
    if head.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2usize;
    loop {
        let (&ff, &marker) = (head.get(at)?, head.get(at + 1)?);
        if ff != 0xFF {
            return None;
        }
        let len = u16::from_be_bytes([*head.get(at + 2)?, *head.get(at + 3)?]) as usize;
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let seg = head.get(at + 4..at + 2 + len)?;
            let h = u16::from_be_bytes([*seg.get(1)?, *seg.get(2)?]) as u64;
            let w = u16::from_be_bytes([*seg.get(3)?, *seg.get(4)?]) as u64;
            return Some((h, w, *seg.get(5)?));
        }
        if marker == 0xDA {
            return None; // scan data before any frame header
        }
        at += 2 + len;
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests;
