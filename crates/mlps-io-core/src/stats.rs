//! I/O statistics: byte/op counters, latency histograms (hdrhistogram, mergeable across threads
//! and, through [`StatsSnapshot`], across ranks), and a per-interval throughput series.
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::engine::{Completion, Op};

/// Latency histogram in nanoseconds (3 significant digits, 1 ns .. auto-resizing).
#[derive(Clone, Debug)]
pub struct LatencyHistogram(Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// Empty histogram.
    pub fn new() -> Self {
        let mut h =
            Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid"));
        h.auto(true);
        Self(h)
    }
    /// Record one latency.
    #[inline]
    pub fn record(&mut self, d: Duration) {
        let ns = (d.as_nanos() as u64).max(1);
        // `record` grows the (auto-resizing) histogram; `saturating_record` would clamp instead.
        if self.0.record(ns).is_err() {
            self.0.saturating_record(ns);
        }
    }
    /// Add another histogram's counts.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // With auto-resize on, add only fails on incompatible precision, which cannot happen here.
        let _ = self.0.add(&other.0);
    }
    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.0.len()
    }
    /// Mean in ns (0 when empty).
    pub fn mean_ns(&self) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.mean()
        }
    }
    /// Value at quantile `q` (0..=1) in ns.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        self.0.value_at_quantile(q)
    }
    /// Minimum in ns.
    pub fn min_ns(&self) -> u64 {
        self.0.min()
    }
    /// Maximum in ns.
    pub fn max_ns(&self) -> u64 {
        self.0.max()
    }
    /// Non-empty buckets as `(value_ns, count)` (a compact, serde-friendly wire form).
    pub fn to_buckets(&self) -> Vec<(u64, u64)> {
        self.0
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }
    /// Rebuild from [`Self::to_buckets`].
    pub fn from_buckets(b: &[(u64, u64)]) -> Self {
        let mut h = Self::new();
        for &(v, c) in b {
            let _ = h.0.record_n(v.max(1), c);
        }
        h
    }
}

/// Bytes and ops per fixed interval since `start`.
#[derive(Clone, Debug)]
pub struct ThroughputSeries {
    interval: Duration,
    start: Instant,
    /// Per interval: (read bytes, read ops, write bytes, write ops).
    buckets: Vec<[u64; 4]>,
}

impl ThroughputSeries {
    /// A series starting now.
    pub fn new(interval: Duration) -> Self {
        Self::starting_at(Instant::now(), interval)
    }
    /// A series starting at `start` (use the same start for series you will merge).
    pub fn starting_at(start: Instant, interval: Duration) -> Self {
        Self {
            interval: interval.max(Duration::from_millis(1)),
            start,
            buckets: Vec::new(),
        }
    }
    /// Interval length.
    pub fn interval(&self) -> Duration {
        self.interval
    }
    /// Start instant.
    pub fn start(&self) -> Instant {
        self.start
    }
    /// Add one op at time `at`.
    #[inline]
    pub fn record(&mut self, at: Instant, op: Op, bytes: u64) {
        let i = (at.saturating_duration_since(self.start).as_nanos() / self.interval.as_nanos())
            as usize;
        if i >= self.buckets.len() {
            self.buckets.resize(i + 1, [0; 4]);
        }
        let b = &mut self.buckets[i];
        match op {
            Op::Read => {
                b[0] += bytes;
                b[1] += 1;
            }
            Op::Write => {
                b[2] += bytes;
                b[3] += 1;
            }
        }
    }
    /// Add another series bucket by bucket (aligned on their own starts).
    pub fn merge(&mut self, other: &ThroughputSeries) {
        if other.buckets.len() > self.buckets.len() {
            self.buckets.resize(other.buckets.len(), [0; 4]);
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            for k in 0..4 {
                a[k] += b[k];
            }
        }
    }
    /// Raw buckets: (read bytes, read ops, write bytes, write ops) per interval.
    pub fn buckets(&self) -> &[[u64; 4]] {
        &self.buckets
    }
    /// Read+write bytes per second for each interval.
    pub fn bytes_per_sec(&self) -> Vec<f64> {
        let s = self.interval.as_secs_f64();
        self.buckets
            .iter()
            .map(|b| (b[0] + b[2]) as f64 / s)
            .collect()
    }
}

/// Counters, histograms and series of one worker (merge workers with [`Stats::merge`]).
#[derive(Clone, Debug)]
pub struct Stats {
    /// Bytes read.
    pub read_bytes: u64,
    /// Completed reads.
    pub read_ops: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Completed writes.
    pub write_ops: u64,
    /// Failed requests.
    pub errors: u64,
    /// Read latency.
    pub read_lat: LatencyHistogram,
    /// Write latency.
    pub write_lat: LatencyHistogram,
    /// Throughput per interval.
    pub series: ThroughputSeries,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

impl Stats {
    /// Empty stats with a series interval (default 1 s), starting now.
    pub fn new(interval: Duration) -> Self {
        Self::starting_at(Instant::now(), interval)
    }
    /// Empty stats whose series starts at `start`.
    pub fn starting_at(start: Instant, interval: Duration) -> Self {
        Self {
            read_bytes: 0,
            read_ops: 0,
            write_bytes: 0,
            write_ops: 0,
            errors: 0,
            read_lat: LatencyHistogram::new(),
            write_lat: LatencyHistogram::new(),
            series: ThroughputSeries::starting_at(start, interval),
        }
    }
    /// Record one op of `bytes` that took `latency`, finishing at `at`.
    #[inline]
    pub fn record_at(&mut self, at: Instant, op: Op, bytes: u64, latency: Duration) {
        match op {
            Op::Read => {
                self.read_bytes += bytes;
                self.read_ops += 1;
                self.read_lat.record(latency);
            }
            Op::Write => {
                self.write_bytes += bytes;
                self.write_ops += 1;
                self.write_lat.record(latency);
            }
        }
        self.series.record(at, op, bytes);
    }
    /// Record a completion (errors count in `errors` only).
    #[inline]
    pub fn record(&mut self, c: &Completion) {
        match &c.result {
            Ok(n) => self.record_at(Instant::now(), c.op, *n as u64, c.latency),
            Err(_) => self.errors += 1,
        }
    }
    /// Add another worker's stats.
    pub fn merge(&mut self, o: &Stats) {
        self.read_bytes += o.read_bytes;
        self.read_ops += o.read_ops;
        self.write_bytes += o.write_bytes;
        self.write_ops += o.write_ops;
        self.errors += o.errors;
        self.read_lat.merge(&o.read_lat);
        self.write_lat.merge(&o.write_lat);
        self.series.merge(&o.series);
    }
    /// Serializable form (to send to another rank or write to JSON).
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            read_bytes: self.read_bytes,
            read_ops: self.read_ops,
            write_bytes: self.write_bytes,
            write_ops: self.write_ops,
            errors: self.errors,
            read_lat_ns: self.read_lat.to_buckets(),
            write_lat_ns: self.write_lat.to_buckets(),
            interval_ns: self.series.interval.as_nanos() as u64,
            series: self.series.buckets.clone(),
        }
    }
    /// Rebuild from a snapshot (the series start is `start`).
    pub fn from_snapshot(s: &StatsSnapshot, start: Instant) -> Self {
        let mut series =
            ThroughputSeries::starting_at(start, Duration::from_nanos(s.interval_ns.max(1)));
        series.buckets = s.series.clone();
        Self {
            read_bytes: s.read_bytes,
            read_ops: s.read_ops,
            write_bytes: s.write_bytes,
            write_ops: s.write_ops,
            errors: s.errors,
            read_lat: LatencyHistogram::from_buckets(&s.read_lat_ns),
            write_lat: LatencyHistogram::from_buckets(&s.write_lat_ns),
            series,
        }
    }
}

/// Wire / JSON form of [`Stats`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    /// Bytes read.
    pub read_bytes: u64,
    /// Reads.
    pub read_ops: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Writes.
    pub write_ops: u64,
    /// Failed requests.
    pub errors: u64,
    /// Read latency histogram buckets `(ns, count)`.
    pub read_lat_ns: Vec<(u64, u64)>,
    /// Write latency histogram buckets `(ns, count)`.
    pub write_lat_ns: Vec<(u64, u64)>,
    /// Series interval in ns.
    pub interval_ns: u64,
    /// Series buckets: (read bytes, read ops, write bytes, write ops).
    pub series: Vec<[u64; 4]>,
}

fn clock(id: libc::clockid_t) -> Duration {
    // SAFETY: timespec is plain old data; all-zero is a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: ts is a valid out-pointer; the clock ids used here always exist on Linux.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time consumed by the calling thread (user + system), for CPU-seconds-per-GB figures
/// that do not depend on how busy the rest of the machine is.
pub fn thread_cpu_time() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time consumed by the whole process (all threads, user + system).
pub fn process_cpu_time() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}
