#![allow(clippy::expect_used, clippy::unwrap_used)]

use super::*;
use mlps_io_core::DataGen;
use parquet::column::reader::{ColumnReader, get_typed_column_reader};
use parquet::data_type::{
    BoolType, DoubleType, FixedLenByteArrayType, FloatType, Int32Type, Int64Type,
};
use parquet::file::reader::{FileReader, RowGroupReader};
use parquet::file::serialized_reader::SerializedFileReader;

fn col(name: &str, elem: Elem, list_size: Option<u64>) -> ParquetColumn {
    ParquetColumn {
        name: name.into(),
        elem,
        list_size,
    }
}

/// A flux-shaped layout, scaled down: float32 lists and a scalar.
fn flux_like() -> ParquetLayout {
    ParquetLayout {
        columns: vec![
            col("t5_encodings", Elem::F32, Some(70_000)), // 280 KB/row: 3 rows per 1 MiB page
            col("clip_encodings", Elem::F32, Some(409)),
            col("timestamp", Elem::F32, Some(7)),
            col("step", Elem::F32, None),
        ],
        row_group_size: 4,
        generation_batch_size: 4,
    }
}

/// Every scalar dtype, with batches (48) that are not a multiple of the row group size (32).
fn dlrm_like() -> ParquetLayout {
    let e = [
        ("u8", Elem::U8),
        ("i8", Elem::I8),
        ("u16", Elem::U16),
        ("i16", Elem::I16),
        ("u32", Elem::U32),
        ("i32", Elem::I32),
        ("u64", Elem::U64),
        ("i64", Elem::I64),
        ("f16", Elem::F16),
        ("f32", Elem::F32),
        ("f64", Elem::F64),
        ("flag", Elem::Bool),
    ];
    ParquetLayout {
        columns: e.iter().map(|&(n, el)| col(n, el, None)).collect(),
        row_group_size: 32,
        generation_batch_size: 48,
    }
}

fn legacy() -> ParquetLayout {
    ParquetLayout {
        columns: vec![],
        row_group_size: 1024,
        generation_batch_size: 1024,
    }
}

/// Writes a file and returns it with the generator stream the writer consumed.
fn write_file(
    dir: &Path,
    name: &str,
    l: &ParquetLayout,
    elems: u64,
    rows: u64,
    file_id: u64,
) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    let gen_ = DataGen::new(5);
    let mut stream = Vec::new();
    let mut f = File::create(&path).expect("create");
    let mut fill = |off: u64, b: &mut [u8]| {
        assert_eq!(off, stream.len() as u64, "the stream is consumed in order");
        gen_.fill(file_id, off, b);
        stream.extend_from_slice(b);
    };
    let n = write(&mut f, l, elems, rows, Some(&mut fill)).expect("write");
    drop(f);
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), n);
    assert_eq!(n, l.file_size(elems, rows), "dry run predicts the size");
    (path, stream)
}

/// The raw generator bytes behind column `c` of a row group, read back through the crate's reader.
fn raw_values(rg: &dyn RowGroupReader, c: usize, elem: Elem, rows: usize) -> Vec<u8> {
    let n = rows * 200_000;
    let mut def = Vec::new();
    let mut rep = Vec::new();
    let reader = rg.get_column_reader(c).expect("column");
    macro_rules! read {
        ($t:ty, $reader:expr) => {{
            let mut r = get_typed_column_reader::<$t>($reader);
            let mut vals = Vec::new();
            let (recs, _, _) = r
                .read_records(n, Some(&mut def), Some(&mut rep), &mut vals)
                .expect("read");
            assert_eq!(recs, rows);
            vals
        }};
    }
    let out: Vec<u8> = match (elem, reader) {
        (Elem::F32, r @ ColumnReader::FloatColumnReader(_)) => read!(FloatType, r)
            .iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect(),
        (Elem::F64, r @ ColumnReader::DoubleColumnReader(_)) => read!(DoubleType, r)
            .iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect(),
        (Elem::U64 | Elem::I64, r @ ColumnReader::Int64ColumnReader(_)) => read!(Int64Type, r)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        (Elem::F16, r @ ColumnReader::FixedLenByteArrayColumnReader(_)) => {
            read!(FixedLenByteArrayType, r)
                .iter()
                .flat_map(|v| v.data().to_vec())
                .collect()
        }
        (Elem::Bool, r @ ColumnReader::BoolColumnReader(_)) => {
            let bits = read!(BoolType, r);
            let mut out = vec![0u8; bits.len().div_ceil(8)];
            for (i, b) in bits.iter().enumerate() {
                out[i / 8] |= u8::from(*b) << (i % 8);
            }
            out
        }
        (e, r @ ColumnReader::Int32ColumnReader(_)) => {
            let vals = read!(Int32Type, r);
            vals.iter()
                .flat_map(|&v| match e {
                    Elem::U8 => {
                        assert!((0..=255).contains(&v));
                        vec![v as u8]
                    }
                    Elem::I8 => {
                        assert!((-128..=127).contains(&v));
                        vec![v as i8 as u8]
                    }
                    Elem::U16 => {
                        assert!((0..=65535).contains(&v));
                        (v as u16).to_le_bytes().to_vec()
                    }
                    Elem::I16 => {
                        assert!((-32768..=32767).contains(&v));
                        (v as i16).to_le_bytes().to_vec()
                    }
                    _ => v.to_le_bytes().to_vec(),
                })
                .collect()
        }
        (e, _) => panic!("column {c}: unexpected physical type for {e:?}"),
    };
    assert!(
        def.iter()
            .all(|&d| d == rg.metadata().column(c).column_descr().max_def_level())
    );
    out
}

/// Reads a file back with the crate's reader: row groups, then every value, in writing order,
/// must reproduce the generator stream (the bool pages' unused trailing bits are zero).
fn check_round_trip(path: &Path, l: &ParquetLayout, elems: u64, rows: u64, stream: &[u8]) {
    let r = SerializedFileReader::new(File::open(path).expect("open")).expect("parquet reader");
    let md = r.metadata();
    assert_eq!(md.file_metadata().num_rows(), rows as i64);
    let want_rgs = l.row_groups(rows);
    let got_rgs: Vec<u64> = md
        .row_groups()
        .iter()
        .map(|g| g.num_rows() as u64)
        .collect();
    assert_eq!(got_rgs, want_rgs);
    let cols = l.resolved_columns(elems);
    let mut at = 0usize;
    for (g, &n) in want_rgs.iter().enumerate() {
        let rg = r.get_row_group(g).expect("row group");
        for (c, spec) in cols.iter().enumerate() {
            let raw = raw_values(rg.as_ref(), c, spec.elem, n as usize);
            let want = if spec.elem == Elem::Bool {
                let mut w = stream[at..at + raw.len()].to_vec();
                if !n.is_multiple_of(8) {
                    *w.last_mut().unwrap() &= (1u8 << (n % 8)) - 1;
                }
                w
            } else {
                stream[at..at + raw.len()].to_vec()
            };
            assert!(raw == want, "rg {g} column {}: values differ", spec.name);
            at += raw.len();
        }
    }
    assert_eq!(at, stream.len(), "every generated byte is in the file");
}

fn schema_text(path: &Path) -> String {
    let r = SerializedFileReader::new(File::open(path).expect("open")).expect("parquet reader");
    let mut out = Vec::new();
    parquet::schema::printer::print_schema(&mut out, r.metadata().file_metadata().schema());
    String::from_utf8(out).expect("utf8")
}

#[test]
fn flux_like_round_trip_schema_row_groups_and_values() {
    let tmp = tempfile::tempdir().expect("tmp");
    let l = flux_like();
    let (path, stream) = write_file(tmp.path(), "flux.parquet", &l, 0, 10, 1);
    check_round_trip(&path, &l, 0, 10, &stream);
    let s = schema_text(&path);
    for want in [
        "OPTIONAL group t5_encodings (LIST)",
        "REPEATED group list",
        "OPTIONAL FLOAT element",
        "OPTIONAL FLOAT step;",
    ] {
        assert!(s.contains(want), "{want:?} missing from\n{s}");
    }
    assert_eq!(l.row_groups(10), [4, 4, 2]);
}

#[test]
fn every_scalar_dtype_round_trips_with_arrow_physical_types() {
    let tmp = tempfile::tempdir().expect("tmp");
    let l = dlrm_like();
    let (path, stream) = write_file(tmp.path(), "dlrm.parquet", &l, 0, 100, 2);
    // batches of 48 rows, each cut into row groups of at most 32
    assert_eq!(l.row_groups(100), [32, 16, 32, 16, 4]);
    check_round_trip(&path, &l, 0, 100, &stream);
    let s = schema_text(&path);
    for want in [
        "OPTIONAL INT32 u8 (INTEGER(8,false))",
        "OPTIONAL INT32 i8 (INTEGER(8,true))",
        "OPTIONAL INT32 u16 (INTEGER(16,false))",
        "OPTIONAL INT32 u32 (INTEGER(32,false))",
        "OPTIONAL INT32 i32;",
        "OPTIONAL INT64 u64 (INTEGER(64,false))",
        "OPTIONAL FIXED_LEN_BYTE_ARRAY (2) f16 (FLOAT16)",
        "OPTIONAL DOUBLE f64;",
        "OPTIONAL BOOLEAN flag;",
    ] {
        assert!(s.contains(want), "{want:?} missing from\n{s}");
    }
}

#[test]
fn legacy_mode_is_one_uint8_list_named_data() {
    let tmp = tempfile::tempdir().expect("tmp");
    let l = legacy();
    let (path, stream) = write_file(tmp.path(), "legacy.parquet", &l, 22 * 22, 50, 3);
    check_round_trip(&path, &l, 22 * 22, 50, &stream);
    let s = schema_text(&path);
    assert!(s.contains("OPTIONAL group data (LIST)"), "{s}");
    assert!(
        s.contains("OPTIONAL INT32 element (INTEGER(8,false))"),
        "{s}"
    );
    assert_eq!(stream.len(), 22 * 22 * 50);
}

#[test]
fn layout_from_flux_and_dlrm_workloads() {
    let w = Workload::builtin("flux", Some("b200")).expect("flux");
    let l = ParquetLayout::from_workload(&w).expect("layout");
    let sizes: Vec<_> = l.columns.iter().map(|c| (c.elem, c.list_size)).collect();
    assert_eq!(
        sizes,
        [
            (Elem::F32, Some(524_328)),
            (Elem::F32, Some(409)),
            (Elem::F32, Some(8232)),
            (Elem::F32, Some(8232)),
            (Elem::F32, Some(7)),
        ]
    );
    assert_eq!(
        l.row_group_size, 1024,
        "flux_b200 sets none: DLIO's default"
    );
    let w = Workload::builtin("dlrm", Some("b200")).expect("dlrm");
    let l = ParquetLayout::from_workload(&w).expect("layout");
    assert_eq!(l.columns.len(), 200);
    assert!(l.columns.iter().all(|c| c.list_size.is_none()));
    let mut w = Workload::builtin("flux", Some("b200")).expect("flux");
    w.apply_overrides(&[("dataset.compression".into(), "gzip".into())])
        .expect("override");
    let e = ParquetLayout::from_workload(&w).expect_err("gzip refused");
    assert!(e.to_string().contains("dataset.compression=none"), "{e}");
}

#[test]
fn sample_reader_reads_each_row_group_once_plus_the_footer() {
    let tmp = tempfile::tempdir().expect("tmp");
    let l = dlrm_like();
    let (path, _) = write_file(tmp.path(), "d.parquet", &l, 0, 100, 4);
    let size = std::fs::metadata(&path).expect("meta").len();
    let f = File::open(&path).expect("open");
    let idx = read_index(&f, &path).expect("index");
    assert_eq!(idx.num_rows, 100);
    assert_eq!(
        idx.row_groups.iter().map(|g| g.rows).collect::<Vec<_>>(),
        [32, 16, 32, 16, 4]
    );
    assert!(
        idx.row_groups.iter().all(|g| g.ranges.len() == 1),
        "chunks are contiguous"
    );
    assert_eq!(idx.row_group_of(0), Some(0));
    assert_eq!(idx.row_group_of(47), Some(1));
    assert_eq!(idx.row_group_of(99), Some(4));
    assert_eq!(idx.row_group_of(100), None);
    let mut r = ParquetSampleReader::new();
    let total: u64 = (0..100)
        .map(|row| r.read_sample(&path, row).expect("read"))
        .sum();
    // everything but the leading magic: all row groups, the footer and its 8-byte tail
    assert_eq!(total, size - 4);
    let e = r.read_sample(&path, 100).expect_err("beyond the rows");
    assert!(e.to_string().contains("num_samples_per_file"), "{e}");
}

#[test]
fn a_truncated_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (path, _) = write_file(tmp.path(), "t.parquet", &legacy(), 16, 4, 1);
    let data = std::fs::read(&path).expect("read");
    std::fs::write(&path, &data[..data.len() - 3]).expect("truncate");
    let e = ParquetSampleReader::new()
        .read_sample(&path, 0)
        .expect_err("truncated");
    assert!(e.to_string().contains("PAR1"), "{e}");
}

#[test]
fn files_hold_unique_data() {
    let tmp = tempfile::tempdir().expect("tmp");
    let l = flux_like();
    let (a, sa) = write_file(tmp.path(), "a.parquet", &l, 0, 6, 10);
    let (b, sb) = write_file(tmp.path(), "b.parquet", &l, 0, 6, 11);
    let (da, db) = (std::fs::read(a).expect("a"), std::fs::read(b).expect("b"));
    assert_eq!(da.len(), db.len(), "same layout, same size");
    let same = da.iter().zip(&db).filter(|(x, y)| x == y).count();
    // random bytes agree 1/256 of the time; headers, levels and footers are shared
    assert!(same * 50 < da.len(), "{same} of {} bytes equal", da.len());
    // no 4 KiB block of one file's values appears in the other's
    let blocks: std::collections::HashSet<&[u8]> = sa.chunks_exact(4096).collect();
    assert!(sb.chunks_exact(4096).all(|blk| !blocks.contains(blk)));
    // and within a file, no two rows of the big column are equal
    let row = 70_000 * 4;
    let rows: std::collections::HashSet<&[u8]> = sa.chunks_exact(row).take(4).collect();
    assert_eq!(rows.len(), 4);
}

/// pyarrow (the library the fork writes with) must read our files: schema, row count, row groups
/// and every value. Needs Python with pyarrow: `MLPS_PYARROW_PYTHON`, else
/// `target/pyarrow-venv/bin/python` (created on demand with `python3 -m venv` + `pip install
/// pyarrow`); prints SKIP with the reason when neither works.
#[test]
fn pyarrow_reads_our_files() {
    let Some(python) = pyarrow_python() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let (flux, _) = write_file(tmp.path(), "flux.parquet", &flux_like(), 0, 10, 1);
    let (dlrm, _) = write_file(tmp.path(), "dlrm.parquet", &dlrm_like(), 0, 100, 2);
    let (leg, _) = write_file(tmp.path(), "legacy.parquet", &legacy(), 64, 5, 3);
    // The fork's `_build_schema`, fed the same column specs: pyarrow writes an empty table with
    // it, and both the parquet schema and the Arrow schema must equal ours.
    let specs = serde_json::json!({
        flux.to_string_lossy(): [["t5_encodings", "float32", 70000], ["clip_encodings", "float32", 409],
                                  ["timestamp", "float32", 7], ["step", "float32", 1]],
        dlrm.to_string_lossy(): [["u8", "uint8", 1], ["i8", "int8", 1], ["u16", "uint16", 1],
                                  ["i16", "int16", 1], ["u32", "uint32", 1], ["i32", "int32", 1],
                                  ["u64", "uint64", 1], ["i64", "int64", 1], ["f16", "float16", 1],
                                  ["f32", "float32", 1], ["f64", "float64", 1], ["flag", "bool", 1]],
        leg.to_string_lossy(): [["data", "uint8", 64]],
    });
    let script = r#"
import json, sys, tempfile, os
import pyarrow as pa
import pyarrow.parquet as pq
T = {'uint8': pa.uint8(), 'uint16': pa.uint16(), 'uint32': pa.uint32(), 'uint64': pa.uint64(),
     'int8': pa.int8(), 'int16': pa.int16(), 'int32': pa.int32(), 'int64': pa.int64(),
     'float16': pa.float16(), 'float32': pa.float32(), 'float64': pa.float64()}
def fork_schema(cols):
    fields = []
    for name, dtype, size in cols:
        if dtype in T:
            fields.append(pa.field(name, T[dtype] if size == 1 else pa.list_(T[dtype], size)))
        elif dtype == 'bool':
            fields.append(pa.field(name, pa.bool_()))
    return pa.schema(fields)
specs = json.loads(sys.argv[1])
out = {}
d = tempfile.mkdtemp()
for p, cols in specs.items():
    f = pq.ParquetFile(p)
    t = f.read()  # decodes every page
    ref = os.path.join(d, 'ref.parquet')
    pq.write_table(fork_schema(cols).empty_table(), ref, compression=None)
    r = pq.ParquetFile(ref)
    out[p] = {
        "rows": f.metadata.num_rows,
        "row_groups": [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)],
        "schema": {fld.name: str(fld.type) for fld in t.schema},
        "arrow_schema_equal": f.schema_arrow.equals(r.schema_arrow),
        "parquet_schema_equal": f.schema.equals(r.schema),
        "ours": str(f.schema), "fork": str(r.schema),
        "nulls": sum(c.null_count for c in t.columns),
        "compression": sorted({f.metadata.row_group(i).column(j).compression
                               for i in range(f.metadata.num_row_groups)
                               for j in range(f.metadata.num_columns)}),
    }
print(json.dumps(out))
"#;
    let o = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(specs.to_string())
        .output()
        .expect("run python");
    assert!(
        o.status.success(),
        "pyarrow failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let get = |p: &Path| v[p.to_string_lossy().as_ref()].clone();
    for p in [&flux, &dlrm, &leg] {
        let r = get(p);
        assert_eq!(r["arrow_schema_equal"], true, "{}: {r}", p.display());
        assert_eq!(
            r["parquet_schema_equal"],
            true,
            "{}: ours\n{}\nfork\n{}",
            p.display(),
            r["ours"].as_str().unwrap_or(""),
            r["fork"].as_str().unwrap_or("")
        );
        assert_eq!(r["nulls"], 0);
        assert_eq!(r["compression"], serde_json::json!(["UNCOMPRESSED"]));
    }
    let f = get(&flux);
    assert_eq!(f["rows"], 10);
    assert_eq!(f["row_groups"], serde_json::json!([4, 4, 2]));
    assert_eq!(
        f["schema"]["t5_encodings"],
        "fixed_size_list<element: float>[70000]"
    );
    assert_eq!(f["schema"]["step"], "float");
    let d = get(&dlrm);
    assert_eq!(d["rows"], 100);
    assert_eq!(d["row_groups"], serde_json::json!([32, 16, 32, 16, 4]));
    for (c, t) in [
        ("u8", "uint8"),
        ("i8", "int8"),
        ("u16", "uint16"),
        ("i16", "int16"),
        ("u32", "uint32"),
        ("i32", "int32"),
        ("u64", "uint64"),
        ("i64", "int64"),
        ("f16", "halffloat"),
        ("f32", "float"),
        ("f64", "double"),
        ("flag", "bool"),
    ] {
        assert_eq!(d["schema"][c], t, "column {c}");
    }
    let l = get(&leg);
    assert_eq!(l["rows"], 5);
    assert_eq!(l["schema"]["data"], "fixed_size_list<element: uint8>[64]");
}

fn pyarrow_python() -> Option<PathBuf> {
    let works = |p: &Path| {
        std::process::Command::new(p)
            .args(["-c", "import pyarrow"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Some(p) = std::env::var_os("MLPS_PYARROW_PYTHON") {
        let p = PathBuf::from(p);
        if works(&p) {
            return Some(p);
        }
        eprintln!(
            "SKIP: MLPS_PYARROW_PYTHON={} cannot import pyarrow",
            p.display()
        );
        return None;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyarrow-venv");
    let python = venv.join("bin/python");
    if works(&python) {
        return Some(python);
    }
    let made = std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "pyarrow"])
            .status()
            .is_ok_and(|s| s.success());
    if made && works(&python) {
        return Some(python);
    }
    eprintln!(
        "SKIP: pyarrow_reads_our_files: no Python with pyarrow (tried {}; set MLPS_PYARROW_PYTHON)",
        python.display()
    );
    None
}

/// datagen + a training run on a scaled-down flux: the epoch reads every row group of every file
/// once, plus each footer once per file per worker that touches it — what the fork reads.
#[test]
fn training_run_reads_row_groups_and_footers() {
    use crate::datagen::{DatagenOptions, generate};
    use crate::training::{CachePolicy, RunOptions, run};
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut w = Workload::builtin("flux", Some("b200")).expect("flux");
    w.apply_overrides(&[
        ("dataset.num_files_train".into(), "4".into()),
        ("dataset.num_samples_per_file".into(), "4".into()),
        ("dataset.parquet.row_group_size".into(), "2".into()),
        ("reader.batch_size".into(), "4".into()), // one file per batch: one worker per file
        ("reader.read_threads".into(), "2".into()),
        ("train.computation_time".into(), "0".into()),
    ])
    .expect("overrides");
    let g = generate(
        &w,
        &DatagenOptions {
            data_folder: Some(data.clone()),
            threads: 2,
            sync: false,
            ..Default::default()
        },
        &|_| {},
    )
    .expect("datagen");
    assert_eq!(g.files_written, 4);
    let files: Vec<PathBuf> = std::fs::read_dir(data.join("train"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    let total: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).expect("meta").len())
        .sum();
    assert_eq!(g.bytes_total, total, "datagen's predicted sizes are exact");
    let report = run(
        &w,
        &RunOptions {
            data_folder: Some(data),
            cache: CachePolicy::Off,
            prewarm: Some(false),
            ..Default::default()
        },
        &mlps_cluster::SingleComm,
        &tmp.path().join("out"),
        &|_| {},
    )
    .expect("run");
    // each file: everything but the leading 4-byte magic
    assert_eq!(report.epochs[0].bytes_read, total - 4 * 4);
}

/// The idiom the writer uses to hand a page to the crate and take its allocation back.
#[test]
fn page_buffer_allocation_is_reclaimed() {
    let mut page = BytesMut::new();
    page.resize(1 << 20, 7);
    let ptr = page.as_ptr();
    for _ in 0..3 {
        let buf = std::mem::take(&mut page).freeze();
        let keep = buf.clone();
        drop(buf); // what the page writer does with its handle
        page = keep.try_into_mut().unwrap_or_default();
        assert_eq!(page.as_ptr(), ptr, "same allocation");
        assert_eq!(page.len(), 1 << 20);
    }
}
