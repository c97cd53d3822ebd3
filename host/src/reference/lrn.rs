//! Local response normalisation.

use super::layout::to_layout;
use crate::ops::{check_len, Layout, Lrn, OpError};

/// ONNX LRN, exactly: for each `(n, c, h, w)`,
/// `square_sum = Σ x[n, i, h, w]²` over
/// `max(0, c - floor((size-1)/2)) <= i <= min(C-1, c + ceil((size-1)/2))`, and
/// `y = x / (bias + alpha / size * square_sum)^beta`.
/// (torch.nn.LocalResponseNorm is the same for odd `size`.) `x` and the result use
/// `layout`.
pub fn lrn(p: &Lrn, layout: Layout, x: &[f32]) -> Result<Vec<f64>, OpError> {
    p.validate()?;
    check_len("lrn", "input", x.len(), p.len())?;
    let x = to_layout(x, p.dims(), layout, Layout::Nchw)?;
    let hw = p.h * p.w;
    let before = (p.size - 1) / 2;
    let after = (p.size - 1).div_ceil(2);
    let (alpha, beta, bias) = (p.alpha as f64, p.beta as f64, p.bias as f64);
    let mut y = vec![0.0f64; x.len()];
    for n in 0..p.n {
        for c in 0..p.c {
            let lo = c.saturating_sub(before);
            let hi = (c + after).min(p.c - 1);
            for s in 0..hw {
                let at = |ch: usize| (n * p.c + ch) * hw + s;
                let square_sum: f64 = (lo..=hi).map(|i| (x[at(i)] as f64).powi(2)).sum();
                y[at(c)] = x[at(c)] as f64 / (bias + alpha / p.size as f64 * square_sum).powf(beta);
            }
        }
    }
    to_layout(&y, p.dims(), Layout::Nchw, layout)
}
