use std::path::PathBuf;

use super::*;
use crate::formats::{FileSpec, write_file};
use crate::training::reader::read_sample;
use crate::workload::{Format, Semantics};

fn spec(format: Format, semantics: Semantics, dim1: u64, dim2: u64) -> FileSpec {
    FileSpec {
        format,
        dim1,
        dim2,
        samples: 1,
        itemsize: 1,
        descr: "|u1",
        tf_size_feature: (dim1 * dim2) as i64,
        parquet: None,
        semantics,
    }
}

/// Pixels as datagen supplies them: a byte stream unique per file (here a cheap LCG).
fn noise(seed: u64) -> impl FnMut(u64, &mut [u8]) {
    move |off, b| {
        for (i, x) in b.iter_mut().enumerate() {
            let v = (seed ^ (off + i as u64)).wrapping_mul(6364136223846793005);
            *x = (v >> 56) as u8;
        }
    }
}

fn write_spec(dir: &Path, name: &str, s: &FileSpec, seed: u64) -> (PathBuf, u64) {
    let path = dir.join(name);
    let mut f = File::create(&path).unwrap();
    let mut chunk = vec![0u8; 4096]; // smaller than most images: exercises the owned buffer
    let n = write_file(&mut f, &path, s, &mut chunk, &mut noise(seed)).unwrap();
    (path, n)
}

#[test]
fn v2_file_is_a_jpeg_that_decodes_to_the_workload_dimensions() {
    let tmp = tempfile::tempdir().unwrap();
    for (dim1, dim2) in [(568, 568), (37, 91), (1, 1), (16, 8)] {
        let s = spec(Format::Jpeg, Semantics::V2, dim1, dim2);
        let (path, n) = write_spec(tmp.path(), &format!("img_{dim1}x{dim2}.jpeg"), &s, 7);
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len() as u64, n, "write_file returns the encoded size");
        assert_eq!(&data[..2], &[0xFF, 0xD8], "SOI");
        assert_eq!(&data[data.len() - 2..], &[0xFF, 0xD9], "EOI");
        assert_ne!(n, dim1 * dim2, "not the v3 raw bytes");
        let mut d = JpegSampleDecoder::new();
        let decoded = d.decode(&path, &data).unwrap();
        assert_eq!(decoded as u64, dim1 * dim2);
        assert_eq!(d.dimensions(), (dim1 as usize, dim2 as usize, 1));
        assert_eq!(d.pixels().len() as u64, dim1 * dim2);
        assert!(is_complete(&path, dim1, dim2));
        assert!(!is_complete(&path, dim1 + 1, dim2), "other sides: rewrite");
    }
}

#[test]
fn decoded_pixels_stay_close_to_the_source_on_a_smooth_image() {
    // Noise is what datagen writes, but a smooth ramp shows the codec is lossy only slightly.
    let (h, w) = (64u64, 48u64);
    let pixels: Vec<u8> = (0..h * w).map(|i| ((i / w) * 3 + (i % w)) as u8).collect();
    let mut out = Vec::new();
    let path = Path::new("ramp.jpeg");
    encode_gray(path, &pixels, h, w, &mut out).unwrap();
    let mut d = JpegSampleDecoder::new();
    d.decode(path, &out).unwrap();
    let worst = d
        .pixels()
        .iter()
        .zip(&pixels)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 8, "max pixel error {worst}");
}

#[test]
fn files_differ_with_their_content_and_the_decoder_buffer_is_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(Format::Jpeg, Semantics::V2, 40, 30);
    let (a, _) = write_spec(tmp.path(), "a.jpeg", &s, 1);
    let (b, _) = write_spec(tmp.path(), "b.jpeg", &s, 2);
    let (da, db) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_ne!(da, db);
    let mut d = JpegSampleDecoder::new();
    d.decode(&a, &da).unwrap();
    let first = d.pixels().as_ptr();
    d.decode(&b, &db).unwrap();
    assert_eq!(
        d.pixels().as_ptr(),
        first,
        "same allocation for same-sized samples"
    );
}

#[test]
fn v3_jpeg_stays_raw_bytes_and_is_not_complete_under_v2() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(Format::Jpeg, Semantics::V3, 20, 10);
    let (path, n) = write_spec(tmp.path(), "raw.jpeg", &s, 3);
    assert_eq!(n, 200);
    let mut expected = vec![0u8; 200];
    noise(3)(0, &mut expected);
    assert_eq!(std::fs::read(&path).unwrap(), expected);
    assert!(s.existing_is_complete(&path, Some(200)));
    let v2 = spec(Format::Jpeg, Semantics::V2, 20, 10);
    assert!(!v2.size_is_exact() && s.size_is_exact());
    assert!(
        !v2.existing_is_complete(&path, Some(200)),
        "v3 file under v2"
    );
}

#[test]
fn v2_read_decodes_and_a_corrupt_jpeg_names_the_file_while_v3_reads_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(Format::Jpeg, Semantics::V2, 50, 60);
    let (good, n) = write_spec(tmp.path(), "good.jpeg", &s, 4);
    let mut buf = Vec::new();
    assert_eq!(
        read_sample(&good, &mut buf, Semantics::V2, Format::Jpeg).unwrap(),
        n
    );

    // Raw bytes under a .jpeg name (a v3 data set read with v2 semantics).
    let raw = tmp.path().join("raw.jpeg");
    std::fs::write(&raw, vec![0x5Au8; 3000]).unwrap();
    let e = read_sample(&raw, &mut buf, Semantics::V2, Format::Jpeg).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("raw.jpeg") && msg.contains("not a decodable JPEG"),
        "{msg}"
    );
    assert!(msg.contains("datagen"), "names the fix: {msg}");
    assert_eq!(
        read_sample(&raw, &mut buf, Semantics::V3, Format::Jpeg).unwrap(),
        3000
    );

    // A real JPEG cut short.
    let data = std::fs::read(&good).unwrap();
    let cut = tmp.path().join("cut.jpeg");
    std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
    let e = read_sample(&cut, &mut buf, Semantics::V2, Format::Jpeg).unwrap_err();
    assert!(e.to_string().contains("cut.jpeg"), "{e}");
    assert!(!is_complete(&cut, 50, 60));
    assert_eq!(
        read_sample(&cut, &mut buf, Semantics::V3, Format::Jpeg).unwrap(),
        (data.len() / 2) as u64
    );
}

#[test]
fn sides_beyond_the_jpeg_limit_are_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(Format::Jpeg, Semantics::V2, 70_000, 1);
    let path = tmp.path().join("big.jpeg");
    let mut f = File::create(&path).unwrap();
    let e = write_file(&mut f, &path, &s, &mut [0u8; 16], &mut noise(0)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("big.jpeg") && msg.contains("record_length"),
        "{msg}"
    );
}

fn dlio_python() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dlio-venv/bin/python");
    p.exists().then_some(p)
}

/// PIL (what DLIO 2.0.0 reads with) opens our file as an 8-bit grayscale JPEG of the right size,
/// decodes it to nearly the same pixels as zune-jpeg, and encoding the same pixels itself with its
/// defaults gives a file of nearly the same size (same quality, tables and mode).
#[test]
fn pil_reads_our_jpeg_as_dlio_does_and_encodes_the_same_pixels_alike() {
    let Some(python) = dlio_python() else {
        eprintln!("SKIP: target/dlio-venv/bin/python not found (PyPI DLIO 2.0.0 venv with Pillow)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (h, w) = (568u64, 421u64);
    let s = spec(Format::Jpeg, Semantics::V2, h, w);
    let (ours, n) = write_spec(tmp.path(), "ours.jpeg", &s, 11);
    let mut pixels = vec![0u8; (h * w) as usize];
    noise(11)(0, &mut pixels);
    let raw = tmp.path().join("pixels.raw");
    std::fs::write(&raw, &pixels).unwrap();
    let mut d = JpegSampleDecoder::new();
    d.decode(&ours, &std::fs::read(&ours).unwrap()).unwrap();
    let zune = tmp.path().join("zune.raw");
    std::fs::write(&zune, d.pixels()).unwrap();

    let script = format!(
        r#"
import io, numpy as np
from PIL import Image
im = Image.open({ours:?})
a = np.asarray(im)
z = np.fromfile({zune:?}, dtype=np.uint8).reshape(a.shape)
src = np.fromfile({raw:?}, dtype=np.uint8).reshape({h}, {w})
b = io.BytesIO()
Image.fromarray(src).save(b, format='JPEG', bits=8)
diff = int(np.abs(a.astype(int) - z.astype(int)).max())
print(im.format, im.mode, a.shape[0], a.shape[1], diff, len(b.getvalue()))
"#,
        ours = ours.display().to_string(),
        zune = zune.display().to_string(),
        raw = raw.display().to_string(),
    );
    let out = std::process::Command::new(&python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let f: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(&f[..4], ["JPEG", "L", "568", "421"], "{text}");
    let diff: u32 = f[4].parse().unwrap();
    assert!(diff <= 2, "PIL and zune-jpeg decode differ by up to {diff}");
    let pil_size: f64 = f[5].parse().unwrap();
    eprintln!("same {h}x{w} pixels: ours {n} B, PIL {pil_size} B; max decode diff {diff}");
    let rel = (n as f64 - pil_size).abs() / pil_size;
    assert!(
        rel < 0.02,
        "ours {n} B vs PIL {pil_size} B for the same pixels"
    );
}

/// retinanet under v2: datagen writes decodable JPEGs of DLIO's sizes, reports their real bytes,
/// keeps them on a rerun, replaces a v3 (raw bytes) data set in the same folder, and a v2 training
/// run decodes every sample.
#[test]
fn retinanet_v2_datagen_then_training_decodes_every_file() {
    use crate::Workload;
    use crate::datagen::{DatagenOptions, generate};
    use crate::training::{CachePolicy, RunOptions, run};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let workload = |semantics: &str| {
        let mut w = Workload::builtin("retinanet", Some("b200")).unwrap();
        w.apply_overrides(&[
            ("dlio.semantics".into(), semantics.into()),
            ("dataset.num_files_train".into(), "8".into()),
            ("reader.batch_size".into(), "2".into()),
            ("reader.read_threads".into(), "2".into()),
            ("train.epochs".into(), "1".into()),
            ("train.computation_time".into(), "0".into()),
        ])
        .unwrap();
        w
    };
    let opts = DatagenOptions {
        data_folder: Some(data.clone()),
        threads: 2,
        sync: false,
        ..Default::default()
    };
    // A v3 data set first: raw bytes, which v2 must not mistake for its JPEGs.
    let v3 = generate(&workload("v3"), &opts, &|_| {}).unwrap();
    assert_eq!(v3.files_written, 8);
    let w = workload("v2");
    let g = generate(&w, &opts, &|_| {}).unwrap();
    assert_eq!(g.files_written, 8, "v3 raw files are replaced");
    let files: Vec<PathBuf> = std::fs::read_dir(data.join("train"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 8);
    let on_disk: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(g.bytes_written, on_disk, "the encoded sizes are reported");
    let mut d = JpegSampleDecoder::new();
    for p in &files {
        d.decode(p, &std::fs::read(p).unwrap()).unwrap();
        // retinanet b200: record_length 322,957, no stdev ⇒ int(sqrt) = 568 a side.
        assert_eq!(d.dimensions(), (568, 568, 1), "{}", p.display());
    }
    let again = generate(&w, &opts, &|_| {}).unwrap();
    assert_eq!(
        (again.files_written, again.files_kept),
        (0, 8),
        "resume keeps them"
    );

    let report = run(
        &w,
        &RunOptions {
            data_folder: Some(data.clone()),
            cache: CachePolicy::Off,
            prewarm: Some(false),
            ..Default::default()
        },
        &mlps_cluster::SingleComm,
        &tmp.path().join("out"),
        &|_| {},
    )
    .unwrap();
    assert!(report.epochs[0].bytes_read > 0);

    // Corrupt one file: the v2 run fails naming it.
    std::fs::write(&files[0], vec![0u8; 1000]).unwrap();
    let e = run(
        &w,
        &RunOptions {
            data_folder: Some(data),
            cache: CachePolicy::Off,
            prewarm: Some(false),
            ..Default::default()
        },
        &mlps_cluster::SingleComm,
        &tmp.path().join("out2"),
        &|_| {},
    )
    .err()
    .unwrap();
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(e.to_string().contains(&name), "{e}");
}
