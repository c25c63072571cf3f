#![allow(clippy::expect_used, clippy::unwrap_used)]

use super::*;

fn spec(format: Format, dim1: u64, dim2: u64, samples: u64) -> FileSpec {
    FileSpec {
        format,
        dim1,
        dim2,
        samples,
        itemsize: 1,
        descr: "|u1",
        tf_size_feature: (dim1 * dim2) as i64,
        parquet: None,
        semantics: Semantics::V3,
    }
}

fn write(dir: &Path, name: &str, s: &FileSpec) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join(name);
    let mut f = File::create(&path).expect("create");
    let mut chunk = vec![0u8; 1000]; // small chunk: exercises multi-chunk streaming
    let n = write_file(&mut f, &path, s, &mut chunk, &mut |off, b| {
        for (i, x) in b.iter_mut().enumerate() {
            *x = ((off + i as u64) % 251) as u8;
        }
    })
    .expect("write");
    drop(f);
    let bytes = std::fs::read(&path).expect("read");
    assert_eq!(
        bytes.len() as u64,
        n,
        "file_size() must predict the size exactly"
    );
    assert_eq!(n, s.file_size());
    (path, bytes)
}

#[test]
fn npy_header_is_64_aligned_and_parses() {
    let h = npy_header("|u1", &[3, 4, 1]);
    assert_eq!(h.len() % 64, 0);
    assert_eq!(*h.last().unwrap_or(&0), b'\n');
    let (d, s, l) = parse_npy_header(Path::new("x"), &h).expect("parse");
    assert_eq!((d.as_str(), s, l), ("|u1", vec![3, 4, 1], h.len()));
    let h1 = npy_header("<i8", &[5]);
    assert!(String::from_utf8_lossy(&h1).contains("'shape': (5,)"));
}

#[test]
fn npz_roundtrip_checks_crc_and_shapes() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = spec(Format::Npz, 37, 23, 2);
    let (path, mut bytes) = write(dir.path(), "a.npz", &s);
    let m = parse_npz(&path, &bytes).expect("valid npz");
    assert_eq!(m.len(), 2);
    assert_eq!(
        (m[0].name.as_str(), m[0].shape.clone()),
        ("x.npy", vec![37, 23, 2])
    );
    assert_eq!(
        (m[1].name.as_str(), m[1].descr.as_str(), m[1].shape.clone()),
        ("y.npy", "<i8", vec![2])
    );
    let x0 = m[0].data_offset as usize;
    assert_eq!(&bytes[x0..x0 + 4], &[0, 1, 2, 3]);
    bytes[x0 + 10] ^= 0xff;
    assert!(
        parse_npz(&path, &bytes).is_err(),
        "a flipped byte must fail the CRC"
    );
}

#[test]
fn tfrecord_roundtrip_checks_both_crcs() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = spec(Format::Tfrecord, 50, 41, 3);
    let (path, mut bytes) = write(dir.path(), "a.tfrecord", &s);
    let lens = parse_tfrecord(&path, &bytes).expect("valid tfrecord");
    assert_eq!(lens.len(), 3);
    assert!(lens.iter().all(|&l| l > 50 * 41));
    let n = bytes.len();
    bytes[n - 9] ^= 1;
    assert!(parse_tfrecord(&path, &bytes).is_err());
}

#[test]
fn masked_crc_matches_tensorflow_vector() {
    // crc32c("123456789") = 0xE3069283 (RFC 3720); masked per TFRecord.
    let c = crc32c::crc32c(b"123456789");
    assert_eq!(c, 0xE306_9283);
    assert_eq!(
        masked_crc32c(b"123456789"),
        c.rotate_right(15).wrapping_add(0xa282_ead8)
    );
}

#[test]
fn jpeg_is_raw_bytes_of_dim1_dim2() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = spec(Format::Jpeg, 568, 568, 1);
    let (_, bytes) = write(dir.path(), "a.jpeg", &s);
    assert_eq!(bytes.len(), 322_624);
}

/// numpy itself loads our npz (skips with a reason when python3 + numpy are not installed).
#[test]
fn numpy_loads_our_npz() {
    // The first interpreter on PATH may lack numpy while Debian's (python3-numpy) has it.
    let python = ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        std::process::Command::new(py)
            .args(["-c", "import numpy"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    let Some(python) = python else {
        eprintln!(
            "SKIP numpy_loads_our_npz: no python3 with numpy (apt-get install -y python3-numpy)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let s = spec(Format::Npz, 37, 23, 2);
    let (path, _) = write(dir.path(), "a.npz", &s);
    let script = "import sys, numpy as np\nd = np.load(sys.argv[1])\nx = d['x']; y = d['y']\nassert x.shape == (37, 23, 2) and x.dtype == np.uint8, (x.shape, x.dtype)\nassert y.shape == (2,) and y.dtype == np.int64\nassert x.reshape(-1)[3] == 3\nprint('ok')";
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "numpy rejected the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
