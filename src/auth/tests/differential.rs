//! Differential test: the table-based ES256 verify against p256's own `VerifyingKey::verify`.
//!
//! Random keys, messages and signatures (p256's RFC 6979 signing), each signature checked as
//! signed, with its s negated (high-s, still valid), and with one bit flipped in r, in s, in the
//! message or in the key. Both verifiers must give the same verdict on every case. The inputs
//! come from a seeded generator, so a failing case is reproducible from the seed it prints.
//!
//! The key flip is made in the compressed SEC1 form (a bit of x, or the sign of y), so about
//! half of the flipped keys are points of the curve, other keys that must refuse the signature;
//! a flipped bit of an uncompressed point almost never lands on the curve at all.
//!
//! `cargo test` runs 100,000 cases (two tests of 50,000 that the harness runs in parallel). The
//! long run is `DIFFERENTIAL_CASES=10000000 cargo test --release --lib -- --ignored
//! es256_matches_p256_long_run --nocapture` (spread over every core).

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

use crate::auth::algorithm::Algorithm;
use crate::auth::jwks::PublicKey;
use crate::auth::jwt::verify_signature;

/// xorshift64*, seeded: reproducible inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        out
    }
}

/// Verdict counts of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Cases compared.
    pub cases: u64,
    /// Both accepted.
    pub accepted: u64,
    /// Both refused.
    pub refused: u64,
    /// Key flips that left the curve (refused by both key parsers, not counted as cases).
    pub off_curve_keys: u64,
    /// Cases verified under a flipped key that is a point of the curve.
    pub flipped_key_cases: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.cases += o.cases;
        self.accepted += o.accepted;
        self.refused += o.refused;
        self.off_curve_keys += o.off_curve_keys;
        self.flipped_key_cases += o.flipped_key_cases;
    }
}

/// One case: both verifiers on the same key, message and signature bytes.
fn compare(
    counts: &mut Counts,
    seed: u64,
    mine: &PublicKey,
    reference: &VerifyingKey,
    msg: &[u8],
    sig: &[u8; 64],
) {
    let ours = verify_signature(Algorithm::Es256, mine, msg, sig).is_ok();
    let theirs = Signature::from_slice(sig).is_ok_and(|s| reference.verify(msg, &s).is_ok());
    assert_eq!(
        ours,
        theirs,
        "seed {seed:#x}: ours {ours}, p256 {theirs}, msg {msg:02x?}, sig {sig:02x?}, key {:02x?}",
        reference.to_encoded_point(false).as_bytes()
    );
    counts.cases += 1;
    if ours {
        counts.accepted += 1;
    } else {
        counts.refused += 1;
    }
}

/// `s` replaced by `n - s`: the other valid signature of the same (r, message).
fn high_s(sig: &[u8; 64]) -> [u8; 64] {
    let parsed = Signature::from_slice(sig).unwrap();
    let (r, s) = parsed.split_scalars();
    let flipped = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
    flipped.to_bytes().into()
}

/// Runs about `cases` comparisons from `seed`.
pub fn run(cases: u64, seed: u64) -> Counts {
    let mut rng = Rng(seed | 1);
    let mut counts = Counts::default();
    // A key serves 100 messages of 6 cases each, so table building stays a small share.
    const MESSAGES_PER_KEY: usize = 100;
    while counts.cases < cases {
        let Ok(signing) = SigningKey::from_slice(&rng.bytes::<32>()) else {
            continue;
        };
        let reference = *signing.verifying_key();
        let mine = PublicKey::p256(reference);
        // The same key with one bit of its compressed form flipped: a bit of x (then a point of
        // the curve about half the time) or the sign of y (the negated key, always a point).
        let mut encoded = reference.to_encoded_point(true).as_bytes().to_vec();
        let bit = 7 + rng.below(257);
        encoded[bit / 8] ^= 1 << (bit % 8);
        let flipped_key = VerifyingKey::from_sec1_bytes(&encoded)
            .ok()
            .map(|k| (PublicKey::p256(k), k));
        if flipped_key.is_none() {
            counts.off_curve_keys += 1;
        }
        for _ in 0..MESSAGES_PER_KEY {
            let len = rng.below(80);
            let msg: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let sig: Signature = signing.sign(&msg);
            let sig: [u8; 64] = sig.to_bytes().into();
            compare(&mut counts, seed, &mine, &reference, &msg, &sig);
            compare(&mut counts, seed, &mine, &reference, &msg, &high_s(&sig));
            let mut bad_r = sig;
            bad_r[rng.below(32)] ^= 1 << rng.below(8);
            compare(&mut counts, seed, &mine, &reference, &msg, &bad_r);
            let mut bad_s = sig;
            bad_s[32 + rng.below(32)] ^= 1 << rng.below(8);
            compare(&mut counts, seed, &mine, &reference, &msg, &bad_s);
            let mut bad_msg = msg.clone();
            if bad_msg.is_empty() {
                bad_msg.push(0);
            } else {
                let at = rng.below(bad_msg.len());
                bad_msg[at] ^= 1 << rng.below(8);
            }
            compare(&mut counts, seed, &mine, &reference, &bad_msg, &sig);
            match &flipped_key {
                Some((mine2, reference2)) => {
                    compare(&mut counts, seed, mine2, reference2, &msg, &sig);
                    counts.flipped_key_cases += 1;
                }
                // Off the curve: both key parsers refuse it; flip s once more instead.
                None => {
                    let mut bad = sig;
                    bad[63] ^= 0x80;
                    compare(&mut counts, seed, &mine, &reference, &msg, &bad)
                }
            }
        }
    }
    counts
}

fn assert_plausible(counts: Counts) {
    // A sixth of the cases are key flips; about half of those keys are points of the curve.
    assert!(counts.flipped_key_cases * 20 >= counts.cases, "{counts:?}");
    // Valid and high-s cases accept: a third of the cases. Every flip refuses.
    assert!(
        counts.accepted * 3 >= counts.cases - counts.cases / 100,
        "{counts:?}"
    );
    assert!(
        counts.refused * 3 >= counts.cases * 2 - counts.cases / 100,
        "{counts:?}"
    );
}

#[test]
fn es256_matches_p256_on_50_000_cases_first_half() {
    let counts = run(50_000, 0x5EED_0001);
    println!("{counts:?}");
    assert!(counts.cases >= 50_000);
    assert_plausible(counts);
}

#[test]
fn es256_matches_p256_on_50_000_cases_second_half() {
    let counts = run(50_000, 0x5EED_0002);
    println!("{counts:?}");
    assert!(counts.cases >= 50_000);
    assert_plausible(counts);
}

#[test]
#[ignore = "long run: DIFFERENTIAL_CASES=10000000 cargo test --release --lib -- --ignored es256_matches_p256_long_run --nocapture"]
fn es256_matches_p256_long_run() {
    let total: u64 = std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let started = std::time::Instant::now();
    let mut counts = Counts::default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| scope.spawn(move || run(total / threads, 0xD1FF_0000 + t)))
            .collect();
        for h in handles {
            counts += h.join().expect("a differential thread failed");
        }
    });
    println!(
        "differential long run: {counts:?} in {:.0} s on {threads} threads",
        started.elapsed().as_secs_f64()
    );
    assert!(counts.cases >= total - threads);
    assert_plausible(counts);
}
