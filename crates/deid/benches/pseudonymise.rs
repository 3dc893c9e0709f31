//! Pseudonymising 1,000,000 UUIDs (Utf8) versus bare ring HMAC-SHA256 over the same
//! values, on one core, in the same run.
//!
//! ```text
//! cargo bench -p dhub-deid --bench pseudonymise
//! ```
//!
//! Prints the median rate of 7 rounds of each and the ratio (target: ≥ 0.80).

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::hint::black_box;
use std::time::Instant;

use arrow_array::{Array, StringArray};
use dhub_deid::{Domain, IdFormat, MasterKey, Pseudonymiser};
use ring::hmac;

const N: usize = 1_000_000;
const ROUNDS: usize = 7;

fn uuids() -> StringArray {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..N)
        .map(|_| {
            let (a, b) = (next(), next());
            Some(format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xffff,
                b >> 48,
                b & 0xffff_ffff_ffff
            ))
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let values = uuids();
    let master = MasterKey::from_bytes([0x5a; 32]);
    let domain = master.domain_key(&Domain::pseudonym("person").expect("entity name"));
    let bare_key = hmac::Key::new(hmac::HMAC_SHA256, domain.expose_bytes());
    let p = Pseudonymiser::new(&master, "person").expect("entity name");

    let mut bare = Vec::new();
    let mut text = Vec::new();
    let mut uuid = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let mut acc = 0u8;
        for v in values.iter().flatten() {
            acc ^= hmac::sign(&bare_key, v.as_bytes()).as_ref()[0];
        }
        black_box(acc);
        bare.push(N as f64 / t.elapsed().as_secs_f64());

        let t = Instant::now();
        let out = p
            .pseudonymise(&values, IdFormat::Text)
            .expect("pseudonymise");
        black_box(out.array.len());
        text.push(N as f64 / t.elapsed().as_secs_f64());

        let t = Instant::now();
        let out = p
            .pseudonymise(&values, IdFormat::Uuid)
            .expect("pseudonymise");
        assert!(out.failures.is_empty());
        black_box(out.array.len());
        uuid.push(N as f64 / t.elapsed().as_secs_f64());
    }
    let (bare, text, uuid) = (median(bare), median(text), median(uuid));
    println!("values: {N} UUIDs (36 characters, Utf8), median of {ROUNDS} rounds, one core");
    println!(
        "bare ring HMAC-SHA256:              {:>10.0} values/s",
        bare
    );
    println!(
        "pseudonymise (format text) -> Utf8: {:>10.0} values/s  ratio {:.2}",
        text,
        text / bare
    );
    println!(
        "pseudonymise (format uuid) -> Utf8: {:>10.0} values/s  ratio {:.2}",
        uuid,
        uuid / bare
    );
}
