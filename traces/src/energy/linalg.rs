//! Dense symmetric positive-definite algebra for the (small) power-model fit.

/// Row-major n×n matrix.
#[derive(Debug, Clone)]
pub(crate) struct Sym {
    pub n: usize,
    pub a: Vec<f64>,
}

impl Sym {
    pub fn zeros(n: usize) -> Sym {
        Sym { n, a: vec![0.0; n * n] }
    }

    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.a[i * self.n + j]
    }

    pub fn add(&mut self, i: usize, j: usize, v: f64) {
        self.a[i * self.n + j] += v;
    }

    /// Lower Cholesky factor; None when not positive definite.
    pub fn cholesky(&self) -> Option<Vec<f64>> {
        let n = self.n;
        let mut l = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let mut s = self.at(i, j);
                for k in 0..j {
                    s -= l[i * n + k] * l[j * n + k];
                }
                if i == j {
                    if s <= 0.0 || !s.is_finite() {
                        return None;
                    }
                    l[i * n + i] = s.sqrt();
                } else {
                    l[i * n + j] = s / l[j * n + j];
                }
            }
        }
        Some(l)
    }
}

/// Solves `L Lᵀ x = b` for a Cholesky factor `l` (n×n row-major).
pub(crate) fn chol_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = b.to_vec();
    for i in 0..n {
        let mut s = y[i];
        for k in 0..i {
            s -= l[i * n + k] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k * n + i] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    y
}

/// `(L Lᵀ)⁻¹`, row-major.
pub(crate) fn chol_inverse(l: &[f64], n: usize) -> Vec<f64> {
    let mut inv = vec![0.0; n * n];
    let mut e = vec![0.0; n];
    for i in 0..n {
        e.iter_mut().for_each(|x| *x = 0.0);
        e[i] = 1.0;
        for (j, x) in chol_solve(l, n, &e).into_iter().enumerate() {
            inv[j * n + i] = x;
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_hand_system() {
        // [[4, 2], [2, 3]] x = [2, 5]  ->  x = [-0.5, 2]; inverse diag = [3/8, 4/8]
        let mut m = Sym::zeros(2);
        m.a.copy_from_slice(&[4.0, 2.0, 2.0, 3.0]);
        let l = m.cholesky().unwrap();
        let x = chol_solve(&l, 2, &[2.0, 5.0]);
        assert!((x[0] + 0.5).abs() < 1e-12 && (x[1] - 2.0).abs() < 1e-12, "{x:?}");
        // inverse = [[3, -2], [-2, 4]] / 8
        let inv = chol_inverse(&l, 2);
        let want = [0.375, -0.25, -0.25, 0.5];
        assert!(inv.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{inv:?}");
        let mut bad = Sym::zeros(2);
        bad.a.copy_from_slice(&[1.0, 2.0, 2.0, 1.0]);
        assert!(bad.cholesky().is_none());
    }
}
