//! Cost per sample of the v2 jpeg path: encode (datagen) and read + decode (training), on
//! retinanet-sized 568×568 random grayscale images. `cargo run --release -p mlps-dlio-driver
//! --example jpeg_v2_cost [N]`.
use std::path::Path;
use std::time::Instant;

use mlps_dlio_driver::formats::jpeg_v2::{JpegSampleDecoder, encode_gray};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(400), |a| a.parse())?;
    let (h, w) = (568u64, 568u64);
    let gen_ = mlps_io_core::DataGen::new(1);
    let mut files = Vec::with_capacity(n);
    let mut pixels = vec![0u8; (h * w) as usize];
    let t = Instant::now();
    for i in 0..n {
        gen_.fill(i as u64, 0, &mut pixels);
        let mut out = Vec::new();
        encode_gray(Path::new("mem.jpeg"), &pixels, h, w, &mut out)?;
        files.push(out);
    }
    let enc = t.elapsed().as_secs_f64() / n as f64;
    let mut d = JpegSampleDecoder::new();
    let mut times = Vec::with_capacity(n);
    for f in &files {
        let t = Instant::now();
        d.decode(Path::new("mem.jpeg"), f)?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let mean_size = files.iter().map(Vec::len).sum::<usize>() as f64 / n as f64;
    println!(
        "{n} images {h}x{w}: mean {mean_size:.0} B; encode {:.0} us/img; decode median {:.0} us, p90 {:.0} us",
        enc * 1e6,
        times[n / 2] * 1e6,
        times[n * 9 / 10] * 1e6
    );
    Ok(())
}
