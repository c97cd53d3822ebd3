//! One timeline: every record lands on the trace clock.
//!
//! Kernel activity records carry CUPTI timestamps (`cuptiGetTimestamp`, ns); NVML's
//! sample buffer carries µs of CLOCK_REALTIME, and the sampler stamps its other reads
//! with CLOCK_REALTIME. So the one thing to measure is the offset between the host
//! realtime clock and the trace clock: many bracketed reads (realtime before, trace,
//! realtime after). Each bracket bounds the offset to an interval; the intersection of
//! the tightest brackets is the estimate, its half-width the residual. Measured at start
//! (trace header) and at end ([`ClockSync`] event; drift = end − start).
//!
//! The arithmetic ([`fit`]) is separate from the clock reads ([`ClockPair`]) so tests
//! inject fake clocks with a known offset and jitter.

use std::time::{SystemTime, UNIX_EPOCH};

use cnnergy_traces::records::{ClockSync, Timebase as TraceTimebase};
use serde::Serialize;

use crate::libs::{self, Lib};

/// Two clocks read one after the other.
pub trait ClockPair {
    /// CLOCK_REALTIME, ns since the Unix epoch.
    fn realtime_ns(&mut self) -> u64;
    /// The trace clock, ns.
    fn trace_ns(&mut self) -> Result<u64, String>;
}

/// Host realtime now (CLOCK_REALTIME via the vDSO, ~20 ns).
pub fn realtime_now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// One bracketed read: realtime before, trace clock, realtime after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bracket {
    pub before: u64,
    pub trace: u64,
    pub after: u64,
}

impl Bracket {
    pub fn width(&self) -> u64 {
        self.after - self.before
    }
    /// The interval `[lo, hi]` that holds `trace − realtime` if the trace read happened
    /// between the two realtime reads.
    fn bounds(&self) -> (i128, i128) {
        (self.trace as i128 - self.after as i128, self.trace as i128 - self.before as i128)
    }
}

/// The mapping `trace = realtime + offset_ns`, good to ±`residual_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SyncFit {
    pub offset_ns: i64,
    pub residual_ns: u64,
    /// Midpoint of the tightest bracket (realtime ns) and the trace reading inside it:
    /// where the fit was taken.
    pub realtime_ns: u64,
    pub trace_ns: u64,
    /// Brackets that went into the estimate (the tightest `k`).
    pub used: usize,
    /// Whether the tightest brackets disagreed (empty intersection): the clocks drifted
    /// or stepped during the measurement; the residual then includes the disagreement.
    pub inconsistent: bool,
}

/// Estimates the offset from brackets: the intersection of the bounds of the `k`
/// tightest brackets (each holds the true offset when the clocks are steady). Brackets
/// whose realtime went backwards are ignored. `None` when no bracket is usable.
pub fn fit(brackets: &[Bracket], k: usize) -> Option<SyncFit> {
    let mut ok: Vec<Bracket> = brackets.iter().copied().filter(|b| b.after >= b.before).collect();
    if ok.is_empty() {
        return None;
    }
    ok.sort_by_key(|b| b.width());
    let best = &ok[..k.clamp(1, ok.len())];
    let lo = best.iter().map(|b| b.bounds().0).max()?;
    let hi = best.iter().map(|b| b.bounds().1).min()?;
    let tight = best[0];
    let (offset, residual, inconsistent) = if lo <= hi {
        // Round the midpoint down and the half-width up so the interval stays covered.
        ((lo + hi).div_euclid(2), (hi - lo + 1) / 2, false)
    } else {
        // No common point: take the tightest bracket alone and widen its half-width by
        // the disagreement so the residual stays honest.
        let (l, h) = tight.bounds();
        ((l + h).div_euclid(2), (h - l + 1) / 2 + (lo - hi), true)
    };
    Some(SyncFit {
        offset_ns: offset.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        residual_ns: residual.clamp(0, u64::MAX as i128) as u64,
        realtime_ns: tight.before + tight.width() / 2,
        trace_ns: tight.trace,
        used: best.len(),
        inconsistent,
    })
}

/// Takes `n` brackets from `clocks` and fits the tightest `k`.
pub fn measure<C: ClockPair>(clocks: &mut C, n: usize, k: usize) -> Result<SyncFit, String> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let before = clocks.realtime_ns();
        let trace = clocks.trace_ns()?;
        let after = clocks.realtime_ns();
        v.push(Bracket { before, trace, after });
    }
    fit(&v, k).ok_or_else(|| "the realtime clock went backwards in every bracket".to_string())
}

/// Brackets per calibration and how many of the tightest are intersected.
pub const BRACKETS: usize = 500;
pub const BEST_K: usize = 8;

/// CUPTI's clock against CLOCK_REALTIME. libcupti must already be loaded.
pub struct CuptiClocks;

impl ClockPair for CuptiClocks {
    fn realtime_ns(&mut self) -> u64 {
        realtime_now_ns()
    }
    fn trace_ns(&mut self) -> Result<u64, String> {
        cnnergy_cupti::timestamp_ns().map_err(|e| e.to_string())
    }
}

/// Which clock the trace uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TraceClock {
    /// `cuptiGetTimestamp`, ns.
    Cupti,
    /// CLOCK_REALTIME, ns (when CUPTI is missing).
    Realtime,
}

impl TraceClock {
    pub fn name(self) -> &'static str {
        match self {
            TraceClock::Cupti => "cupti",
            TraceClock::Realtime => "realtime",
        }
    }
}

/// The mapping of realtime (and NVML µs) onto the trace clock, measured at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Timebase {
    pub clock: TraceClock,
    pub start: SyncFit,
}

impl Timebase {
    /// The trace clock is realtime itself: offset 0, exact.
    pub fn realtime() -> Timebase {
        let now = realtime_now_ns();
        Timebase {
            clock: TraceClock::Realtime,
            start: SyncFit {
                offset_ns: 0,
                residual_ns: 0,
                realtime_ns: now,
                trace_ns: now,
                used: 0,
                inconsistent: false,
            },
        }
    }

    pub fn from_fit(clock: TraceClock, start: SyncFit) -> Timebase {
        Timebase { clock, start }
    }

    /// Calibrates CUPTI against realtime; when libcupti is missing or does not answer,
    /// falls back to realtime and says why.
    pub fn measure() -> (Timebase, Option<String>) {
        let cupti =
            libs::load(Lib::Cupti).map_err(|e| e.to_string()).and_then(|_| measure(&mut CuptiClocks, BRACKETS, BEST_K));
        match cupti {
            Ok(fit) => (Timebase::from_fit(TraceClock::Cupti, fit), None),
            Err(why) => (Timebase::realtime(), Some(format!("trace clock is realtime: {why}"))),
        }
    }

    /// A fresh measurement of the same mapping (at the end of a run).
    pub fn remeasure(&self) -> Result<SyncFit, String> {
        match self.clock {
            TraceClock::Cupti => measure(&mut CuptiClocks, BRACKETS, BEST_K),
            TraceClock::Realtime => Ok(Timebase::realtime().start),
        }
    }

    /// Realtime ns → trace ns (saturating at the ends of `u64`).
    pub fn realtime_to_trace(&self, realtime_ns: u64) -> u64 {
        (realtime_ns as i128 + self.start.offset_ns as i128).clamp(0, u64::MAX as i128) as u64
    }

    /// NVML µs (CLOCK_REALTIME) → trace ns.
    pub fn nvml_us_to_trace(&self, us: u64) -> u64 {
        self.realtime_to_trace(us.saturating_mul(1000))
    }

    /// The trace header's record: `t0_ns` is the trace reading at realtime
    /// [`Timebase::start_unix_ns`].
    pub fn header(&self) -> TraceTimebase<'static> {
        TraceTimebase {
            clock: self.clock.name().into(),
            t0_ns: self.realtime_to_trace(self.start_unix_ns()),
            nvml_offset_ns: self.start.offset_ns,
            residual_ns: self.start.residual_ns,
        }
    }

    /// Wall time of the start measurement (the header's `start_unix_ns`).
    pub fn start_unix_ns(&self) -> u64 {
        self.start.realtime_ns
    }

    /// The end-of-run event for a later measurement `end`.
    pub fn clock_sync(&self, end: &SyncFit) -> ClockSync {
        ClockSync { t_ns: end.trace_ns, nvml_offset_ns: end.offset_ns, residual_ns: end.residual_ns }
    }

    /// How far the offset moved between start and `end` (trace clock ahead: positive).
    pub fn drift_ns(&self, end: &SyncFit) -> i64 {
        end.offset_ns.saturating_sub(self.start.offset_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Realtime advances in steps of 30–2000 ns per read; the trace clock is realtime +
    /// `offset` + `drift_ppm` · elapsed, read at a random point between its neighbours.
    struct FakeClocks {
        t: u64,
        offset: i64,
        drift_ppm: f64,
        t_start: u64,
        rng: rand::rngs::StdRng,
    }

    impl FakeClocks {
        fn new(offset: i64, drift_ppm: f64, seed: u64) -> Self {
            let t = 1_700_000_000_000_000_000;
            FakeClocks { t, offset, drift_ppm, t_start: t, rng: rand::rngs::StdRng::seed_from_u64(seed) }
        }
        fn true_offset_at(&self, t: u64) -> i64 {
            self.offset + ((t - self.t_start) as f64 * self.drift_ppm * 1e-6) as i64
        }
        fn step(&mut self) {
            // Mostly short steps, sometimes a preemption-sized one.
            self.t += if self.rng.random_bool(0.1) {
                self.rng.random_range(1000..20_000)
            } else {
                self.rng.random_range(30..300)
            };
        }
    }

    impl ClockPair for FakeClocks {
        fn realtime_ns(&mut self) -> u64 {
            self.step();
            self.t
        }
        fn trace_ns(&mut self) -> Result<u64, String> {
            self.step();
            Ok((self.t as i64 + self.true_offset_at(self.t)) as u64)
        }
    }

    #[test]
    fn known_offset_is_recovered_within_the_residual() {
        for (seed, offset) in [(1, 123_456_789i64), (2, -987_654_321), (3, 0), (4, 17)] {
            let mut c = FakeClocks::new(offset, 0.0, seed);
            let f = measure(&mut c, 300, 8).unwrap();
            assert!(!f.inconsistent);
            assert!((f.offset_ns - offset).unsigned_abs() <= f.residual_ns, "{f:?} vs {offset}");
            // Each step is >= 30 ns, so the tightest bracket is >= 60 ns wide; the
            // intersection must still be tight (well under the long steps).
            assert!(f.residual_ns <= 300, "{f:?}");
        }
    }

    #[test]
    fn hand_made_brackets() {
        // True offset 1000. Bracket A: realtime 0..100, trace read at realtime 40 → 1040:
        // offset in [940, 1040]. Bracket B: realtime 200..260, trace at 250 → 1250:
        // offset in [990, 1050]. Intersection [990, 1040] → 1015 ± 25.
        let a = Bracket { before: 0, trace: 1040, after: 100 };
        let b = Bracket { before: 200, trace: 1250, after: 260 };
        let f = fit(&[a, b], 2).unwrap();
        assert_eq!((f.offset_ns, f.residual_ns, f.inconsistent), (1015, 25, false));
        // The tightest (B) is where the fit was taken.
        assert_eq!((f.realtime_ns, f.trace_ns), (230, 1250));
        // k = 1: bracket B alone, [990, 1050] → 1020 ± 30.
        let f1 = fit(&[a, b], 1).unwrap();
        assert_eq!((f1.offset_ns, f1.residual_ns), (1020, 30));
        // A bracket whose realtime went backwards is ignored.
        let bad = Bracket { before: 500, trace: 0, after: 400 };
        assert_eq!(fit(&[a, b, bad], 3).unwrap(), f);
        assert_eq!(fit(&[bad], 3), None);
    }

    #[test]
    fn disagreeing_brackets_widen_the_residual() {
        // A: offset in [0, 10]; B: offset in [50, 60] (the clock stepped by 50 in between).
        let a = Bracket { before: 100, trace: 110, after: 110 };
        let b = Bracket { before: 1000, trace: 1060, after: 1010 };
        let f = fit(&[a, b], 2).unwrap();
        assert!(f.inconsistent);
        // Tightest is A (width 10, B also 10: stable sort keeps A first): 5 ± (5 + 40).
        assert_eq!((f.offset_ns, f.residual_ns), (5, 45));
    }

    #[test]
    fn drift_is_end_minus_start() {
        // 20 ppm over 1 s of fake time = 20 µs.
        let mut c = FakeClocks::new(5_000, 20.0, 9);
        let start = measure(&mut c, 200, 8).unwrap();
        c.t += 1_000_000_000;
        let end = measure(&mut c, 200, 8).unwrap();
        let tb = Timebase::from_fit(TraceClock::Cupti, start);
        let drift = tb.drift_ns(&end);
        let expected = c.true_offset_at(end.realtime_ns) - c.true_offset_at(start.realtime_ns);
        assert!((20_000 - 100..=20_000 + 100).contains(&expected), "{expected}");
        // Within one measurement (~1 ms of fake time) the offset itself moves by ~20 ns,
        // which the residuals do not cover: allow 100 ns for that.
        let tol = start.residual_ns + end.residual_ns + 100;
        assert!((drift - expected).unsigned_abs() <= tol, "{drift} vs {expected}");
        let sync = tb.clock_sync(&end);
        assert_eq!((sync.nvml_offset_ns, sync.residual_ns, sync.t_ns), (end.offset_ns, end.residual_ns, end.trace_ns));
    }

    #[test]
    fn conversions_and_header() {
        let fit = SyncFit {
            offset_ns: -1_000_000,
            residual_ns: 40,
            realtime_ns: 5_000_000_000,
            trace_ns: 4_999_000_000,
            used: 8,
            inconsistent: false,
        };
        let tb = Timebase::from_fit(TraceClock::Cupti, fit);
        assert_eq!(tb.realtime_to_trace(2_000_000), 1_000_000);
        assert_eq!(tb.realtime_to_trace(10), 0, "saturates instead of wrapping");
        assert_eq!(tb.nvml_us_to_trace(3_000), 2_000_000);
        let h = tb.header();
        assert_eq!(h.clock, "cupti");
        assert_eq!((h.t0_ns, h.nvml_offset_ns, h.residual_ns), (4_999_000_000, -1_000_000, 40));
        let rt = Timebase::realtime();
        assert_eq!(rt.header().clock, "realtime");
        assert_eq!(rt.realtime_to_trace(123), 123);
    }
}
