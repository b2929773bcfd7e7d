//! Fast ES256 verification on p256's field and scalar arithmetic with variable-time precomputed tables; pure.
//!
//! Verification handles only public data (key, signature, message), so nothing here needs to run
//! in constant time. p256's own `VerifyingKey::verify` computes `u1*G + u2*Q` with two
//! constant-time scalar multiplications (about 640 group operations plus table scans). Here both
//! scalars go through fixed-base tables instead:
//!
//! * **Window size w = 8, signed digits.** A scalar below n is recoded into 33 base-256 digits in
//!   [-128, 127] (the last one 0 or 1). Window `i` stores `j * 256^i * P` for `j = 1..=128` as
//!   affine points; a digit `d` adds entry `|d|`, negated (one field negation) when `d < 0`.
//!   A verify is then at most 33 + 33 mixed additions and one variable-time scalar inversion,
//!   with no doublings; the final comparison is projective, so no field inversion either.
//! * **Memory:** 33 x 128 affine points x 64 bytes = 270,336 bytes per key (the budget is 1 MiB).
//!   w = 9 would save 4 additions per scalar but need 29 x 256 points (475 KB) and twice the
//!   build time; unsigned w = 8 needs 32 x 255 points (522 KB) to save one addition. Signed w = 8
//!   is the smallest table that keeps a verify at about 64 additions.
//! * **When tables are built:** the generator's once per process ([`generator_table`]), a key's
//!   when its key set is parsed ([`KeyTable::new`], about 4,200 additions and one batched
//!   inversion), never on the request path.
//!
//! Point arithmetic uses the complete formulas of Renes, Costello and Batina 2015 for a = -3
//! (the ones p256 itself uses), on homogeneous projective coordinates: no special cases for
//! doubling or opposite points. Table entries are never the identity (`j * 256^i` is never a
//! multiple of the prime n), which the complete mixed addition requires of its affine input.
//!
//! The public behaviour is p256's: the caller checks the 64-byte R||S layout and the [1, n-1]
//! range, the digest is reduced mod n (SEC1 section 4.1.4), and `x(R) mod n` is compared with r,
//! so an R whose x lies in [n, p) verifies with r = x - n.

use std::sync::OnceLock;

use p256::elliptic_curve::ops::{Invert as _, Reduce};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::elliptic_curve::PrimeField as _;
use p256::{AffinePoint, FieldBytes, FieldElement, Scalar, U256};

/// Number of base-256 signed digits of a scalar below n: 32 bytes plus a final carry.
const WINDOWS: usize = 33;
/// Entries per window: the multiples 1..=128 of that window's base.
const PER_WINDOW: usize = 128;

/// The curve constant b of y^2 = x^3 - 3x + b.
const B_HEX: &str = "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b";
/// The group order n.
const N_HEX: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
/// p - n: r + n < p exactly when r < p - n.
const P_MINUS_N_HEX: &str = "000000000000000000000000000000004319055358e8617b0c46353d039cdaae";

struct Constants {
    b: FieldElement,
    n: FieldElement,
    p_minus_n: U256,
}

fn constants() -> &'static Constants {
    static C: OnceLock<Constants> = OnceLock::new();
    C.get_or_init(|| {
        let fe = |hex: &str| {
            let bytes = U256::from_be_hex(hex).to_be_byte_array();
            Option::<FieldElement>::from(FieldElement::from_bytes(&bytes))
                .expect("curve constants are below p")
        };
        Constants {
            b: fe(B_HEX),
            n: fe(N_HEX),
            p_minus_n: U256::from_be_hex(P_MINUS_N_HEX),
        }
    })
}

use p256::elliptic_curve::bigint::ArrayEncoding as _;

/// An affine point that is never the identity.
#[derive(Clone, Copy, Debug)]
struct Affine {
    x: FieldElement,
    y: FieldElement,
}

/// Homogeneous projective coordinates: (X : Y : Z) is (X/Z, Y/Z); Z = 0 is the identity.
#[derive(Clone, Copy, Debug)]
pub struct Projective {
    x: FieldElement,
    y: FieldElement,
    z: FieldElement,
}

impl Projective {
    const IDENTITY: Self = Self {
        x: FieldElement::ZERO,
        y: FieldElement::ONE,
        z: FieldElement::ZERO,
    };

    fn from_affine(p: &Affine) -> Self {
        Self {
            x: p.x,
            y: p.y,
            z: FieldElement::ONE,
        }
    }

    /// True for the point at infinity.
    pub fn is_identity(&self) -> bool {
        bool::from(self.z.is_zero())
    }

    /// The affine coordinates as big-endian bytes, `None` for the identity (tests compare these).
    pub fn to_affine_bytes(&self) -> Option<(FieldBytes, FieldBytes)> {
        let zinv = Option::<FieldElement>::from(self.z.invert())?;
        Some(((self.x * zinv).to_bytes(), (self.y * zinv).to_bytes()))
    }

    /// RCB 2015 algorithm 4: complete addition for a = -3.
    fn add(&self, rhs: &Self, b: &FieldElement) -> Self {
        let xx = self.x * rhs.x;
        let yy = self.y * rhs.y;
        let zz = self.z * rhs.z;
        let xy_pairs = ((self.x + self.y) * (rhs.x + rhs.y)) - (xx + yy);
        let yz_pairs = ((self.y + self.z) * (rhs.y + rhs.z)) - (yy + zz);
        let xz_pairs = ((self.x + self.z) * (rhs.x + rhs.z)) - (xx + zz);
        let bzz_part = xz_pairs - (*b * zz);
        let bzz3_part = bzz_part.double() + bzz_part;
        let yy_m_bzz3 = yy - bzz3_part;
        let yy_p_bzz3 = yy + bzz3_part;
        let zz3 = zz.double() + zz;
        let bxz_part = (*b * xz_pairs) - (zz3 + xx);
        let bxz3_part = bxz_part.double() + bxz_part;
        let xx3_m_zz3 = xx.double() + xx - zz3;
        Self {
            x: (yy_p_bzz3 * xy_pairs) - (yz_pairs * bxz3_part),
            y: (yy_p_bzz3 * yy_m_bzz3) + (xx3_m_zz3 * bxz3_part),
            z: (yy_m_bzz3 * yz_pairs) + (xy_pairs * xx3_m_zz3),
        }
    }

    /// RCB 2015 algorithm 5: complete mixed addition for a = -3 (`rhs` is not the identity).
    fn add_mixed(&self, rhs_x: &FieldElement, rhs_y: &FieldElement, b: &FieldElement) -> Self {
        let xx = self.x * rhs_x;
        let yy = self.y * rhs_y;
        let xy_pairs = ((self.x + self.y) * (*rhs_x + rhs_y)) - (xx + yy);
        let yz_pairs = (*rhs_y * self.z) + self.y;
        let xz_pairs = (*rhs_x * self.z) + self.x;
        let bz_part = xz_pairs - (*b * self.z);
        let bz3_part = bz_part.double() + bz_part;
        let yy_m_bzz3 = yy - bz3_part;
        let yy_p_bzz3 = yy + bz3_part;
        let z3 = self.z.double() + self.z;
        let bxz_part = (*b * xz_pairs) - (z3 + xx);
        let bxz3_part = bxz_part.double() + bxz_part;
        let xx3_m_zz3 = xx.double() + xx - z3;
        Self {
            x: (yy_p_bzz3 * xy_pairs) - (yz_pairs * bxz3_part),
            y: (yy_p_bzz3 * yy_m_bzz3) + (xx3_m_zz3 * bxz3_part),
            z: (yy_m_bzz3 * yz_pairs) + (xy_pairs * xx3_m_zz3),
        }
    }
}

/// Precomputed multiples of one point, for fixed-base scalar multiplication.
#[derive(Clone)]
pub struct KeyTable {
    /// `entries[i * PER_WINDOW + (j - 1)] = j * 256^i * P`.
    entries: Box<[Affine]>,
}

impl std::fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyTable")
            .field("bytes", &Self::BYTES)
            .finish_non_exhaustive()
    }
}

impl KeyTable {
    /// The size of one table's entries in memory.
    pub const BYTES: usize = WINDOWS * PER_WINDOW * std::mem::size_of::<Affine>();

    /// Builds the table of `point`; `None` for the identity (never a valid public key).
    pub fn new(point: &AffinePoint) -> Option<Self> {
        let encoded = point.to_encoded_point(false);
        let coordinate = |bytes: Option<&FieldBytes>| {
            bytes.and_then(|b| Option::<FieldElement>::from(FieldElement::from_bytes(b)))
        };
        let base = Affine {
            x: coordinate(encoded.x())?,
            y: coordinate(encoded.y())?,
        };
        Some(Self::from_affine(&base))
    }

    fn from_affine(point: &Affine) -> Self {
        let b = constants().b;
        let mut projective = Vec::with_capacity(WINDOWS * PER_WINDOW);
        let mut base = Projective::from_affine(point);
        for _ in 0..WINDOWS {
            let start = projective.len();
            projective.push(base);
            for j in 1..PER_WINDOW {
                let next = projective[start + j - 1].add(&base, &b);
                projective.push(next);
            }
            // 2 * (128 * base) = 256 * base, the next window's base.
            let last = projective[start + PER_WINDOW - 1];
            base = last.add(&last, &b);
        }
        Self {
            entries: batch_to_affine(&projective).into_boxed_slice(),
        }
    }

    /// Adds `k * P` to `acc`, reading one table entry per non-zero digit of `k`.
    fn add_multiple(&self, mut acc: Projective, k: &Scalar, b: &FieldElement) -> Projective {
        for (i, digit) in signed_digits(k).into_iter().enumerate() {
            if digit == 0 {
                continue;
            }
            let entry = &self.entries[i * PER_WINDOW + (digit.unsigned_abs() as usize - 1)];
            acc = if digit > 0 {
                acc.add_mixed(&entry.x, &entry.y, b)
            } else {
                acc.add_mixed(&entry.x, &-entry.y, b)
            };
        }
        acc
    }

    /// `k * P` (tests compare it with p256's own multiplication).
    pub fn mul(&self, k: &Scalar) -> Projective {
        self.add_multiple(Projective::IDENTITY, k, &constants().b)
    }
}

/// Montgomery's trick: one inversion for all the points (none of them is the identity).
fn batch_to_affine(points: &[Projective]) -> Vec<Affine> {
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = FieldElement::ONE;
    for p in points {
        prefix.push(acc);
        acc *= p.z;
    }
    let mut inv = Option::<FieldElement>::from(acc.invert())
        .expect("table points are never the identity, so the product of their z is non-zero");
    let mut out = vec![
        Affine {
            x: FieldElement::ZERO,
            y: FieldElement::ZERO
        };
        points.len()
    ];
    for i in (0..points.len()).rev() {
        let zinv = inv * prefix[i];
        inv *= points[i].z;
        out[i] = Affine {
            x: points[i].x * zinv,
            y: points[i].y * zinv,
        };
    }
    out
}

/// The table of the P-256 generator, built on first use and kept for the process.
pub fn generator_table() -> &'static KeyTable {
    static TABLE: OnceLock<KeyTable> = OnceLock::new();
    TABLE.get_or_init(|| KeyTable::new(&AffinePoint::GENERATOR).expect("G is not the identity"))
}

/// Recodes `k` into 33 digits in [-128, 127] with `k = sum(d_i * 256^i)`.
fn signed_digits(k: &Scalar) -> [i16; WINDOWS] {
    let be = k.to_repr();
    let mut digits = [0i16; WINDOWS];
    let mut carry = 0i16;
    for (i, digit) in digits.iter_mut().take(32).enumerate() {
        let v = be[31 - i] as i16 + carry;
        if v >= 128 {
            *digit = v - 256;
            carry = 1;
        } else {
            *digit = v;
            carry = 0;
        }
    }
    digits[32] = carry;
    digits
}

/// `u1 * G + u2 * Q`, both through tables.
pub fn lincomb(q: &KeyTable, u1: &Scalar, u2: &Scalar) -> Projective {
    let b = constants().b;
    let acc = generator_table().add_multiple(Projective::IDENTITY, u1, &b);
    q.add_multiple(acc, u2, &b)
}

/// ECDSA verification of the 32-byte digest `z` with scalars `r` and `s`, both already checked
/// to be in [1, n-1]: true when `x(u1*G + u2*Q) mod n == r`.
pub fn verify_prehash(q: &KeyTable, z: &FieldBytes, r: &Scalar, s: &Scalar) -> bool {
    let z = <Scalar as Reduce<U256>>::reduce_bytes(z);
    let Some(s_inv) = Option::<Scalar>::from(s.invert_vartime()) else {
        return false;
    };
    let point = lincomb(q, &(z * s_inv), &(*r * s_inv));
    x_matches(&point, r)
}

/// Whether `x(point) mod n == r`, without a field inversion: with x = X/Z, either x = r
/// (`r * Z == X`) or x = r + n, possible only when r + n < p.
fn x_matches(point: &Projective, r: &Scalar) -> bool {
    if point.is_identity() {
        return false;
    }
    let r_bytes = r.to_repr();
    let Some(r_fe) = Option::<FieldElement>::from(FieldElement::from_bytes(&r_bytes)) else {
        return false;
    };
    if bool::from((r_fe * point.z - point.x).is_zero()) {
        return true;
    }
    let c = constants();
    let r_uint = U256::from_be_byte_array(r_bytes);
    if r_uint >= c.p_minus_n {
        return false;
    }
    bool::from(((r_fe + c.n) * point.z - point.x).is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::point::AffineCoordinates as _;
    use p256::ProjectivePoint;

    fn random_scalar(rng: &ring::rand::SystemRandom) -> Scalar {
        let mut b = [0u8; 32];
        ring::rand::SecureRandom::fill(rng, &mut b).unwrap();
        <Scalar as Reduce<U256>>::reduce_bytes(&b.into())
    }

    fn p256_bytes(p: &ProjectivePoint) -> Option<(FieldBytes, FieldBytes)> {
        let a = p.to_affine();
        let e = a.to_encoded_point(false);
        (!bool::from(a.is_identity())).then(|| (*e.x().unwrap(), *e.y().unwrap()))
    }

    #[test]
    fn table_fits_the_memory_budget() {
        assert_eq!(std::mem::size_of::<Affine>(), 64);
        let table = KeyTable::new(&AffinePoint::GENERATOR).unwrap();
        let bytes = table.entries.len() * std::mem::size_of::<Affine>();
        assert_eq!(bytes, KeyTable::BYTES);
        assert!(bytes <= 1024 * 1024, "{bytes}");
    }

    #[test]
    fn constants_are_the_curve_s() {
        let c = constants();
        let n_minus_1 = U256::from_be_byte_array((-Scalar::ONE).to_repr());
        assert_eq!(U256::from_be_hex(N_HEX), n_minus_1.wrapping_add(&U256::ONE));
        let p =
            U256::from_be_hex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
        assert_eq!(c.p_minus_n.wrapping_add(&U256::from_be_hex(N_HEX)), p);
        let g = AffinePoint::GENERATOR.to_encoded_point(false);
        let x = Option::<FieldElement>::from(FieldElement::from_bytes(g.x().unwrap())).unwrap();
        let y = Option::<FieldElement>::from(FieldElement::from_bytes(g.y().unwrap())).unwrap();
        assert_eq!(
            y.square().to_bytes(),
            (x.square() * x - x.double() - x + c.b).to_bytes()
        );
    }

    #[test]
    fn signed_digits_recompose_the_scalar() {
        let rng = ring::rand::SystemRandom::new();
        for k in [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(128u64),
        ]
        .into_iter()
        .chain((0..50).map(|_| random_scalar(&rng)))
        {
            let digits = signed_digits(&k);
            let mut back = Scalar::ZERO;
            let base = Scalar::from(256u64);
            for d in digits.iter().rev() {
                back *= base;
                back += if *d >= 0 {
                    Scalar::from(*d as u64)
                } else {
                    -Scalar::from(d.unsigned_abs() as u64)
                };
            }
            assert_eq!(back, k);
            assert!(digits.iter().all(|d| (-128..=127).contains(d)));
        }
    }

    #[test]
    fn tables_multiply_like_p256() {
        let rng = ring::rand::SystemRandom::new();
        let q = ProjectivePoint::GENERATOR * random_scalar(&rng);
        let table = KeyTable::new(&q.to_affine()).unwrap();
        for k in [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(255u64),
        ]
        .into_iter()
        .chain((0..20).map(|_| random_scalar(&rng)))
        {
            let g = generator_table().mul(&k);
            assert_eq!(
                g.to_affine_bytes(),
                p256_bytes(&(ProjectivePoint::GENERATOR * k))
            );
            assert_eq!(table.mul(&k).to_affine_bytes(), p256_bytes(&(q * k)));
        }
    }

    #[test]
    fn zero_scalars_add_nothing() {
        let rng = ring::rand::SystemRandom::new();
        let k = random_scalar(&rng);
        let q = ProjectivePoint::GENERATOR * random_scalar(&rng);
        let table = KeyTable::new(&q.to_affine()).unwrap();
        // u2 = 0: only the generator part remains.
        assert_eq!(
            lincomb(&table, &k, &Scalar::ZERO).to_affine_bytes(),
            p256_bytes(&(ProjectivePoint::GENERATOR * k))
        );
        // u1 = 0: only the key part remains.
        assert_eq!(
            lincomb(&table, &Scalar::ZERO, &k).to_affine_bytes(),
            p256_bytes(&(q * k))
        );
        assert!(lincomb(&table, &Scalar::ZERO, &Scalar::ZERO).is_identity());
        let x = q.to_affine().x();
        assert!(!x.is_empty());
    }
}
