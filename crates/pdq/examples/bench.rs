//! Throughput of `PdqHasher` on generated images.
//!
//! `cargo run --release -p hashscan-pdq --example bench [iterations] [WxH]`
//! prints, per image size, milliseconds per hash and megapixels per second
//! (all sizes, or only `WxH`).

use std::time::Instant;

use hashscan_pdq::PdqHasher;

fn generated(width: u32, height: u32) -> Vec<u8> {
    let mut s = 0x9e37_79b9u32;
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let base = (x / 7 + y / 5) % 256;
            out.extend_from_slice(&[(base + s % 32) as u8, (base * 3 % 256) as u8, (s >> 24) as u8]);
        }
    }
    out
}

fn main() {
    let iterations: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let mut hasher = PdqHasher::new();
    println!("{:>11} {:>10} {:>10} {:>10}", "size", "ms/hash", "Mpx/s", "ms/dihedral");
    let only = std::env::args().nth(2);
    let sizes = [(256u32, 256u32), (640, 480), (1600, 1004), (1920, 1080), (4032, 3024)];
    for (w, h) in sizes {
        if only.as_ref().is_some_and(|o| *o != format!("{w}x{h}")) {
            continue;
        }
        let img = generated(w, h);
        let n = (iterations * 2_000_000 / (w * h)).clamp(3, 2000);
        hasher.hash_rgb8(w, h, &img).expect("hash");
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(hasher.hash_rgb8(w, h, std::hint::black_box(&img)).expect("hash"));
        }
        let per = t.elapsed().as_secs_f64() / f64::from(n);
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(hasher.dihedral_rgb8(w, h, &img).expect("hash"));
        }
        let per_d = t.elapsed().as_secs_f64() / f64::from(n);
        println!(
            "{:>11} {:>10.3} {:>10.1} {:>10.3}",
            format!("{w}x{h}"),
            per * 1e3,
            f64::from(w * h) / per / 1e6,
            per_d * 1e3
        );
    }
}
