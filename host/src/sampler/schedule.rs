//! When each sensor is read next: pure, clock-free, tested on a fake clock.
//!
//! Earliest deadline first, ties to the shorter period (the cheap fast sensors), then to
//! the order given. After a read, a sensor's next slot is the first one of its grid
//! (`first_due + j · period`) that has not passed; slots that passed without a read are
//! counted as missed, never made up: after a stall each sensor is read once and then
//! keeps its phase, so there is no burst of catch-up reads.

use super::Sensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    sensor: Sensor,
    /// 0 = continuous: due again as soon as the last read returns.
    period_ns: u64,
    next_due: u64,
    missed: u64,
}

/// Per-sensor periods and next-due times (ns on any monotonic clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    entries: Vec<Entry>,
}

impl Schedule {
    /// Every sensor is first due at `start_ns`.
    pub fn new(start_ns: u64, periods: &[(Sensor, u64)]) -> Schedule {
        Schedule {
            entries: periods
                .iter()
                .map(|&(sensor, period_ns)| Entry { sensor, period_ns, next_due: start_ns, missed: 0 })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn sensors(&self) -> impl Iterator<Item = Sensor> + '_ {
        self.entries.iter().map(|e| e.sensor)
    }

    /// The sensor to read next and when it is due.
    pub fn next(&self) -> Option<(Sensor, u64)> {
        self.entries.iter().min_by_key(|e| (e.next_due, e.period_ns)).map(|e| (e.sensor, e.next_due))
    }

    /// Records that `sensor`'s due read finished at `now_ns` and moves it to its next slot.
    pub fn done(&mut self, sensor: Sensor, now_ns: u64) {
        let Some(e) = self.entries.iter_mut().find(|e| e.sensor == sensor) else { return };
        if e.period_ns == 0 {
            e.next_due = now_ns;
            return;
        }
        let due = e.next_due;
        // Slots strictly before `now` after the one just served passed unread.
        let passed = if now_ns > due { (now_ns - due - 1) / e.period_ns } else { 0 };
        e.missed += passed;
        e.next_due = due + (passed + 1) * e.period_ns;
    }

    /// Stops reading `sensor` (e.g. the device does not support it).
    pub fn remove(&mut self, sensor: Sensor) {
        self.entries.retain(|e| e.sensor != sensor);
    }

    /// Slots of `sensor` that passed without a read.
    pub fn missed(&self, sensor: Sensor) -> u64 {
        self.entries.iter().find(|e| e.sensor == sensor).map_or(0, |e| e.missed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Runs `sched` on a fake clock until `end`: sleeps until due (never backwards),
    /// "reads" at a cost from `cost`, an optional stall. Returns (sensor, start) per read.
    fn simulate(
        sched: &mut Schedule,
        end: u64,
        cost: impl Fn(Sensor) -> u64,
        stall: Option<(u64, u64)>,
    ) -> Vec<(Sensor, u64)> {
        let mut now = 0;
        let mut reads = Vec::new();
        let mut stalled = false;
        while let Some((s, due)) = sched.next() {
            now = now.max(due);
            if let Some((at, len)) = stall {
                if !stalled && now >= at {
                    stalled = true;
                    now += len;
                }
            }
            if now >= end {
                break;
            }
            reads.push((s, now));
            now += cost(s);
            sched.done(s, now);
        }
        reads
    }

    fn starts(reads: &[(Sensor, u64)], s: Sensor) -> Vec<u64> {
        reads.iter().filter(|r| r.0 == s).map(|r| r.1).collect()
    }

    #[test]
    fn periods_are_respected() {
        let mut sch = Schedule::new(0, &[(Sensor::PowerInstant, 5 * MS), (Sensor::Clocks, 50 * MS)]);
        let r = simulate(&mut sch, 1000 * MS, |_| 10_000, None);
        let inst = starts(&r, Sensor::PowerInstant);
        let clk = starts(&r, Sensor::Clocks);
        assert_eq!(inst.len(), 200);
        assert_eq!(clk.len(), 20);
        // Every instant read starts on its grid, at most one clock read (10 µs) late.
        for (i, t) in inst.iter().enumerate() {
            let slot = i as u64 * 5 * MS;
            assert!(*t >= slot && *t <= slot + 10_000, "read {i} at {t}");
        }
        assert_eq!(sch.missed(Sensor::PowerInstant), 0);
    }

    #[test]
    fn slow_sensor_does_not_starve_fast_ones() {
        // Energy costs 3.9 ms every 10 ms; instant (5 µs) every 5 ms on the same thread.
        let mut sch = Schedule::new(0, &[(Sensor::Energy, 10 * MS), (Sensor::PowerInstant, 5 * MS)]);
        let cost = |s| if s == Sensor::Energy { 3_900_000 } else { 5_000 };
        let r = simulate(&mut sch, 1000 * MS, cost, None);
        let inst = starts(&r, Sensor::PowerInstant);
        assert_eq!(inst.len(), 200, "one instant read per 5 ms slot");
        assert_eq!(starts(&r, Sensor::Energy).len(), 100);
        // An instant read waits at most for one energy read in progress.
        for (i, t) in inst.iter().enumerate() {
            assert!(*t - i as u64 * 5 * MS <= 3_900_000 + 5_000, "read {i} at {t}");
        }
        assert_eq!(sch.missed(Sensor::PowerInstant), 0);
        assert_eq!(sch.missed(Sensor::Energy), 0);
    }

    #[test]
    fn ties_go_to_the_shorter_period() {
        let sch = Schedule::new(7, &[(Sensor::Energy, 10 * MS), (Sensor::PowerInstant, 5 * MS)]);
        assert_eq!(sch.next(), Some((Sensor::PowerInstant, 7)));
    }

    #[test]
    fn catch_up_after_a_stall_has_no_burst() {
        let mut sch = Schedule::new(0, &[(Sensor::PowerInstant, 5 * MS), (Sensor::Clocks, 50 * MS)]);
        // The thread stalls for 203 ms at t = 100 ms.
        let r = simulate(&mut sch, 1000 * MS, |_| 10_000, Some((100 * MS, 203 * MS)));
        let inst = starts(&r, Sensor::PowerInstant);
        // Reads at 0..=95 ms (20), then one at 303 ms (catch-up), then on the grid from 305.
        let after: Vec<u64> = inst.iter().copied().filter(|&t| t > 100 * MS).collect();
        assert_eq!(after[0], 303 * MS);
        assert!(after[1] >= 305 * MS && after[1] < 306 * MS, "{}", after[1]);
        // No two reads closer than one period apart apart from the catch-up one.
        for w in after[1..].windows(2) {
            assert!(w[1] - w[0] >= 5 * MS - 20_000, "{w:?}");
        }
        // Slots 100..=300 ms (41) passed unread except the one served late at 303 ms.
        assert_eq!(sch.missed(Sensor::PowerInstant), 40);
        assert_eq!(inst.len(), 20 + 1 + 139);
        // Clocks: slot 100 served at 303; 150, 200, 250, 300 missed.
        assert_eq!(sch.missed(Sensor::Clocks), 4);
    }

    #[test]
    fn continuous_sensor_runs_back_to_back_and_misses_nothing() {
        let mut sch = Schedule::new(0, &[(Sensor::Energy, 0)]);
        let r = simulate(&mut sch, 100 * MS, |_| 4 * MS, None);
        assert_eq!(r.len(), 25);
        assert_eq!(sch.missed(Sensor::Energy), 0);
    }

    #[test]
    fn removed_sensors_are_not_due() {
        let mut sch = Schedule::new(0, &[(Sensor::PowerSamples, MS), (Sensor::Clocks, 2 * MS)]);
        sch.remove(Sensor::PowerSamples);
        assert_eq!(sch.next(), Some((Sensor::Clocks, 0)));
        sch.remove(Sensor::Clocks);
        assert!(sch.is_empty());
        assert_eq!(sch.next(), None);
    }
}
