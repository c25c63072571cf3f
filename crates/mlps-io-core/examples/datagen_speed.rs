//! Single-core data-generation speed: `cargo run --release -p mlps-io-core --example datagen_speed [GiB]`.
use std::time::Instant;

use mlps_io_core::{DataGen, DataGenOpts};

fn main() {
    let gib: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let total = gib << 30;
    let mut buf = vec![0u8; 1 << 20];
    for (name, g) in [
        ("incompressible", DataGen::new(1)),
        (
            "compress_pct=50",
            DataGen::with_opts(DataGenOpts {
                seed: 1,
                compress_pct: 50,
                ..Default::default()
            }),
        ),
        (
            "dedupe_pct=50",
            DataGen::with_opts(DataGenOpts {
                seed: 1,
                dedupe_pct: 50,
                ..Default::default()
            }),
        ),
    ] {
        let mut best = 0.0f64;
        for _ in 0..3 {
            let t0 = Instant::now();
            let mut off = 0u64;
            while off < total {
                g.fill(0, off, &mut buf);
                off += buf.len() as u64;
            }
            std::hint::black_box(&buf);
            best = best.max(total as f64 / t0.elapsed().as_secs_f64() / (1u64 << 30) as f64);
        }
        println!("{name:>16}: {best:.2} GiB/s per core (best of 3 x {gib} GiB, 1 MiB fills)");
    }
}
