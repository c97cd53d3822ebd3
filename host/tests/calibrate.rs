//! The sensor-characterisation estimators on synthetic series with known delay, window
//! and update period.

use cnnergy_host::calibrate::{
    change_times, energy_to_power, step_response, summarise_edges, update_period, StepEstimate,
};
use rand::{Rng, SeedableRng};

const MS: i64 = 1_000_000;

/// A sensor reporting the mean of a step (`lo` before `t0`, `hi` after) over the window
/// `[u − delay − window, u − delay]`, where `u` is its last update at or before the read
/// (`update` = 0: it updates continuously), plus Gaussian noise of `sigma`.
struct Sensor {
    t0: i64,
    lo: f64,
    hi: f64,
    delay: i64,
    window: i64,
    update: i64,
    phase: i64,
    sigma: f64,
}

impl Sensor {
    fn value(&self, t: i64, rng: &mut rand::rngs::StdRng) -> f64 {
        let u = if self.update == 0 { t } else { self.phase + (t - self.phase).div_euclid(self.update) * self.update };
        let f = ((u - self.delay - self.t0) as f64 / self.window as f64).clamp(0.0, 1.0);
        // Sum of 12 uniforms − 6: unit-variance, near-Gaussian noise.
        let n: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
        self.lo + (self.hi - self.lo) * f + self.sigma * n
    }

    /// Read every `every` ns over `[from, to)`.
    fn series(&self, from: i64, to: i64, every: i64, seed: u64) -> Vec<(i64, f64)> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..).map(|k| from + k * every).take_while(|&t| t < to).map(|t| (t, self.value(t, &mut rng))).collect()
    }
}

fn near(got: i64, want: i64, tol: i64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {:.2} ms, want {:.2} ± {:.2} ms",
        got as f64 / 1e6,
        want as f64 / 1e6,
        tol as f64 / 1e6
    );
}

fn est(s: &Sensor, rising: bool, seed: u64) -> StepEstimate {
    let series = s.series(s.t0 - 1000 * MS, s.t0 + 1000 * MS, MS, seed);
    step_response(&series, s.t0, rising, 1000 * MS, 1000 * MS).expect("a clear step")
}

#[test]
fn boxcar_delay_and_window_are_recovered() {
    for (delay, window) in [(30 * MS, 100 * MS), (0, 20 * MS), (5 * MS, 1000 * MS / 2)] {
        let s = Sensor { t0: 5000 * MS, lo: 100.0, hi: 200.0, delay, window, update: 0, phase: 0, sigma: 1.0 };
        let e = est(&s, true, 7);
        // Noise σ on a ramp of slope (hi − lo) / W blurs a crossing by σ / slope = 1 % of
        // W: allow 2 of those plus the 1 ms read period.
        let tol = 2 * MS + window / 50;
        // Ramp from t0 + D to t0 + D + W: crossings at D + 0.1 W, D + 0.5 W, D + 0.9 W.
        near(e.t10_ns, delay + window / 10, tol, "t10");
        near(e.t50_ns, delay + window / 2, tol, "t50");
        near(e.t90_ns, delay + window * 9 / 10, tol, "t90");
        near(e.rise_ns, window * 8 / 10, 2 * tol, "rise");
        near(e.window_ns, window, 2 * tol * 10 / 8, "window");
        near(e.delay_ns, delay, 2 * tol, "delay");
        assert!((e.before - 100.0).abs() < 1.0 && (e.after - 200.0).abs() < 1.0, "{e:?}");
    }
}

#[test]
fn falling_steps_are_measured_the_same_way() {
    let s = Sensor {
        t0: 2000 * MS,
        lo: 350.0,
        hi: 120.0,
        delay: 12 * MS,
        window: 60 * MS,
        update: 0,
        phase: 0,
        sigma: 2.0,
    };
    let e = est(&s, false, 3);
    assert!(!e.rising);
    near(e.delay_ns, 12 * MS, 3 * MS, "delay");
    near(e.window_ns, 60 * MS, 5 * MS, "window");
}

#[test]
fn update_grid_adds_up_to_one_period_of_visible_delay() {
    // W = 100 ms, updates every 20 ms: 0.8 W is 4 updates, so the visible rise is exactly
    // 80 ms and only the delay moves, uniformly in [0, 20) ms with the phase: mean 10 ms.
    let mut delays = Vec::new();
    for phase_ms in 0..20 {
        let s = Sensor {
            t0: 3000 * MS + 300_000,
            lo: 50.0,
            hi: 400.0,
            delay: 0,
            window: 100 * MS,
            update: 20 * MS,
            phase: phase_ms * MS,
            sigma: 0.5,
        };
        let e = est(&s, true, phase_ms as u64);
        near(e.rise_ns, 80 * MS, 2 * MS, "rise");
        near(e.window_ns, 100 * MS, 3 * MS, "window");
        assert!(e.delay_ns >= -2 * MS && e.delay_ns <= 22 * MS, "{e:?}");
        delays.push(e.delay_ns);
    }
    let mean = delays.iter().sum::<i64>() / delays.len() as i64;
    near(mean, 10 * MS, 2 * MS, "mean delay over phases");
    let s = summarise_edges(
        &delays.iter().map(|&d| StepEstimate { delay_ns: d, ..est_template() }).collect::<Vec<_>>(),
        true,
    )
    .unwrap();
    assert_eq!(s.edges, 20);
    assert!(s.delay_ns >= 9 * MS && s.delay_ns <= 11 * MS, "median of 0..20 ms in 1 ms steps: {s:?}");
    assert!(summarise_edges(&[est_template()], false).is_none());
}

fn est_template() -> StepEstimate {
    StepEstimate {
        rising: true,
        before: 0.0,
        after: 1.0,
        t10_ns: 0,
        t50_ns: 0,
        t90_ns: 0,
        rise_ns: 0,
        window_ns: 0,
        delay_ns: 0,
    }
}

#[test]
fn no_step_or_the_wrong_direction_gives_nothing() {
    let flat =
        Sensor { t0: 1000 * MS, lo: 100.0, hi: 100.5, delay: 0, window: 10 * MS, update: 0, phase: 0, sigma: 1.0 };
    let series = flat.series(0, 2000 * MS, MS, 1);
    assert!(step_response(&series, 1000 * MS, true, 500 * MS, 500 * MS).is_none(), "0.5 W under 1 W noise");
    let up = Sensor { hi: 300.0, ..flat };
    let series = up.series(0, 2000 * MS, MS, 1);
    assert!(step_response(&series, 1000 * MS, false, 500 * MS, 500 * MS).is_none());
    assert!(step_response(&series, 1000 * MS, true, 500 * MS, 500 * MS).is_some());
    // No samples before the step.
    assert!(step_response(&series, 0, true, 500 * MS, 500 * MS).is_none());
}

#[test]
fn update_period_is_the_median_interval_between_changes() {
    // Value changes every 20 ms (at 3.5 + 20 k ms), read every 1 ms.
    let series: Vec<(i64, f64)> =
        (0..2000).map(|k| (k * MS, ((k * MS - 3_500_000).div_euclid(20 * MS)) as f64)).collect();
    let ch = change_times(&series);
    assert_eq!(ch[0], 4 * MS);
    assert_eq!(ch[1], 24 * MS);
    let p = update_period(&series, &[(0, 2000 * MS)]).unwrap();
    assert_eq!((p.median_ns, p.p10_ns, p.p90_ns), (20 * MS, 20 * MS, 20 * MS));
    assert_eq!(p.intervals, 99);
    // Only intervals inside the window count: changes at 4, 24, ..., 484 ms lie in
    // [0, 500) ms: 25 changes, 24 intervals.
    assert_eq!(update_period(&series, &[(0, 500 * MS)]).unwrap().intervals, 24);
    assert!(update_period(&series, &[(5 * MS, 20 * MS)]).is_none());
}

#[test]
fn energy_counter_becomes_power() {
    // 300 W: +30 000 mJ at 50 + 100 k ms; read every 4 ms from 1 ms. Each update is seen
    // by the first read after it; change time = midpoint of that read and the one before.
    let series: Vec<(i64, u64)> = (0..1000)
        .map(|j| {
            let t = MS + j * 4 * MS;
            let updates = if t < 50 * MS { 0 } else { (t - 50 * MS) / (100 * MS) + 1 };
            (t, 1_000_000 + updates as u64 * 30_000)
        })
        .collect();
    let p = energy_to_power(&series);
    // Updates at 50, 150, ... ms; 40 updates seen in 4 s, 39 intervals.
    assert_eq!(p.len(), 39);
    for (t, w) in &p {
        assert!((w - 300.0).abs() < 1e-9, "{w} W at {t}");
    }
    // First update (50 ms) is seen by the read at 53 ms (previous read 49 ms): 51 ms;
    // the first power point is at the second update: 151 ms.
    assert_eq!(p[0].0, 151 * MS);
}
