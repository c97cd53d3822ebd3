//! Comparison and test-input helpers for the GPU self-test.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Relative L2 error `‖out − reference‖₂ / ‖reference‖₂`, computed in f64.
///
/// Fails closed: returns `f64::INFINITY` (never NaN, so `err <= tol` and `!(err > tol)`
/// both reject it) when the lengths differ, when any element of either side is NaN or
/// ±inf, or when `‖reference‖₂ = 0` and `out` is not exactly zero too. Returns 0 for an
/// exact match, including two all-zero vectors or empty ones.
pub fn rel_l2(out: &[f32], reference: &[f64]) -> f64 {
    if out.len() != reference.len() {
        return f64::INFINITY;
    }
    let (mut diff2, mut ref2) = (0.0f64, 0.0f64);
    for (&o, &r) in out.iter().zip(reference) {
        let o = o as f64;
        if !o.is_finite() || !r.is_finite() {
            return f64::INFINITY;
        }
        diff2 += (o - r) * (o - r);
        ref2 += r * r;
    }
    if diff2 == 0.0 {
        0.0
    } else if ref2 == 0.0 {
        f64::INFINITY
    } else {
        let e = (diff2 / ref2).sqrt();
        // Squares of huge values can overflow to inf/inf = NaN.
        if e.is_nan() {
            f64::INFINITY
        } else {
            e
        }
    }
}

/// `len` values uniform in [-1, 1], reproducible from `seed` (`StdRng::seed_from_u64`).
pub fn random_uniform(len: usize, seed: u64) -> Vec<f32> {
    random_uniform_in(len, seed, -1.0, 1.0)
}

/// `len` values uniform in [lo, hi], reproducible from `seed`. Use e.g. [0.5, 1.5] for
/// batch-norm variances. Panics if `lo > hi` or either is not finite (a test bug).
pub fn random_uniform_in(len: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(lo..=hi)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_l2_values() {
        // diff = (0, -1), ref = (1, 1): 1 / sqrt(2).
        let e = rel_l2(&[1.0, 0.0], &[1.0, 1.0]);
        assert!((e - 0.5f64.sqrt()).abs() < 1e-15);
        assert_eq!(rel_l2(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert_eq!(rel_l2(&[], &[]), 0.0);
        // diff (0.5), ref (2): 0.25 exactly.
        assert_eq!(rel_l2(&[2.5], &[2.0]), 0.25);
    }

    #[test]
    fn rel_l2_fails_closed() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let e = rel_l2(&[1.0, bad], &[1.0, 1.0]);
            assert_eq!(e, f64::INFINITY);
        }
        assert_eq!(rel_l2(&[1.0], &[f64::NAN]), f64::INFINITY);
        assert_eq!(rel_l2(&[1.0], &[1.0, 2.0]), f64::INFINITY);
        // Zero reference: only an exact zero passes.
        assert_eq!(rel_l2(&[0.0, 0.0], &[0.0, 0.0]), 0.0);
        assert_eq!(rel_l2(&[0.0, 1e-30], &[0.0, 0.0]), f64::INFINITY);
        // Overflowing squares must not turn into NaN.
        assert_eq!(rel_l2(&[f32::MAX], &[1e300]), f64::INFINITY);
    }

    #[test]
    fn random_is_seeded_and_in_range() {
        let a = random_uniform(1000, 7);
        assert_eq!(a, random_uniform(1000, 7));
        assert_ne!(a, random_uniform(1000, 8));
        assert!(a.iter().all(|v| (-1.0..=1.0).contains(v)));
        // Not degenerate: both signs occur.
        assert!(a.iter().any(|&v| v < -0.5) && a.iter().any(|&v| v > 0.5));
        let b = random_uniform_in(100, 1, 0.5, 1.5);
        assert!(b.iter().all(|v| (0.5..=1.5).contains(v)));
    }
}
