//! Softmax.

use crate::ops::{check_len, OpError, Softmax};

/// ONNX Softmax (opset >= 13) / `torch.softmax(x, dim)`: over the `len` axis of the
/// `[outer, len, inner]` view, `y_i = exp(x_i - max) / Σ_j exp(x_j - max)`. Subtracting
/// the max keeps it finite for any finite input (e.g. [1000, 1001]).
pub fn softmax(p: &Softmax, x: &[f32]) -> Result<Vec<f64>, OpError> {
    p.validate()?;
    check_len("softmax", "input", x.len(), p.total_len())?;
    let mut y = vec![0.0f64; x.len()];
    for o in 0..p.outer {
        for i in 0..p.inner {
            let at = |j: usize| (o * p.len + j) * p.inner + i;
            let max = (0..p.len).map(|j| x[at(j)] as f64).fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for j in 0..p.len {
                let e = (x[at(j)] as f64 - max).exp();
                y[at(j)] = e;
                sum += e;
            }
            for j in 0..p.len {
                y[at(j)] /= sum;
            }
        }
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-15)
    }

    #[test]
    fn by_hand() {
        // [1,2,3]: divide through by e^1: [1, e, e^2] / (1 + e + e^2).
        let e = std::f64::consts::E;
        let d = 1.0 + e + e * e;
        let y = softmax(&Softmax::rows(1, 3), &[1.0, 2.0, 3.0]).unwrap();
        assert!(close(&y, &[1.0 / d, e / d, e * e / d]));
        // Known decimals: 0.09003057, 0.24472847, 0.66524096.
        assert!((y[0] - 0.090_030_573).abs() < 1e-8 && (y[2] - 0.665_240_96).abs() < 1e-8);
        // [1000, 1001]: naive exp overflows; the answer is [1/(1+e), e/(1+e)].
        // Row 2 of the same batch: equal logits -> uniform.
        let y = softmax(&Softmax::rows(2, 2), &[1000.0, 1001.0, -5.0, -5.0]).unwrap();
        assert!(close(&y, &[1.0 / (1.0 + e), e / (1.0 + e), 0.5, 0.5]));
    }

    #[test]
    fn over_middle_axis() {
        // Shape [1, 2, 2], axis 1: pairs (x[0], x[2]) and (x[1], x[3]) normalise together.
        let p = Softmax::over_axis(&[1, 2, 2], 1).unwrap();
        let y = softmax(&p, &[0.0, 5.0, 0.0, 5.0]).unwrap();
        assert!(close(&y, &[0.5, 0.5, 0.5, 0.5]));
        let e = std::f64::consts::E;
        let y = softmax(&p, &[1.0, 0.0, 0.0, 0.0]).unwrap();
        assert!(close(&y, &[e / (1.0 + e), 0.5, 1.0 / (1.0 + e), 0.5]));
        assert!(softmax(&p, &[0.0; 3]).is_err());
    }
}
