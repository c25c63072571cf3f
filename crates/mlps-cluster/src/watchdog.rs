//! Hang detection for jobs whose ranks are separate processes (issue #8).
//!
//! MPI notices a rank that dies, but not one that is alive and stuck (stopped by `SIGSTOP`,
//! frozen, or live-locked): the other ranks wait for it at the next collective forever. So every
//! rank process runs a [`Heartbeat`]: a thread that prints one [`Beat`] line a second on stdout,
//! which the launcher forwards to the process that waits on it. That process feeds the lines to a
//! [`RankWatch`], which applies two limits ([`WatchLimits`]):
//!
//! - **silence** (default 20 s): no beat at all from a rank. The beat comes from its own thread,
//!   independent of the workload, so a long I/O or compute step never silences it; only a process
//!   that is stopped, frozen, or cannot write its stdout does. This catches `SIGSTOP` in < 30 s.
//! - **progress** (default 300 s, `None` = off): the job-wide sum of the ranks' progress counters
//!   has not moved. A rank's counter is what its workload reports ([`Heartbeat::progress`]) plus
//!   the bytes its process read and wrote (`/proc/self/io` `rchar + wchar`, minus the beats' own
//!   bytes), so it moves during any I/O. Legitimate phases without I/O are compute sleeps (seconds),
//!   page-cache eviction, directory listing and the pause between checkpoints; the limit must exceed
//!   the longest of them. This catches a live-locked job whose processes still beat.
//!
//! A rank that has not beaten yet is given `startup` (default 120 s: its first beat follows
//! `MPI_Init`, which takes a while on large jobs) from the job start; a rank that says it is done
//! is no longer watched.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Prefix of a beat line. Found anywhere in a line, so launcher prefixes (`--tag-output`) are fine.
pub const BEAT_MARK: &str = "@@mlps-beat@@";

/// One heartbeat of one rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    pub rank: usize,
    pub host: String,
    pub pid: u32,
    /// Monotonic progress counter of the rank (workload progress plus I/O bytes).
    pub progress: u64,
    /// The rank finished its work (its last beat).
    pub done: bool,
}

impl Beat {
    /// The line a rank prints (without the newline).
    pub fn line(&self) -> String {
        format!(
            "{BEAT_MARK} {} {} {} {} {}",
            self.rank,
            self.pid,
            self.progress,
            if self.done { "done" } else { "run" },
            self.host
        )
    }

    /// Parses a beat out of a line of launcher output; `None` for any other line.
    pub fn parse(line: &str) -> Option<Beat> {
        let rest = &line[line.find(BEAT_MARK)? + BEAT_MARK.len()..];
        let mut f = rest.split_whitespace();
        let rank = f.next()?.parse().ok()?;
        let pid = f.next()?.parse().ok()?;
        let progress = f.next()?.parse().ok()?;
        let done = match f.next()? {
            "done" => true,
            "run" => false,
            _ => return None,
        };
        let host = f.next()?.to_string();
        Some(Beat {
            rank,
            host,
            pid,
            progress,
            done,
        })
    }
}

/// The limits of a [`RankWatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchLimits {
    /// A rank that has beaten before and then stays silent this long is hung.
    pub silence: Duration,
    /// A rank that has never beaten is hung this long after the job started.
    pub startup: Duration,
    /// The job is stuck when no rank's progress counter moved for this long (`None`: not checked).
    pub progress: Option<Duration>,
}

impl Default for WatchLimits {
    fn default() -> Self {
        WatchLimits {
            silence: Duration::from_secs(20),
            startup: Duration::from_secs(120),
            progress: Some(Duration::from_secs(300)),
        }
    }
}

/// Why a job was judged hung; names each rank concerned with its host when known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Hang {
    #[error(
        "rank {rank} on host {host} (pid {pid}) stopped responding: no heartbeat for {silent_s:.0} s (limit {limit_s:.0} s); the process is stopped or frozen (e.g. SIGSTOP, a debugger, or a host that froze)"
    )]
    Silent {
        rank: usize,
        host: String,
        pid: u32,
        silent_s: f64,
        limit_s: f64,
    },
    #[error(
        "rank {rank} never started: no heartbeat {limit_s:.0} s after the launch (the launcher could not start it, or its host is unreachable)"
    )]
    NeverStarted { rank: usize, limit_s: f64 },
    #[error(
        "no rank made progress for {stalled_s:.0} s (limit {limit_s:.0} s; no I/O and no workload step on any rank): {}",
        ranks.iter().map(|(r, h)| format!("rank {r} on host {h}")).collect::<Vec<_>>().join(", ")
    )]
    NoProgress {
        ranks: Vec<(usize, String)>,
        stalled_s: f64,
        limit_s: f64,
    },
}

#[derive(Debug, Clone)]
struct Seen {
    beat: Beat,
    at: Instant,
}

/// Tracks the beats of the `size` ranks of one job (see the module docs for the rules).
#[derive(Debug, Clone)]
pub struct RankWatch {
    size: usize,
    limits: WatchLimits,
    started: Instant,
    ranks: BTreeMap<usize, Seen>,
    progress_sum: u64,
    progress_at: Instant,
}

impl RankWatch {
    pub fn new(size: usize, limits: WatchLimits, now: Instant) -> RankWatch {
        RankWatch {
            size,
            limits,
            started: now,
            ranks: BTreeMap::new(),
            progress_sum: 0,
            progress_at: now,
        }
    }

    /// Records one beat received at `now`.
    pub fn observe(&mut self, beat: Beat, now: Instant) {
        if beat.rank >= self.size {
            return;
        }
        self.ranks.insert(beat.rank, Seen { beat, at: now });
        let sum = self
            .ranks
            .values()
            .fold(0u64, |s, r| s.wrapping_add(r.beat.progress));
        if sum != self.progress_sum {
            self.progress_sum = sum;
            self.progress_at = now;
        }
    }

    /// Number of ranks watched.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The host and pid a rank last reported.
    pub fn whereabouts(&self, rank: usize) -> Option<(&str, u32)> {
        self.ranks
            .get(&rank)
            .map(|s| (s.beat.host.as_str(), s.beat.pid))
    }

    /// The first limit the job exceeds at `now`, if any.
    pub fn check(&self, now: Instant) -> Option<Hang> {
        let since = |t: Instant| now.saturating_duration_since(t);
        for rank in 0..self.size {
            match self.ranks.get(&rank) {
                Some(s) if s.beat.done => {}
                Some(s) if since(s.at) > self.limits.silence => {
                    return Some(Hang::Silent {
                        rank,
                        host: s.beat.host.clone(),
                        pid: s.beat.pid,
                        silent_s: since(s.at).as_secs_f64(),
                        limit_s: self.limits.silence.as_secs_f64(),
                    });
                }
                Some(_) => {}
                None if since(self.started) > self.limits.startup => {
                    return Some(Hang::NeverStarted {
                        rank,
                        limit_s: self.limits.startup.as_secs_f64(),
                    });
                }
                None => {}
            }
        }
        let limit = self.limits.progress?;
        let running: Vec<(usize, String)> = self
            .ranks
            .iter()
            .filter(|(_, s)| !s.beat.done)
            .map(|(r, s)| (*r, s.beat.host.clone()))
            .collect();
        if running.is_empty() || since(self.progress_at) <= limit {
            return None;
        }
        Some(Hang::NoProgress {
            ranks: running,
            stalled_s: since(self.progress_at).as_secs_f64(),
            limit_s: limit.as_secs_f64(),
        })
    }
}

/// The heartbeat thread of one rank process. Dropping it (or [`Heartbeat::finish`]) stops the
/// thread after a last beat marked done.
pub struct Heartbeat {
    progress: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts beating every `every` on `out` (stdout in a rank process) as `rank` on `host`.
    pub fn start(
        rank: usize,
        host: String,
        every: Duration,
        mut out: Box<dyn Write + Send>,
    ) -> Heartbeat {
        let progress = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&progress), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("mlps-heartbeat".into())
            .spawn(move || {
                let pid = std::process::id();
                let mut own_bytes = 0u64;
                loop {
                    let done = s.load(Ordering::SeqCst);
                    let (io, read_len) = process_io();
                    let io = io.saturating_sub(own_bytes);
                    // Reading /proc/self/io is itself a read: count it as our own bytes too.
                    own_bytes += read_len;
                    let beat = Beat {
                        rank,
                        host: host.clone(),
                        pid,
                        progress: p.load(Ordering::Relaxed).wrapping_add(io),
                        done,
                    };
                    let line = format!("{}\n", beat.line());
                    // A closed stdout means the launcher is gone; the job ends anyway.
                    if out
                        .write_all(line.as_bytes())
                        .and_then(|_| out.flush())
                        .is_err()
                    {
                        return;
                    }
                    own_bytes += line.len() as u64;
                    if done {
                        return;
                    }
                    let until = Instant::now() + every;
                    while Instant::now() < until && !s.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50).min(every));
                    }
                }
            })
            .ok();
        Heartbeat {
            progress,
            stop,
            thread,
        }
    }

    /// The counter the workload bumps when it makes progress (steps, saves, loads).
    pub fn progress(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.progress)
    }

    /// Sends the last beat (marked done) and stops the thread.
    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// `rchar + wchar` of this process (`/proc/self/io`), 0 where unavailable.
pub fn process_io_bytes() -> u64 {
    process_io().0
}

/// `rchar + wchar` and the length of the text read to learn it.
fn process_io() -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string("/proc/self/io") else {
        return (0, 0);
    };
    let sum = text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k, "rchar" | "wchar").then(|| v.trim().parse::<u64>().ok())?
        })
        .fold(0u64, u64::wrapping_add);
    (sum, text.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(rank: usize, progress: u64, done: bool) -> Beat {
        Beat {
            rank,
            host: format!("node{rank}"),
            pid: 100 + rank as u32,
            progress,
            done,
        }
    }

    #[test]
    fn beat_lines_round_trip_and_survive_launcher_prefixes() {
        let b = beat(3, 42, false);
        assert_eq!(Beat::parse(&b.line()), Some(b.clone()));
        let tagged = format!("[1,3]<stdout>:{}", b.line());
        assert_eq!(Beat::parse(&tagged), Some(b));
        assert_eq!(Beat::parse("ordinary output"), None);
        assert_eq!(Beat::parse(&format!("{BEAT_MARK} 1 2")), None);
    }

    #[test]
    fn a_silent_rank_is_named_after_the_silence_limit_only() {
        let t0 = Instant::now();
        let limits = WatchLimits {
            silence: Duration::from_secs(20),
            startup: Duration::from_secs(60),
            progress: None,
        };
        let mut w = RankWatch::new(2, limits, t0);
        w.observe(beat(0, 1, false), t0);
        w.observe(beat(1, 1, false), t0);
        // Rank 0 keeps beating, rank 1 goes quiet.
        for s in 1..=20 {
            w.observe(beat(0, 1 + s, false), t0 + Duration::from_secs(s));
        }
        assert_eq!(w.check(t0 + Duration::from_secs(20)), None);
        w.observe(beat(0, 30, false), t0 + Duration::from_secs(21));
        let hang = w.check(t0 + Duration::from_secs(21));
        let text = hang.map(|h| h.to_string()).unwrap_or_default();
        assert!(
            text.starts_with("rank 1 on host node1 (pid 101) stopped responding"),
            "{text}"
        );
    }

    #[test]
    fn done_ranks_are_not_watched_and_missing_ranks_get_the_startup_limit() {
        let t0 = Instant::now();
        let mut w = RankWatch::new(2, WatchLimits::default(), t0);
        w.observe(beat(0, 5, true), t0);
        assert_eq!(w.check(t0 + Duration::from_secs(119)), None);
        assert!(matches!(
            w.check(t0 + Duration::from_secs(121)),
            Some(Hang::NeverStarted { rank: 1, .. })
        ));
    }

    #[test]
    fn progress_limit_fires_only_when_no_counter_moves() {
        let t0 = Instant::now();
        let limits = WatchLimits {
            silence: Duration::from_secs(20),
            startup: Duration::from_secs(60),
            progress: Some(Duration::from_secs(30)),
        };
        let mut w = RankWatch::new(2, limits, t0);
        // Both ranks beat every second; only rank 0 progresses until t = 10 s.
        for s in 0..=50u64 {
            let at = t0 + Duration::from_secs(s);
            w.observe(beat(0, s.min(10), false), at);
            w.observe(beat(1, 7, false), at);
            let hang = w.check(at);
            if s <= 40 {
                assert_eq!(hang, None, "t={s}");
            } else {
                let text = hang.map(|h| h.to_string()).unwrap_or_default();
                assert!(
                    text.contains("no rank made progress")
                        && text.contains("rank 0 on host node0, rank 1 on host node1"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn heartbeat_thread_beats_and_ends_with_done() {
        #[derive(Clone, Default)]
        struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                if let Ok(mut v) = self.0.lock() {
                    v.extend_from_slice(b);
                }
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let hb = Heartbeat::start(
            4,
            "h".into(),
            Duration::from_millis(20),
            Box::new(sink.clone()),
        );
        hb.progress().fetch_add(1000, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(120));
        hb.finish();
        let text = String::from_utf8(sink.0.lock().map(|v| v.clone()).unwrap_or_default())
            .unwrap_or_default();
        let beats: Vec<Beat> = text.lines().filter_map(Beat::parse).collect();
        assert!(beats.len() >= 3, "{text}");
        assert!(
            beats
                .iter()
                .all(|b| b.rank == 4 && b.pid == std::process::id())
        );
        assert!(beats.last().is_some_and(|b| b.done && b.progress >= 1000));
        assert_eq!(beats.iter().filter(|b| b.done).count(), 1);
    }
}
