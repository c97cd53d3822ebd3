//! Inference batch normalisation.

use crate::ops::{check_len, invalid, BatchNorm, Layout, OpError};

fn check_params(c: usize, eps: f32, gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32]) -> Result<(), OpError> {
    const OP: &str = "batchnorm";
    check_len(OP, "gamma", gamma.len(), c)?;
    check_len(OP, "beta", beta.len(), c)?;
    check_len(OP, "mean", mean.len(), c)?;
    check_len(OP, "var", var.len(), c)?;
    for (i, &v) in var.iter().enumerate() {
        let d = v as f64 + eps as f64;
        if d.is_nan() || d <= 0.0 {
            return Err(invalid(OP, format!("var[{i}] + eps = {d} must be > 0")));
        }
    }
    Ok(())
}

/// ONNX BatchNormalization in inference mode (training_mode=0), torch `eval()` BN:
/// `y[n,c,h,w] = (x[n,c,h,w] - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]`,
/// computed literally in that order (not via folded scale/shift, so it cross-checks
/// [`fold_batch_norm`]). `x` and the result use `layout`; the parameters have `c` elements.
pub fn batch_norm(
    p: &BatchNorm,
    layout: Layout,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
) -> Result<Vec<f64>, OpError> {
    p.validate()?;
    check_len("batchnorm", "input", x.len(), p.len())?;
    check_params(p.c, p.eps, gamma, beta, mean, var)?;
    let dims = p.dims();
    Ok(x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = layout.channel_of(dims, i);
            (v as f64 - mean[c] as f64) / (var[c] as f64 + p.eps as f64).sqrt() * gamma[c] as f64 + beta[c] as f64
        })
        .collect())
}

/// Folds inference BN into the per-channel `(scale, shift)` a conv epilogue applies:
/// `scale = gamma / sqrt(var + eps)`, `shift = beta - mean * scale` (computed in f64,
/// rounded to f32 because that is what the GPU gets).
pub fn fold_batch_norm(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> Result<(Vec<f32>, Vec<f32>), OpError> {
    check_params(gamma.len(), eps, gamma, beta, mean, var)?;
    let scale: Vec<f64> = gamma.iter().zip(var).map(|(&g, &v)| g as f64 / (v as f64 + eps as f64).sqrt()).collect();
    let shift = beta.iter().zip(mean).zip(&scale).map(|((&b, &m), &s)| (b as f64 - m as f64 * s) as f32).collect();
    Ok((scale.into_iter().map(|s| s as f32).collect(), shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // Two channels, 1x2 plane each. c0: mean 1, var 3, eps 1 -> sqrt(4) = 2,
        // gamma 2, beta 0.5: x=3 -> (3-1)/2*2+0.5 = 2.5; x=-1 -> (-2)/2*2+0.5 = -1.5.
        // c1: mean 0, var 0, eps 1 -> 1, gamma -1, beta 0: x -> -x.
        let p = BatchNorm::new(1, 2, 1, 2).with_eps(1.0);
        let (g, b, m, v) = ([2.0, -1.0], [0.5, 0.0], [1.0, 0.0], [3.0, 0.0]);
        let x = [3.0f32, -1.0, 4.0, 5.0];
        assert_eq!(batch_norm(&p, Layout::Nchw, &x, &g, &b, &m, &v).unwrap(), vec![2.5, -1.5, -4.0, -5.0]);
        // Same data in NHWC: pixels (c0, c1) = (3, 4), (-1, 5).
        let xh = [3.0f32, 4.0, -1.0, 5.0];
        assert_eq!(batch_norm(&p, Layout::Nhwc, &xh, &g, &b, &m, &v).unwrap(), vec![2.5, -4.0, -1.5, -5.0]);
        // Folded: c0 scale 2/2 = 1, shift 0.5 - 1*1 = -0.5; c1 scale -1, shift 0.
        let (s, t) = fold_batch_norm(&g, &b, &m, &v, 1.0).unwrap();
        assert_eq!((s, t), (vec![1.0, -1.0], vec![-0.5, 0.0]));
    }

    #[test]
    fn rejects_bad_params() {
        let p = BatchNorm::new(1, 2, 1, 1).with_eps(0.0);
        let x = [1.0f32, 1.0];
        let ok = [1.0f32, 1.0];
        assert!(batch_norm(&p, Layout::Nchw, &x, &ok, &ok, &ok, &[1.0, 0.0]).is_err());
        assert!(batch_norm(&p, Layout::Nchw, &x, &ok[..1], &ok, &ok, &ok).is_err());
        assert!(batch_norm(&p, Layout::Nchw, &x[..1], &ok, &ok, &ok, &ok).is_err());
    }
}
