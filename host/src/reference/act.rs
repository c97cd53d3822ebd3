//! Standalone activations and the elementwise add.

use crate::ops::{check_len, Act, OpError};

/// Elementwise activation `y[i] = act(x[i])`: ONNX Relu, Clip(min, max) (ReLU6 =
/// Clip(0, 6)), Sigmoid `1/(1+e^-x)`, Tanh. Layout-agnostic. NaN propagates.
pub fn activation(act: Act, x: &[f32]) -> Result<Vec<f64>, OpError> {
    act.validate()?;
    Ok(x.iter().map(|&v| act.apply(v as f64)).collect())
}

/// Elementwise `y[i] = act(a[i] + b[i])` (ONNX Add on equal shapes, optionally followed by
/// Relu: ResNet's unfused residual join). Layout-agnostic.
pub fn add(a: &[f32], b: &[f32], act: Act) -> Result<Vec<f64>, OpError> {
    check_len("add", "b", b.len(), a.len())?;
    act.validate()?;
    Ok(a.iter().zip(b).map(|(&x, &y)| act.apply(x as f64 + y as f64)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_by_hand() {
        let x = [-2.0f32, -0.5, 0.0, 3.0, 7.0];
        assert_eq!(activation(Act::None, &x).unwrap(), vec![-2.0, -0.5, 0.0, 3.0, 7.0]);
        assert_eq!(activation(Act::Relu, &x).unwrap(), vec![0.0, 0.0, 0.0, 3.0, 7.0]);
        assert_eq!(activation(Act::RELU6, &x).unwrap(), vec![0.0, 0.0, 0.0, 3.0, 6.0]);
        let clip = Act::Clip { min: -1.0, max: 1.0 };
        assert_eq!(activation(clip, &x).unwrap(), vec![-1.0, -0.5, 0.0, 1.0, 1.0]);
        // sigmoid(0) = 1/2; sigmoid(-x) = 1 - sigmoid(x); tanh(0) = 0, tanh odd.
        let s = activation(Act::Sigmoid, &[0.0, 2.0, -2.0]).unwrap();
        assert_eq!(s[0], 0.5);
        assert!((s[1] + s[2] - 1.0).abs() < 1e-15);
        // sigmoid(2) = 1/(1+e^-2) = 0.8807970779778823.
        assert!((s[1] - 0.880_797_077_977_882_3).abs() < 1e-15);
        let t = activation(Act::Tanh, &[0.0, 1.0, -1.0]).unwrap();
        assert_eq!(t[0], 0.0);
        // tanh(1) = (e^2 - 1)/(e^2 + 1) = 0.7615941559557649.
        assert!((t[1] - 0.761_594_155_955_764_9).abs() < 1e-15);
        assert_eq!(t[2], -t[1]);
        assert!(activation(Act::Clip { min: 2.0, max: 1.0 }, &x).is_err());
    }

    #[test]
    fn add_with_relu() {
        let a = [1.0f32, -3.0, 0.5];
        let b = [2.0f32, 1.0, -0.25];
        assert_eq!(add(&a, &b, Act::None).unwrap(), vec![3.0, -2.0, 0.25]);
        assert_eq!(add(&a, &b, Act::Relu).unwrap(), vec![3.0, 0.0, 0.25]);
        assert!(add(&a, &b[..2], Act::None).is_err());
    }
}
