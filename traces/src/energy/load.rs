//! Reads the events the analyses need into time-sorted vectors (records in a trace
//! are grouped by producer, not globally ordered).

use super::EnergyError;
use crate::reader::Trace;
use crate::records::*;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Kernel {
    /// Index among the trace's kernel events.
    pub index: u64,
    pub layer: LayerId,
    pub iteration: u32,
    pub start_ns: u64,
    pub end_ns: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Sorted by start.
    pub kernels: Vec<Kernel>,
    /// (sensor, samples sorted by time).
    pub power: Vec<(String, Vec<(u64, f64)>)>,
    /// Energy counter reads (t, mJ), sorted by time.
    pub energy: Vec<(u64, u64)>,
    /// GPU die temperature samples (t, °C) of the first temperature sensor, by time.
    pub temperature: Vec<(u64, f64)>,
    /// SM clock samples (t, MHz), by time.
    pub sm_clock: Vec<(u64, f64)>,
    /// Clock-event (throttle) reason samples (t, bits), by time.
    pub throttle: Vec<(u64, u64)>,
    /// Sorted by time.
    pub markers: Vec<Marker>,
    /// Kernel launches in trace order (replay planner needs configs).
    pub launches: Vec<KernelLaunch>,
    pub damaged: bool,
}

impl Loaded {
    pub fn read(trace: &Trace<'_>) -> Result<Loaded, EnergyError> {
        let mut l = Loaded::default();
        let mut sensors: Vec<(StrId, Vec<(u64, f64)>)> = Vec::new();
        let mut index = 0u64;
        let mut temp_sensor = None;
        for ev in trace.events() {
            let ev = match ev {
                Ok(e) => e,
                Err(_) => {
                    // Damage: analyse what was intact, callers warn.
                    l.damaged = true;
                    break;
                }
            };
            match ev {
                Event::Kernel(k) => {
                    l.kernels.push(Kernel {
                        index,
                        layer: k.launch.layer,
                        iteration: k.iteration,
                        start_ns: k.start_ns,
                        end_ns: k.start_ns.saturating_add(k.duration_ns),
                    });
                    l.launches.push(k.launch);
                    index += 1;
                }
                Event::Power(p) => {
                    let v = (p.t_ns, p.power_mw as f64 / 1e3);
                    match sensors.iter_mut().find(|(s, _)| *s == p.sensor) {
                        Some((_, xs)) => xs.push(v),
                        None => sensors.push((p.sensor, vec![v])),
                    }
                }
                Event::Energy(e) => l.energy.push((e.t_ns, e.energy_mj)),
                Event::Clocks(c) => l.sm_clock.push((c.t_ns, c.sm_mhz as f64)),
                Event::Throttle(t) => l.throttle.push((t.t_ns, t.reasons)),
                Event::Temperature(t) if *temp_sensor.get_or_insert(t.sensor) == t.sensor => {
                    l.temperature.push((t.t_ns, t.temp_c as f64))
                }
                Event::Marker(m) => l.markers.push(m),
                _ => {}
            }
        }
        l.kernels.sort_by_key(|k| (k.start_ns, k.index));
        for (id, mut xs) in sensors {
            xs.sort_by_key(|x| x.0);
            xs.dedup_by_key(|x| x.0);
            l.power.push((trace.string(id).unwrap_or("?").to_string(), xs));
        }
        l.energy.sort_by_key(|x| x.0);
        l.temperature.sort_by_key(|x| x.0);
        l.sm_clock.sort_by_key(|x| x.0);
        l.throttle.sort_by_key(|x| x.0);
        l.markers.sort_by_key(|m| m.t_ns);
        Ok(l)
    }

    pub fn sensor(&self, name: &str) -> Option<&[(u64, f64)]> {
        self.power.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// `[begin, end]` of the first occurrence of phase `name` (by marker), if any.
    pub fn phase_span(&self, trace: &Trace<'_>, name: &str) -> Option<(u64, u64)> {
        let mut begin = None;
        for m in &self.markers {
            match m.kind {
                MarkerKind::PhaseBegin { phase, .. } if trace.string(phase) == Some(name) && begin.is_none() => {
                    begin = Some(m.t_ns)
                }
                MarkerKind::PhaseEnd { phase, .. } if trace.string(phase) == Some(name) => {
                    if let Some(b) = begin {
                        return Some((b, m.t_ns));
                    }
                }
                _ => {}
            }
        }
        begin.map(|b| (b, u64::MAX))
    }

    /// Energy counter update edges: (estimated edge time, counter value after it).
    /// The edge lies between the last read of the old value and the first read of
    /// the new one; we take the midpoint, shifted back by the counter's delay.
    pub fn counter_edges(&self, delay_ns: i64) -> Vec<(u64, u64)> {
        let mut edges = Vec::new();
        for w in self.energy.windows(2) {
            let ((t0, e0), (t1, e1)) = (w[0], w[1]);
            if e1 != e0 {
                let mid = t0 + (t1 - t0) / 2;
                edges.push(((mid as i64 - delay_ns).max(0) as u64, e1));
            }
        }
        edges
    }
}
