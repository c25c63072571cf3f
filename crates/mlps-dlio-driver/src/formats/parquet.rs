//! Parquet files as the v3 DLIO fork writes them with pyarrow (dlio.md §3.2), and the row-group
//! reads its `ParquetReaderFileIterable` does (§4.4).
//!
//! **Layout.** [`ParquetLayout`] is the workload's `dataset.parquet` section. In column mode each
//! configured column becomes one field, nullable as pyarrow's `pa.field` makes it: a scalar for
//! `size == 1`, else a 3-level `LIST` group (`optional group <name> (LIST) { repeated group list
//! { optional <type> element } }`), which is how Arrow stores `FixedSizeList<type, size>`. Without
//! columns (legacy mode) the single field is `data`, a list of `dim1·dim2` uint8. Physical
//! types follow Arrow's mapping: int8/16/32 and uint8/16/32 are `INT32` (with `INTEGER(bits,
//! signed)`), (u)int64 `INT64`, float16 `FIXED_LEN_BYTE_ARRAY(2)` + `FLOAT16`, float32 `FLOAT`,
//! float64 `DOUBLE`, bool `BOOLEAN`. Compression is none (the fork passes `None` for
//! `compression: none`). The footer carries pyarrow's `ARROW:schema` entry ([`arrow_schema`]),
//! so pyarrow reads the fork's Arrow types back. Rows are cut into batches of
//! `generation_batch_size` and each batch into row groups of at most `row_group_size` rows, as
//! `writer.write_table(batch, row_group_size=…)` does.
//!
//! **Writing.** Pages are data page v1, `PLAIN` values and `RLE` levels, no dictionary and no
//! statistics (random data gains nothing from either; pyarrow tries a dictionary first and falls
//! back to plain). Each page holds whole rows, about 1 MiB (one row per page for flux's 2 MiB
//! `t5_encodings`). The levels of a page are constant patterns, so they are a few RLE runs built
//! directly; values are filled in place from the file's generator stream. Pages go through the
//! `parquet` crate's page writer (which frames them with their Thrift headers) and the footer
//! through its metadata writer, so only one page buffer (reused) is ever in memory.
//!
//! **Reading** ([`ParquetSampleReader`]): the fork reads a file's footer once, then each row
//! group's column-chunk byte ranges (all columns). We do the same natively: two `pread`s for the
//! footer (length, then metadata) when a worker first touches a file, then `pread`s of each row
//! group's merged column-chunk range, the row group being read by the sample that holds its first
//! row. So every byte of every row group is read exactly once per epoch, the unit the fork reads,
//! without decoding values (the fork yields dummy tensors too).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::BytesMut;
use parquet::basic::{
    Compression, ConvertedType, Encoding, LogicalType, Repetition, Type as PhysicalType,
};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::file::metadata::{
    ColumnChunkMetaData, FileMetaData, KeyValue, ParquetMetaData, ParquetMetaDataReader,
    ParquetMetaDataWriter, RowGroupMetaData,
};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::{SchemaDescriptor, Type};

use crate::Error;
use crate::workload::{Format, Workload};

pub mod arrow_schema;

/// Target bytes of one data page (pyarrow's default `data_page_size`); a page holds whole rows.
const PAGE_TARGET: u64 = 1 << 20;

/// Read size for row-group ranges: the data is counted, not kept.
const READ_CHUNK: usize = 4 << 20;

/// `created_by` written into the footer.
const CREATED_BY: &str = concat!("mlpstorage-rs ", env!("CARGO_PKG_VERSION"), " (parquet-rs)");

/// Element type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Elem {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F16,
    F32,
    F64,
    Bool,
}

impl Elem {
    fn parse(dtype: &str) -> Option<Self> {
        Some(match dtype {
            "uint8" => Self::U8,
            "uint16" => Self::U16,
            "uint32" => Self::U32,
            "uint64" => Self::U64,
            "int8" => Self::I8,
            "int16" => Self::I16,
            "int32" => Self::I32,
            "int64" => Self::I64,
            "float16" => Self::F16,
            "float32" => Self::F32,
            "float64" => Self::F64,
            _ => return None,
        })
    }

    /// Random bytes drawn per element (the dtype's own width).
    fn raw_width(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::U16 | Self::I16 | Self::F16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 => 8,
            Self::Bool => 0, // bit-packed, see `value_bytes`
        }
    }

    /// Bytes per element in a PLAIN page (narrow integers widen to INT32).
    fn stored_width(self) -> usize {
        match self {
            Self::U8 | Self::I8 | Self::U16 | Self::I16 => 4,
            Self::Bool => 0,
            e => e.raw_width(),
        }
    }

    /// Bytes of `n` PLAIN-encoded values.
    fn value_bytes(self, n: usize) -> usize {
        match self {
            Self::Bool => n.div_ceil(8),
            e => n * e.stored_width(),
        }
    }

    fn physical(self) -> PhysicalType {
        match self {
            Self::U8 | Self::U16 | Self::U32 | Self::I8 | Self::I16 | Self::I32 => {
                PhysicalType::INT32
            }
            Self::U64 | Self::I64 => PhysicalType::INT64,
            Self::F16 => PhysicalType::FIXED_LEN_BYTE_ARRAY,
            Self::F32 => PhysicalType::FLOAT,
            Self::F64 => PhysicalType::DOUBLE,
            Self::Bool => PhysicalType::BOOLEAN,
        }
    }

    /// The logical annotation Arrow writes (none for int32, int64 and the floats but float16).
    fn logical(self) -> Option<LogicalType> {
        match self {
            Self::U8 => Some(LogicalType::integer(8, false)),
            Self::U16 => Some(LogicalType::integer(16, false)),
            Self::U32 => Some(LogicalType::integer(32, false)),
            Self::U64 => Some(LogicalType::integer(64, false)),
            Self::I8 => Some(LogicalType::integer(8, true)),
            Self::I16 => Some(LogicalType::integer(16, true)),
            Self::F16 => Some(LogicalType::Float16),
            _ => None,
        }
    }
}

/// One field of the file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ParquetColumn {
    pub name: String,
    pub elem: Elem,
    /// `Some(n)`: a fixed-size list of `n` elements per row; `None`: a scalar.
    pub list_size: Option<u64>,
}

impl ParquetColumn {
    fn elems_per_row(&self) -> u64 {
        self.list_size.unwrap_or(1)
    }

    fn schema_type(&self) -> Result<Type, parquet::errors::ParquetError> {
        let leaf = |name: &str| {
            let logical = self.elem.logical();
            let mut b = Type::primitive_type_builder(name, self.elem.physical())
                .with_repetition(Repetition::OPTIONAL)
                .with_converted_type(ConvertedType::from(logical.clone()))
                .with_logical_type(logical);
            if self.elem == Elem::F16 {
                b = b.with_length(2);
            }
            b.build()
        };
        match self.list_size {
            None => leaf(&self.name),
            Some(_) => {
                let list = Type::group_type_builder("list")
                    .with_repetition(Repetition::REPEATED)
                    .with_fields(vec![Arc::new(leaf("element")?)])
                    .build()?;
                Type::group_type_builder(&self.name)
                    .with_repetition(Repetition::OPTIONAL)
                    .with_converted_type(ConvertedType::LIST)
                    .with_logical_type(Some(LogicalType::List))
                    .with_fields(vec![Arc::new(list)])
                    .build()
            }
        }
    }
}

/// The `dataset.parquet` section of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ParquetLayout {
    /// Column mode; empty means legacy mode (one `data` list of `dim1·dim2` uint8 per row).
    pub columns: Vec<ParquetColumn>,
    pub row_group_size: u64,
    /// Rows per `write_table` call (`parquet.generation_batch_size`, 0 ⇒ `row_group_size`).
    pub generation_batch_size: u64,
}

impl ParquetLayout {
    /// The layout of `w`'s parquet files. Errors name the column and the supported dtypes.
    pub fn from_workload(w: &Workload) -> Result<Self, Error> {
        let p = w.params();
        if p.format != Format::Parquet {
            return Err(Error::Config(format!(
                "dataset.format={} is not parquet",
                p.format_name
            )));
        }
        if !matches!(p.compression.as_str(), "none" | "") {
            return Err(Error::Config(format!(
                "dataset.compression={}: this build writes uncompressed parquet only (the MLPerf \
                 parquet workloads use none); set dataset.compression=none",
                p.compression
            )));
        }
        let mut columns = Vec::with_capacity(p.parquet_columns.len());
        for c in &p.parquet_columns {
            let (elem, list_size) = match (Elem::parse(&c.dtype), c.dtype.as_str()) {
                (Some(e), _) => (e, (c.size > 1).then_some(c.size)),
                // The fork: `list` is always a float32 list, `bool` always a scalar.
                (None, "list") => (Elem::F32, Some(c.size)),
                (None, "bool") => (Elem::Bool, None),
                (None, "string" | "binary") => {
                    return Err(Error::Config(format!(
                        "dataset.parquet.columns: column {} has dtype {}, which this build does not \
                         generate (variable-length values); use a numeric dtype (uint8..uint64, \
                         int8..int64, float16/32/64), bool or list",
                        c.name, c.dtype
                    )));
                }
                // The fork falls back to a float32 list for unknown dtypes.
                (None, _) => (Elem::F32, Some(c.size)),
            };
            columns.push(ParquetColumn {
                name: c.name.clone(),
                elem,
                list_size,
            });
        }
        let row_group_size = p.parquet_row_group_size;
        if row_group_size == 0 {
            return Err(Error::Config(
                "dataset.parquet.row_group_size must be at least 1".into(),
            ));
        }
        let gbs = match w.get("dataset.parquet.generation_batch_size") {
            None | Some(serde_json::Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "dataset.parquet.generation_batch_size: expected a non-negative integer, got {v}"
                    ))
                })?,
        };
        Ok(Self {
            columns,
            row_group_size,
            generation_batch_size: if gbs > 0 { gbs } else { row_group_size },
        })
    }

    /// The fields of a file whose legacy samples have `legacy_elems` elements.
    fn resolved_columns(&self, legacy_elems: u64) -> Vec<ParquetColumn> {
        if self.columns.is_empty() {
            vec![ParquetColumn {
                name: "data".into(),
                elem: Elem::U8,
                list_size: Some(legacy_elems.max(1)),
            }]
        } else {
            self.columns.clone()
        }
    }

    /// Row counts of the row groups of a file of `rows` rows.
    pub fn row_groups(&self, rows: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < rows {
            let batch = self.generation_batch_size.min(rows - start);
            let mut left = batch;
            while left > 0 {
                let n = left.min(self.row_group_size);
                out.push(n);
                left -= n;
            }
            start += batch;
        }
        out
    }

    /// The exact size of a file of `rows` rows. Every file of a layout has the same structure (no
    /// statistics, so nothing in the footer depends on the values), so one dry run per shape, into
    /// a counting sink without generating data, gives it; results are memoised.
    pub fn file_size(&self, legacy_elems: u64, rows: u64) -> u64 {
        type Memo = Mutex<HashMap<(ParquetLayout, u64, u64), u64>>;
        static SIZES: OnceLock<Memo> = OnceLock::new();
        let key = (self.clone(), legacy_elems, rows);
        let sizes = SIZES.get_or_init(Default::default);
        if let Some(&n) = sizes.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return n;
        }
        // 0 only if the writer fails, which then also fails (and reports) the real write.
        let n = write(std::io::sink(), self, legacy_elems, rows, None).unwrap_or(0);
        sizes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, n);
        n
    }
}

/// The source of value bytes: `fill(offset, buf)` fills `buf` with the file's random stream at
/// `offset`.
pub type Fill<'a> = &'a mut dyn FnMut(u64, &mut [u8]);

fn perr(e: parquet::errors::ParquetError) -> std::io::Error {
    std::io::Error::other(format!("parquet: {e}"))
}

/// Appends one RLE run (`count` repetitions of `value`, a level of at most 8 bits).
fn rle_run(out: &mut Vec<u8>, count: u64, value: u8) {
    let mut v = count << 1;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.extend_from_slice(&[v as u8, value]);
}

/// Appends a length-prefixed level block (data page v1) built by `runs`.
fn level_block(out: &mut Vec<u8>, runs: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    runs(out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Fills `vals` (PLAIN values of `n` elements of `elem`) from the generator, widening narrow
/// integers as Arrow stores them. `scratch` is reused for the raw bytes.
fn fill_values(
    elem: Elem,
    n: usize,
    vals: &mut [u8],
    scratch: &mut Vec<u8>,
    offset: &mut u64,
    fill: &mut dyn FnMut(u64, &mut [u8]),
) {
    match elem {
        Elem::U8 | Elem::I8 | Elem::U16 | Elem::I16 => {
            let w = elem.raw_width();
            scratch.resize(n * w, 0);
            fill(*offset, scratch);
            *offset += (n * w) as u64;
            for (dst, src) in vals.chunks_exact_mut(4).zip(scratch.chunks_exact(w)) {
                let v: i32 = match elem {
                    Elem::U8 => i32::from(src[0]),
                    Elem::I8 => i32::from(src[0] as i8),
                    Elem::U16 => i32::from(u16::from_le_bytes([src[0], src[1]])),
                    _ => i32::from(i16::from_le_bytes([src[0], src[1]])),
                };
                dst.copy_from_slice(&v.to_le_bytes());
            }
        }
        Elem::Bool => {
            fill(*offset, vals);
            *offset += vals.len() as u64;
            if !n.is_multiple_of(8)
                && let Some(last) = vals.last_mut()
            {
                *last &= (1u8 << (n % 8)) - 1; // unused trailing bits are zero
            }
        }
        _ => {
            fill(*offset, vals);
            *offset += vals.len() as u64;
        }
    }
}

/// Writes a whole file to `sink` (which must start empty): `PAR1`, row group by row group, column
/// by column, page by page, then the footer. `fill(offset, buf)` supplies the value bytes (offset
/// within the file's random stream); `None` writes sizes only (the dry run of
/// [`ParquetLayout::file_size`]). Returns the bytes written.
pub fn write<W: Write + Send>(
    sink: W,
    layout: &ParquetLayout,
    legacy_elems: u64,
    rows: u64,
    mut fill: Option<Fill<'_>>,
) -> std::io::Result<u64> {
    let columns = layout.resolved_columns(legacy_elems);
    let fields = columns
        .iter()
        .map(|c| c.schema_type().map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(perr)?;
    let root = Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
        .map_err(perr)?;
    let schema = Arc::new(SchemaDescriptor::new(Arc::new(root)));

    let mut out = TrackedWrite::new(sink);
    out.write_all(b"PAR1")?;
    let mut page = BytesMut::new();
    let mut levels = Vec::new();
    let mut scratch = Vec::new();
    let mut offset = 0u64;
    let mut row_groups = Vec::new();
    for (ordinal, rg_rows) in layout.row_groups(rows).into_iter().enumerate() {
        let rg_start = out.bytes_written() as i64;
        let mut chunks = Vec::with_capacity(columns.len());
        let mut rg_bytes = 0i64;
        for (ci, col) in columns.iter().enumerate() {
            let per_row = col.elems_per_row();
            let row_bytes = per_row * col.elem.stored_width().max(1) as u64;
            let rows_per_page = (PAGE_TARGET / row_bytes).clamp(1, rg_rows);
            let mut pages = SerializedPageWriter::new(&mut out);
            let (mut first_offset, mut chunk_bytes) = (None, 0i64);
            let mut done = 0u64;
            while done < rg_rows {
                let k = rows_per_page.min(rg_rows - done);
                let n = (k * per_row) as usize;
                levels.clear();
                if col.list_size.is_some() {
                    level_block(&mut levels, |b| {
                        for _ in 0..k {
                            rle_run(b, 1, 0);
                            if per_row > 1 {
                                rle_run(b, per_row - 1, 1);
                            }
                        }
                    });
                    level_block(&mut levels, |b| rle_run(b, n as u64, 3));
                } else {
                    level_block(&mut levels, |b| rle_run(b, n as u64, 1));
                }
                // Reuse the previous page's bytes: only growth is zeroed, values are overwritten.
                let vals_at = levels.len();
                let need = vals_at + col.elem.value_bytes(n);
                if page.len() > need {
                    page.truncate(need);
                } else {
                    page.resize(need, 0);
                }
                page[..vals_at].copy_from_slice(&levels);
                if let Some(f) = fill.as_deref_mut() {
                    fill_values(
                        col.elem,
                        n,
                        &mut page[vals_at..],
                        &mut scratch,
                        &mut offset,
                        f,
                    );
                }
                // Hand the whole buffer over (not a split: that would share the allocation with
                // the empty remainder and make it unreclaimable).
                let buf = std::mem::take(&mut page).freeze();
                let keep = buf.clone();
                let len = buf.len();
                let spec = pages
                    .write_page(CompressedPage::new(
                        Page::DataPage {
                            buf,
                            num_values: n as u32,
                            encoding: Encoding::PLAIN,
                            def_level_encoding: Encoding::RLE,
                            rep_level_encoding: Encoding::RLE,
                            statistics: None,
                        },
                        len,
                    ))
                    .map_err(perr)?;
                // The page writer has dropped its handle: take the allocation back for reuse.
                page = keep.try_into_mut().unwrap_or_default();
                first_offset.get_or_insert(spec.offset as i64);
                chunk_bytes += spec.bytes_written as i64;
                done += k;
            }
            let meta = ColumnChunkMetaData::builder(schema.column(ci))
                .set_encodings(vec![Encoding::PLAIN, Encoding::RLE])
                .set_num_values((rg_rows * per_row) as i64)
                .set_compression(Compression::UNCOMPRESSED)
                .set_total_compressed_size(chunk_bytes)
                .set_total_uncompressed_size(chunk_bytes)
                .set_data_page_offset(first_offset.unwrap_or(rg_start))
                .build()
                .map_err(perr)?;
            rg_bytes += chunk_bytes;
            chunks.push(meta);
        }
        row_groups.push(
            RowGroupMetaData::builder(schema.clone())
                .set_num_rows(rg_rows as i64)
                .set_total_byte_size(rg_bytes)
                .set_column_metadata(chunks)
                .set_ordinal(ordinal as i32)
                .set_file_offset(rg_start)
                .build()
                .map_err(perr)?,
        );
    }
    let arrow = KeyValue::new("ARROW:schema".into(), arrow_schema::encoded(&columns));
    let file_meta = FileMetaData::new(
        2,
        rows as i64,
        Some(CREATED_BY.to_string()),
        Some(vec![arrow]),
        schema,
        None,
    );
    let meta = ParquetMetaData::new(file_meta, row_groups);
    ParquetMetaDataWriter::new(&mut out, &meta)
        .finish()
        .map_err(perr)?;
    out.flush()?;
    Ok(out.bytes_written() as u64)
}

// ---------------------------------------------------------------------------------------------
// Reading

/// The byte ranges of one row group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowGroupSpan {
    pub first_row: u64,
    pub rows: u64,
    /// `(offset, length)` of its column chunks, adjacent chunks merged.
    pub ranges: Vec<(u64, u64)>,
}

impl RowGroupSpan {
    pub fn bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.1).sum()
    }
}

/// What a reader keeps of a file's footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetIndex {
    pub num_rows: u64,
    /// Bytes read to get the footer (length word + metadata).
    pub footer_bytes: u64,
    pub row_groups: Vec<RowGroupSpan>,
}

impl ParquetIndex {
    /// The row group holding `row`.
    pub fn row_group_of(&self, row: u64) -> Option<usize> {
        let i = self.row_groups.partition_point(|g| g.first_row <= row);
        let g = self.row_groups.get(i.checked_sub(1)?)?;
        (row < g.first_row + g.rows).then(|| i - 1)
    }
}

fn bad(path: &Path, m: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: m.into(),
    }
}

/// Reads the footer of `file`: the 8-byte tail (metadata length + `PAR1`), then the metadata.
pub fn read_index(file: &File, path: &Path) -> Result<ParquetIndex, Error> {
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if size < 12 {
        return Err(bad(path, "not a parquet file (shorter than 12 bytes)"));
    }
    let mut tail = [0u8; 8];
    file.read_exact_at(&mut tail, size - 8)
        .map_err(|e| Error::io(path, e))?;
    if &tail[4..] != b"PAR1" {
        return Err(bad(
            path,
            "not a parquet file (no PAR1 magic at the end); regenerate the dataset with datagen",
        ));
    }
    let len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if len + 12 > size {
        return Err(bad(
            path,
            format!("parquet footer length {len} exceeds the file size {size}"),
        ));
    }
    let mut meta = vec![0u8; len as usize];
    file.read_exact_at(&mut meta, size - 8 - len)
        .map_err(|e| Error::io(path, e))?;
    let md = ParquetMetaDataReader::decode_metadata(&meta)
        .map_err(|e| bad(path, format!("corrupt parquet footer: {e}")))?;
    let mut first_row = 0u64;
    let mut row_groups = Vec::with_capacity(md.num_row_groups());
    for rg in md.row_groups() {
        let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(1);
        for c in rg.columns() {
            let (start, len) = c.byte_range();
            if start + len > size {
                return Err(bad(
                    path,
                    format!("column chunk {start}+{len} lies beyond the end of the file"),
                ));
            }
            match ranges.last_mut() {
                Some(last) if last.0 + last.1 == start => last.1 += len,
                _ => ranges.push((start, len)),
            }
        }
        let rows = rg.num_rows().max(0) as u64;
        row_groups.push(RowGroupSpan {
            first_row,
            rows,
            ranges,
        });
        first_row += rows;
    }
    Ok(ParquetIndex {
        num_rows: first_row,
        footer_bytes: 8 + len,
        row_groups,
    })
}

/// Reads every byte of row group `g` (counted, not kept); returns the bytes read.
pub fn read_row_group(
    file: &File,
    path: &Path,
    g: &RowGroupSpan,
    buf: &mut Vec<u8>,
) -> Result<u64, Error> {
    if buf.len() < READ_CHUNK {
        buf.resize(READ_CHUNK, 0);
    }
    let mut total = 0u64;
    for &(start, len) in &g.ranges {
        let mut at = 0u64;
        while at < len {
            let n = (len - at).min(READ_CHUNK as u64) as usize;
            file.read_exact_at(&mut buf[..n], start + at)
                .map_err(|e| Error::io(path, e))?;
            at += n as u64;
        }
        total += len;
    }
    Ok(total)
}

/// A worker's parquet reader: keeps the open file and its footer while consecutive samples come
/// from the same file.
#[derive(Default)]
pub struct ParquetSampleReader {
    current: Option<(PathBuf, File, ParquetIndex)>,
    buf: Vec<u8>,
}

impl ParquetSampleReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads for sample `row` of `path`: the footer when the file is new to this reader, and the
    /// whole row group when `row` is its first row (other rows are served by that read). Returns
    /// the bytes read.
    pub fn read_sample(&mut self, path: &Path, row: u64) -> Result<u64, Error> {
        let mut bytes = 0;
        if self.current.as_ref().map(|c| c.0.as_path()) != Some(path) {
            let f = File::open(path).map_err(|e| Error::io(path, e))?;
            let idx = read_index(&f, path)?;
            bytes += idx.footer_bytes;
            self.current = Some((path.to_path_buf(), f, idx));
        }
        let Some((_, f, idx)) = self.current.as_ref() else {
            return Ok(bytes);
        };
        let g = idx.row_group_of(row).ok_or_else(|| {
            bad(
                path,
                format!(
                    "row {row} is beyond the file's {} rows; the dataset does not match \
                     dataset.num_samples_per_file (regenerate it with datagen)",
                    idx.num_rows
                ),
            )
        })?;
        let span = &idx.row_groups[g];
        if span.first_row == row {
            bytes += read_row_group(f, path, span, &mut self.buf)?;
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests;
