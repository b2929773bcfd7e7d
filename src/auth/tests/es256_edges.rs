//! ES256 edge cases built on purpose, checked against p256's own verify: u1 = 0, u2 = 0, R at
//! infinity, an R whose x lies in [n, p) (so r = x - n and r + n < p), and high-s signatures.
//!
//! These need control of the digest, which no token gives (it is a SHA-256), so they run at the
//! digest level: [`es256::verify_prehash`] is what the token path calls after hashing.

use p256::ecdsa::signature::hazmat::{PrehashSigner as _, PrehashVerifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::bigint::{ArrayEncoding as _, U256};
use p256::elliptic_curve::point::DecompressPoint as _;
use p256::elliptic_curve::subtle::Choice;
use p256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};

use crate::auth::es256::{self, KeyTable};

const N_HEX: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

fn scalar(v: u64) -> Scalar {
    Scalar::from(v)
}

fn table(key: &VerifyingKey) -> KeyTable {
    KeyTable::new(key.as_affine()).unwrap()
}

/// Both verifiers on the digest `z` and the scalars (r, s); returns (ours, p256's).
fn both(key: &VerifyingKey, z: &FieldBytes, r: Scalar, s: Scalar) -> (bool, bool) {
    let sig = Signature::from_scalars(r.to_bytes(), s.to_bytes());
    let ours = sig
        .as_ref()
        .is_ok_and(|_| es256::verify_prehash(&table(key), z, &r, &s));
    let theirs = sig.is_ok_and(|sig| key.verify_prehash(z, &sig).is_ok());
    (ours, theirs)
}

fn signing_key(byte: u8) -> SigningKey {
    SigningKey::from_slice(&[byte; 32]).unwrap()
}

fn d_of(key: &SigningKey) -> Scalar {
    *key.as_nonzero_scalar().as_ref()
}

#[test]
fn u1_zero_a_digest_of_zero_or_of_n_verifies_like_p256() {
    let key = signing_key(3);
    let n_bytes: FieldBytes = U256::from_be_hex(N_HEX).to_be_byte_array();
    for z in [FieldBytes::default(), n_bytes] {
        // z mod n = 0, so u1 = z / s = 0 and only the key's table contributes.
        let sig: Signature = key.sign_prehash(&z).unwrap();
        let (r, s) = sig.split_scalars();
        assert_eq!(both(key.verifying_key(), &z, *r, *s), (true, true));
        // And a wrong s still fails with u1 = 0.
        assert_eq!(
            both(key.verifying_key(), &z, *r, *s + Scalar::ONE),
            (false, false)
        );
    }
}

#[test]
fn u2_zero_leaves_only_the_generator_part() {
    // r is never 0 in a signature, so u2 = r / s is never 0 on the verify path; the table
    // arithmetic itself handles it (and u1 = u2 = 0 gives the identity).
    let key = signing_key(4);
    let t = table(key.verifying_key());
    let k = scalar(0xDEAD_BEEF);
    let ours = es256::lincomb(&t, &k, &Scalar::ZERO).to_affine_bytes();
    let g = (ProjectivePoint::GENERATOR * k).to_affine();
    let encoded = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&g, false);
    assert_eq!(ours, Some((*encoded.x().unwrap(), *encoded.y().unwrap())));
    assert!(es256::lincomb(&t, &Scalar::ZERO, &Scalar::ZERO).is_identity());
}

#[test]
fn r_at_infinity_is_refused_like_p256() {
    // With z = -r*d, u1*G + u2*Q = ((z + r*d) / s) * G is the point at infinity.
    let key = signing_key(5);
    let d = d_of(&key);
    for (r, s) in [
        (scalar(7), scalar(11)),
        (-scalar(2), scalar(3)),
        (scalar(1), -scalar(1)),
    ] {
        let z = (-(r * d)).to_bytes();
        let point = es256::lincomb(
            &table(key.verifying_key()),
            &(<Scalar as p256::elliptic_curve::ops::Reduce<U256>>::reduce_bytes(&z)
                * s.invert().unwrap()),
            &(r * s.invert().unwrap()),
        );
        assert!(point.is_identity(), "the construction reaches infinity");
        assert_eq!(both(key.verifying_key(), &z, r, s), (false, false));
    }
}

/// A point R with x = n + t for the smallest t >= `from` that gives a point on the curve.
fn point_with_x_above_n(from: u64) -> (AffinePoint, u64) {
    let n = U256::from_be_hex(N_HEX);
    for t in from.. {
        let x: FieldBytes = n.wrapping_add(&U256::from_u64(t)).to_be_byte_array();
        if let Some(point) =
            Option::<AffinePoint>::from(AffinePoint::decompress(&x, Choice::from(0)))
        {
            return (point, t);
        }
    }
    unreachable!()
}

/// The key Q for which (r, s) is a valid signature of digest z with nonce point R:
/// Q = r^-1 (s R - z G).
fn key_for(r: Scalar, s: Scalar, z: &FieldBytes, big_r: &AffinePoint) -> VerifyingKey {
    let z = <Scalar as p256::elliptic_curve::ops::Reduce<U256>>::reduce_bytes(z);
    let q =
        (ProjectivePoint::from(*big_r) * s - ProjectivePoint::GENERATOR * z) * r.invert().unwrap();
    VerifyingKey::from_affine(q.to_affine()).unwrap()
}

#[test]
fn r_with_x_in_n_to_p_verifies_through_the_r_plus_n_comparison_like_p256() {
    for from in [1, 1000] {
        let (big_r, t) = point_with_x_above_n(from);
        // x(R) = n + t, so x mod n = t = r, and r + n = x < p: only the second comparison matches.
        let r = scalar(t);
        let s = scalar(0x1234_5678) + scalar(from);
        let z: FieldBytes = [0x42; 32].into();
        let key = key_for(r, s, &z, &big_r);
        assert_eq!(both(&key, &z, r, s), (true, true), "t = {t}");
        // Off by one in r, or a different digest: refused by both.
        assert_eq!(both(&key, &z, r + Scalar::ONE, s), (false, false));
        assert_eq!(both(&key, &[0x43; 32].into(), r, s), (false, false));
        // The high-s twin is valid too (-R has the same x).
        assert_eq!(both(&key, &z, r, -s), (true, true));
    }
}

#[test]
fn small_r_with_x_below_n_verifies_through_the_first_comparison_like_p256() {
    // r + n < p also holds here, but x(R) = r itself: the first comparison matches.
    for x in 1u64.. {
        let bytes: FieldBytes = U256::from_u64(x).to_be_byte_array();
        let Some(big_r) =
            Option::<AffinePoint>::from(AffinePoint::decompress(&bytes, Choice::from(1)))
        else {
            continue;
        };
        let (r, s) = (scalar(x), scalar(99));
        let z: FieldBytes = [0x17; 32].into();
        let key = key_for(r, s, &z, &big_r);
        assert_eq!(both(&key, &z, r, s), (true, true), "x = {x}");
        assert_eq!(both(&key, &z, r, s + Scalar::ONE), (false, false));
        break;
    }
}

#[test]
fn high_s_signatures_verify_like_p256() {
    // ES256 has no low-s rule: (r, n - s) is as valid as (r, s).
    let key = signing_key(6);
    for i in 0..20u8 {
        let z: FieldBytes = [i; 32].into();
        let sig: Signature = key.sign_prehash(&z).unwrap();
        let (r, s) = sig.split_scalars();
        let high = if sig.normalize_s().is_some() { *s } else { -*s };
        assert_eq!(both(key.verifying_key(), &z, *r, *s), (true, true));
        assert_eq!(both(key.verifying_key(), &z, *r, high), (true, true));
        assert_eq!(both(key.verifying_key(), &z, *r, -high), (true, true));
    }
}
