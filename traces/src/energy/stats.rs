//! Small statistics: Student-t quantiles and mean ± 95 % CI.

use super::Estimate;

/// `ln Γ(x)` for x > 0 (Lanczos, g = 7, n = 9; ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // reflection
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Continued fraction of the regularised incomplete beta (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..500 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// Regularised incomplete beta `I_x(a, b)`.
fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Student-t CDF with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * inc_beta(df / 2.0, 0.5, x);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// Quantile `q` (0 < q < 1) of the Student-t distribution; `df = ∞` gives the normal.
pub fn student_t_quantile(q: f64, df: f64) -> f64 {
    assert!(q > 0.0 && q < 1.0 && df > 0.0, "student_t_quantile({q}, {df})");
    if q < 0.5 {
        return -student_t_quantile(1.0 - q, df);
    }
    if q == 0.5 {
        return 0.0;
    }
    // Bracket, then bisect: the CDF is monotone and this is not a hot path.
    let (mut lo, mut hi) = (0.0, 1.0);
    while student_t_cdf(hi, df) < q {
        lo = hi;
        hi *= 2.0;
        if hi > 1e12 {
            return hi;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < q {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-13 * hi {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The two-sided 95 % multiplier `t_{0.975, df}`.
pub fn t95(df: f64) -> f64 {
    if df.is_infinite() {
        return 1.959_963_984_540_054;
    }
    student_t_quantile(0.975, df)
}

/// Mean and sample variance (n − 1 denominator; NaN for n < 2).
pub fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Mean of `xs` with its 95 % Student-t half-width (NaN for fewer than two values).
pub fn mean_ci(xs: &[f64]) -> Estimate {
    let (mean, var) = mean_var(xs);
    if xs.len() < 2 {
        return Estimate::new(mean, f64::NAN);
    }
    let n = xs.len() as f64;
    Estimate::new(mean, t95(n - 1.0) * (var / n).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_printed_tables() {
        // Two-sided 95% values from standard t tables.
        for (df, want) in [(1.0, 12.706), (2.0, 4.303), (4.0, 2.776), (5.0, 2.571), (10.0, 2.228), (30.0, 2.042)] {
            assert!((t95(df) - want).abs() < 5e-4, "df {df}: {}", t95(df));
        }
        assert!((t95(1e7) - 1.95996).abs() < 1e-4);
        assert!((student_t_quantile(0.95, 3.0) - 2.353).abs() < 5e-4);
        assert!((student_t_quantile(0.025, 4.0) + 2.776).abs() < 5e-4);
        // df = 1 is the Cauchy distribution: quantile = tan(π (q − ½)).
        let q = 0.9;
        assert!((student_t_quantile(q, 1.0) - (std::f64::consts::PI * (q - 0.5)).tan()).abs() < 1e-9);
    }

    #[test]
    fn mean_ci_by_hand() {
        // 1..5: mean 3, s = √2.5, se = √0.5, t(4) = 2.776445 → 1.963243
        let e = mean_ci(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(e.value, 3.0);
        assert!((e.ci95 - 1.963_243).abs() < 1e-5, "{e:?}");
        assert!(mean_ci(&[4.0]).ci95.is_nan());
        assert!(mean_ci(&[]).value.is_nan());
    }
}
