//! The last hour of each task's memory and CPU, for the task page's charts.
//!
//! The hub's sampler already reads every running container's counters
//! every few seconds for the overview; each reading is also folded into
//! its task's ring of [`POINTS`] points of [`STEP`] each (memory: the
//! highest in the step; CPU: the mean), so a chart costs the engines
//! nothing more. A ring belongs to the task (job, host, index), not to a
//! container: a chart runs on across a restart or a replace, and a gap
//! shows while nobody watched (the sampler only runs while the dashboard
//! has a viewer or a metrics lease).
//!
//! Memory is bounded: a point is 16 bytes, so a task's hour is at most
//! `POINTS * 16` = 5,760 bytes (plus the map's entry), whatever runs.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use drover_plan::TaskKey;
use serde::Serialize;

/// One point per this much time.
pub const STEP: Duration = Duration::from_secs(10);
/// Points kept per task: an hour.
pub const POINTS: usize = 360;
/// Bytes a task's ring holds at most.
pub const BYTES_PER_TASK: usize = POINTS * std::mem::size_of::<Point>();

/// One step of a task's usage.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    /// Unix seconds / STEP: which step.
    step: u32,
    /// The highest memory read in the step, KiB.
    memory_kib: u32,
    /// The sum of the CPU readings (percent of one CPU), and how many.
    cpu_sum: f32,
    readings: u16,
}

/// The rings of every task sampled lately.
#[derive(Default)]
pub struct History {
    rings: Mutex<HashMap<TaskKey, VecDeque<Point>>>,
}

/// A task's hour, as the page draws it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Series {
    /// Seconds per point.
    pub step: u64,
    /// `[unix seconds at the step's start, memory bytes, CPU percent]`,
    /// oldest first; a step nobody sampled is absent.
    pub points: Vec<(u64, u64, f64)>,
}

impl History {
    /// Folds one reading taken at `unix_secs` into `task`'s ring.
    pub fn record(&self, task: &TaskKey, unix_secs: u64, memory_bytes: u64, cpu_percent: f64) {
        let step = u32::try_from(unix_secs / STEP.as_secs()).unwrap_or(u32::MAX);
        let memory_kib = u32::try_from(memory_bytes / 1024).unwrap_or(u32::MAX);
        let cpu = cpu_percent as f32;
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let ring = rings
            .entry(task.clone())
            .or_insert_with(|| VecDeque::with_capacity(POINTS));
        match ring.back_mut() {
            Some(last) if last.step == step => {
                last.memory_kib = last.memory_kib.max(memory_kib);
                last.cpu_sum += cpu;
                last.readings = last.readings.saturating_add(1);
            }
            Some(last) if last.step > step => {}
            _ => {
                ring.push_back(Point {
                    step,
                    memory_kib,
                    cpu_sum: cpu,
                    readings: 1,
                });
            }
        }
        // An hour, by time: steps older than the newest minus the window go.
        let newest = ring.back().map_or(0, |p| p.step);
        let window = POINTS as u32;
        while ring
            .front()
            .is_some_and(|p| p.step + window <= newest || ring.len() > POINTS)
        {
            ring.pop_front();
        }
    }

    /// `task`'s last hour.
    pub fn series(&self, task: &TaskKey) -> Series {
        let rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let step = STEP.as_secs();
        Series {
            step,
            points: rings
                .get(task)
                .map(|ring| {
                    ring.iter()
                        .map(|p| {
                            let cpu = f64::from(p.cpu_sum) / f64::from(p.readings.max(1));
                            (
                                u64::from(p.step) * step,
                                u64::from(p.memory_kib) * 1024,
                                (cpu * 100.0).round() / 100.0,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The newest step of `task`'s ring: a chart needs sending again when it moves.
    pub fn newest(&self, task: &TaskKey) -> Option<(u32, u16)> {
        let rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings
            .get(task)
            .and_then(|r| r.back())
            .map(|p| (p.step, p.readings))
    }

    /// Forgets the tasks `keep` does not hold (gone from the spec and the hosts).
    pub fn retain(&self, keep: impl Fn(&TaskKey) -> bool) {
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings.retain(|k, _| keep(k));
    }

    /// Tasks held.
    pub fn len(&self) -> usize {
        self.rings.lock().map_or(0, |r| r.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_fold_into_ten_second_points_for_an_hour() {
        let history = History::default();
        let task = TaskKey::new("web", "h1", 0);
        let t0 = 1_800_000_000u64;
        history.record(&task, t0, 10 << 20, 10.0);
        history.record(&task, t0 + 2, 30 << 20, 30.0);
        history.record(&task, t0 + 4, 20 << 20, 20.0);
        history.record(&task, t0 + 12, 5 << 20, 1.0);
        let s = history.series(&task);
        assert_eq!(s.step, 10);
        assert_eq!(
            s.points,
            vec![(t0, 30 << 20, 20.0), (t0 + 10, 5 << 20, 1.0)]
        );
        // Two hours of readings every 2 s: an hour's points are kept, no more.
        for i in 0..3600u64 {
            history.record(&task, t0 + 20 + i * 2, 1 << 20, 5.0);
        }
        let s = history.series(&task);
        assert_eq!(s.points.len(), POINTS);
        let first = s.points.first().map_or(0, |p| p.0);
        let last = s.points.last().map_or(0, |p| p.0);
        assert!(last - first < 3600, "{first}..{last}");
        // A reading from before the newest point changes nothing.
        history.record(&task, t0, 999 << 20, 99.0);
        assert_eq!(history.series(&task).points.len(), POINTS);
        assert_eq!(BYTES_PER_TASK, 5760);
    }

    #[test]
    fn a_gap_ages_out_by_time_and_tasks_can_be_forgotten() {
        let history = History::default();
        let a = TaskKey::new("web", "h1", 0);
        let b = TaskKey::new("web", "h1", 1);
        history.record(&a, 1000, 1, 1.0);
        history.record(&a, 1000 + 3700, 1, 1.0);
        assert_eq!(history.series(&a).points.len(), 1);
        history.record(&b, 1000, 1, 1.0);
        history.retain(|k| k == &a);
        assert_eq!(history.len(), 1);
        assert!(history.series(&b).points.is_empty());
    }
}
