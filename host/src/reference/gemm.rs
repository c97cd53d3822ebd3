//! General matrix multiply / fully connected.

use crate::ops::{check_len, Gemm, GemmC, OpError};

/// ONNX Gemm: `Y = alpha * A' * B' + beta * C`, row-major, `Y` is M x N.
///
/// * `a`: M x K, or K x M when `p.trans_a` (then `A' = Aᵀ`);
/// * `b`: K x N, or N x K when `p.trans_b` (torchvision Linear's `[out, in]` weight);
/// * `c`: required iff `p.c != GemmC::None`, with [`Gemm::c_len`] elements, broadcast
///   to M x N per [`GemmC`].
///
/// A fully connected layer is `gemm(&Gemm::linear(batch, in, out, true), x, w, Some(b))`.
pub fn gemm(p: &Gemm, a: &[f32], b: &[f32], c: Option<&[f32]>) -> Result<Vec<f64>, OpError> {
    const OP: &str = "gemm";
    p.validate()?;
    check_len(OP, "A", a.len(), p.a_len())?;
    check_len(OP, "B", b.len(), p.b_len())?;
    check_len(OP, "C", c.map_or(0, <[f32]>::len), p.c_len())?;
    let (m, n, k) = (p.m, p.n, p.k);
    let a_at = |i: usize, kk: usize| {
        if p.trans_a {
            a[kk * m + i]
        } else {
            a[i * k + kk]
        }
    };
    let b_at = |kk: usize, j: usize| {
        if p.trans_b {
            b[j * k + kk]
        } else {
            b[kk * n + j]
        }
    };
    let c_at = |i: usize, j: usize| -> f64 {
        let Some(c) = c else { return 0.0 };
        (match p.c {
            GemmC::None => 0.0,
            GemmC::Scalar => c[0],
            GemmC::PerColumn => c[j],
            GemmC::PerRow => c[i],
            GemmC::Full => c[i * n + j],
        }) as f64
    };
    let mut y = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for kk in 0..k {
                acc += a_at(i, kk) as f64 * b_at(kk, j) as f64;
            }
            let mut v = p.alpha as f64 * acc;
            if p.c != GemmC::None {
                v += p.beta as f64 * c_at(i, j);
            }
            y.push(v);
        }
    }
    Ok(y)
}
