//! Observability: source ids, the numeric codes charted by the dashboard, the bounded ring of
//! samples per source and the bucketing of `system.observabilitySeries`.
//!
//! **Sources.** `systemd:flynn` is the daemon itself (the id the protocol document shows; its
//! logs come from the in-memory [`crate::LogBuffer`] however the daemon is run);
//! `systemd:<backend id>` is a local backend (a systemd user unit); `docker:<dependency id>` is
//! a docker-compose dependency.
//!
//! **stateCode** (0–3):
//!
//! | code | systemd ActiveState | docker state |
//! | --- | --- | --- |
//! | 3 running | `active`, `reloading`, `refreshing` | `running` |
//! | 2 starting or restarting | `activating`, `deactivating` | `restarting`, `removing` |
//! | 1 stopped or failed | `inactive`, `failed`, `maintenance` | `exited`, `dead`, `created`, `paused`, `missing` (no container) |
//! | 0 unknown | unit not found, systemctl unavailable, anything else | docker unavailable, anything else |
//!
//! The daemon is always 3.
//!
//! **healthCode** (0–2):
//!
//! | code | systemd | docker |
//! | --- | --- | --- |
//! | 2 healthy | `active` (`running` or another active sub-state) | health `healthy` |
//! | 1 unhealthy | `failed` | health `unhealthy` |
//! | 0 unknown / no check | everything else | `starting`, `none`, no container, unavailable |
//!
//! The daemon is always 2 (it is answering).
//!
//! **errorCount**: error-level lines since the previous sample of that source — the daemon's
//! from its log buffer; a backend's from `journalctl` (priority ≤ 3, or an error level in the
//! text); a dependency's from `docker logs` (an error level in the text). The first sample of a
//! source has 0. Off with `sample_error_counts = false` (then 0 for backends and dependencies).
//!
//! **restartCount**: restarts observed since sampling began (cumulative): a new main PID or
//! container id between two running samples, a running container whose uptime is shorter than
//! the time since the previous running sample, or a return to running after the source had
//! been seen running before. A restart that begins and ends between two samples without
//! changing the PID or container id is only seen through the uptime.
//!
//! **Bucketing**: buckets are aligned on multiples of `bucketSeconds` since the epoch; points
//! with `now - window < ts <= now` are grouped, and each bucket yields its last point, with
//! `errorCount` summed over the bucket (so no error is lost when several samples share one).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use flynn_protocol::types::ObservabilityPoint;

/// The daemon's own source id.
pub const DAEMON_SOURCE_ID: &str = "systemd:flynn";
/// Prefix of local backend sources.
pub const SYSTEMD_PREFIX: &str = "systemd:";
/// Prefix of docker dependency sources.
pub const DOCKER_PREFIX: &str = "docker:";

/// `stateCode` of a systemd ActiveState (see the module table); `loaded` is false for units
/// that are not installed.
pub fn systemd_state_code(loaded: bool, active_state: &str) -> u8 {
    if !loaded {
        return 0;
    }
    match active_state {
        "active" | "reloading" | "refreshing" => 3,
        "activating" | "deactivating" => 2,
        "inactive" | "failed" | "maintenance" => 1,
        _ => 0,
    }
}

/// `healthCode` of a systemd unit.
pub fn systemd_health_code(loaded: bool, active_state: &str) -> u8 {
    match (loaded, active_state) {
        (true, "active") => 2,
        (true, "failed") => 1,
        _ => 0,
    }
}

/// `stateCode` of a docker dependency state.
pub fn docker_state_code(state: &str) -> u8 {
    match state {
        "running" => 3,
        "restarting" | "removing" => 2,
        "exited" | "dead" | "created" | "paused" | "missing" => 1,
        _ => 0,
    }
}

/// `healthCode` of a docker health value.
pub fn docker_health_code(health: &str) -> u8 {
    match health {
        "healthy" => 2,
        "unhealthy" => 1,
        _ => 0,
    }
}

/// What one sample saw of a source, before restart detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Sample time (epoch ms).
    pub ts: u64,
    /// See the module table.
    pub state_code: u8,
    /// See the module table.
    pub health_code: u8,
    /// Error lines since the previous sample.
    pub error_count: u64,
    /// Main PID or container id while running: a change means a restart.
    pub instance: Option<String>,
    /// Lower and upper bound of the uptime in seconds, when known (docker `Up …`).
    pub uptime_secs: Option<(u64, u64)>,
}

#[derive(Debug, Default)]
struct Tracker {
    last_ts: Option<u64>,
    last_running: bool,
    last_instance: Option<String>,
    ever_running: bool,
    restarts: u64,
}

impl Tracker {
    /// Updates the restart count with this observation and returns the cumulative count.
    fn observe(&mut self, observation: &Observation) -> u64 {
        let running = observation.state_code == 3;
        if running {
            let restarted = if self.last_running {
                let new_instance = matches!(
                    (&self.last_instance, &observation.instance),
                    (Some(before), Some(now)) if before != now
                );
                let short_uptime = match (self.last_ts, observation.uptime_secs) {
                    // One second of slack: `docker compose ps` and the sample clock differ.
                    (Some(last), Some((_, upper))) => {
                        observation.ts.saturating_sub(last) / 1000 > upper.saturating_add(1)
                    }
                    _ => false,
                };
                new_instance || short_uptime
            } else {
                self.ever_running
            };
            if restarted {
                self.restarts += 1;
            }
            self.ever_running = true;
        }
        self.last_running = running;
        self.last_instance = observation.instance.clone();
        self.last_ts = Some(observation.ts);
        self.restarts
    }
}

#[derive(Debug, Default)]
struct SourceRing {
    points: VecDeque<ObservabilityPoint>,
    tracker: Tracker,
}

/// Samples of every source, each in a ring of bounded capacity.
#[derive(Debug)]
pub struct SeriesStore {
    capacity: usize,
    sources: Mutex<HashMap<String, SourceRing>>,
}

impl SeriesStore {
    /// A store keeping at most `capacity` points (at least one) per source.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// The most points kept per source.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records an observation of `source_id`, dropping the oldest point past capacity, and
    /// returns the point stored.
    pub fn record(&self, source_id: &str, observation: &Observation) -> ObservabilityPoint {
        let mut sources = self.lock();
        let ring = sources.entry(source_id.to_owned()).or_default();
        let restart_count = ring.tracker.observe(observation);
        let point = ObservabilityPoint {
            ts: observation.ts,
            state_code: u64::from(observation.state_code),
            health_code: u64::from(observation.health_code),
            error_count: observation.error_count,
            restart_count,
        };
        if ring.points.len() >= self.capacity {
            ring.points.pop_front();
        }
        ring.points.push_back(point.clone());
        point
    }

    /// Every point kept for a source, oldest first.
    pub fn points(&self, source_id: &str) -> Vec<ObservabilityPoint> {
        self.lock()
            .get(source_id)
            .map(|ring| ring.points.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Time of the latest sample of a source.
    pub fn last_sample_ts(&self, source_id: &str) -> Option<u64> {
        self.lock()
            .get(source_id)
            .and_then(|ring| ring.tracker.last_ts)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, SourceRing>> {
        // Every update leaves the map consistent, so a poisoned lock is still usable.
        self.sources.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Buckets `points` (oldest first) for a window ending at `now_ms`: see the module docs.
pub fn bucket_points(
    points: &[ObservabilityPoint],
    window_minutes: u32,
    bucket_seconds: u32,
    now_ms: u64,
) -> Vec<ObservabilityPoint> {
    let window_ms = u64::from(window_minutes) * 60_000;
    let bucket_ms = u64::from(bucket_seconds.max(1)) * 1000;
    let start = now_ms.saturating_sub(window_ms);
    let mut buckets: BTreeMap<u64, ObservabilityPoint> = BTreeMap::new();
    for point in points.iter().filter(|p| p.ts > start && p.ts <= now_ms) {
        let key = point.ts / bucket_ms;
        match buckets.get_mut(&key) {
            Some(existing) if existing.ts <= point.ts => {
                let errors = existing.error_count.saturating_add(point.error_count);
                *existing = ObservabilityPoint {
                    error_count: errors,
                    ..*point
                };
            }
            Some(existing) => {
                existing.error_count = existing.error_count.saturating_add(point.error_count);
            }
            None => {
                buckets.insert(key, point.clone());
            }
        }
    }
    buckets.into_values().collect()
}
