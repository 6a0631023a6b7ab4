//! What the console shows, gathered from the running gateway into plain
//! serialisable values: the HTML pages render them and the JSON API
//! (`/api/v1/...`, `docs/console.md`) returns them as they are.

use super::chart;
use super::recent::Event;
use crate::cache::Outcome;
use crate::config::{RemoteConfig, RemoteMode};
use crate::metrics::{SERIES_FETCHED, SERIES_SERVED};
use crate::plugins::PluginStatus;
use crate::plugins::registry::Reload;
use crate::state::AppState;
use crate::store::{Entry, EntryClass, StoreError, now_ms};
use crate::upstream_health::RemoteHealth;
use serde::Serialize;
use std::sync::atomic::Ordering;

/// The span of the overview's charts.
pub const WINDOW_SECS: u64 = 3600;
/// Points per chart.
pub const BUCKETS: usize = 60;
/// Fills listed at most.
pub const MAX_FILLS: usize = 100;
/// Entries per browse page at most (`limit` is capped to this).
pub const MAX_PAGE: usize = 1000;
/// Entries per browse page unless `limit` says otherwise.
pub const DEFAULT_PAGE: usize = 100;
/// Entries counted at most on a remote's page.
pub const COUNT_LIMIT: u64 = 100_000;
/// Entries counted at most per remote in the list of remotes.
pub const LIST_COUNT_LIMIT: u64 = 10_000;

/// The overview: traffic of the last hour, upstreams, fills, adapters.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// The gateway's version.
    pub version: &'static str,
    /// Seconds since the gateway started.
    pub uptime_secs: u64,
    /// Requests per second over the last minute.
    pub rate_per_sec: f64,
    /// Totals of the last hour.
    pub last_hour: Totals,
    /// The last hour in [`BUCKETS`] buckets, oldest first.
    pub buckets: Vec<Bucket>,
    /// Seconds per bucket.
    pub bucket_secs: u64,
    /// Each remote's upstream health (pull-through remotes).
    pub upstreams: Vec<UpstreamRow>,
    /// Upstream fetches in progress, longest running first.
    pub fills: Vec<FillRow>,
    /// The adapters' state.
    pub adapters: AdapterSummary,
}

/// Requests and bytes over a span.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    /// Requests answered.
    pub requests: u64,
    /// Requests by how they were answered.
    pub by_outcome: Vec<OutcomeCount>,
    /// Fresh hits out of the requests a cache could answer (hits, misses,
    /// revalidations, stale answers, pass-throughs); none without any.
    pub hit_ratio: Option<f64>,
    /// Body bytes sent to clients.
    pub served_bytes: u64,
    /// Body bytes received from upstreams.
    pub fetched_bytes: u64,
    /// What the cache saved the upstreams: served minus fetched (zero when
    /// more was fetched than served).
    pub saved_bytes: u64,
}

/// Requests with one outcome.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeCount {
    /// `hit`, `miss`, `stale`, `revalidated`, `bypass`, `direct`, `hosted`
    /// or `error`.
    pub outcome: &'static str,
    /// How many.
    pub count: u64,
}

/// One bucket of the overview's charts.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    /// Requests per second in the bucket.
    pub rate_per_sec: f64,
    /// The bucket's hit ratio, as [`Totals::hit_ratio`].
    pub hit_ratio: Option<f64>,
    /// Body bytes sent to clients.
    pub served_bytes: u64,
    /// Body bytes received from upstreams.
    pub fetched_bytes: u64,
}

/// One remote's upstreams.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamRow {
    /// The remote.
    pub remote: String,
    /// Its upstream URLs.
    pub upstreams: Vec<String>,
    /// What the requests sent so far say; none before the first.
    pub health: Option<RemoteHealth>,
}

/// One upstream fetch in progress.
#[derive(Debug, Clone, Serialize)]
pub struct FillRow {
    /// The remote.
    pub remote: String,
    /// The entry being filled.
    pub key: String,
    /// What it is doing.
    pub phase: &'static str,
    /// Bytes received so far.
    pub bytes: u64,
    /// The full size, when the upstream said.
    pub expected: Option<u64>,
    /// `bytes` out of `expected`, in percent.
    pub percent: Option<f64>,
    /// Requests reading it now.
    pub waiters: usize,
    /// Milliseconds since it started.
    pub elapsed_ms: u64,
}

/// The adapters' state.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterSummary {
    /// Whether the first load of the adapters has finished.
    pub ready: bool,
    /// Adapters serving.
    pub active: usize,
    /// Adapter files that failed to load, with the error.
    pub failed: Vec<FailedAdapter>,
}

/// An adapter file that did not load.
#[derive(Debug, Clone, Serialize)]
pub struct FailedAdapter {
    /// Its name, or its file.
    pub name: String,
    /// Why.
    pub error: String,
}

/// A remote in the list.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteRow {
    /// Name.
    pub name: String,
    /// Package type (the adapter).
    pub package: String,
    /// `pull-through`, `hosted` or `virtual`.
    pub mode: &'static str,
    /// Upstream URLs (pull-through).
    pub upstreams: Vec<String>,
    /// Members (virtual).
    pub members: Vec<String>,
    /// Bytes of its entries.
    pub size_bytes: u64,
    /// Its entries, counted up to [`LIST_COUNT_LIMIT`] (then
    /// `entries_capped`).
    pub entries: u64,
    /// Whether it has more than `entries` entries.
    pub entries_capped: bool,
    /// Requests since the start.
    pub requests: u64,
    /// Hit ratio since the start, as [`Totals::hit_ratio`].
    pub hit_ratio: Option<f64>,
    /// Error answers since the start.
    pub errors: u64,
    /// Upstream failures since the start.
    pub upstream_errors: u64,
}

/// A remote's page.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteDetail {
    /// What the list shows.
    #[serde(flatten)]
    pub row: RemoteRow,
    /// Its effective configuration, secrets redacted (as `/config`); for
    /// admins only (as `/config`), `null` for others.
    pub config: serde_json::Value,
    /// Its upstream health.
    pub health: Option<RemoteHealth>,
    /// Its last misses and errors, newest first.
    pub recent: Vec<Event>,
}

/// One stored entry.
#[derive(Debug, Clone, Serialize)]
pub struct EntryRow {
    /// The key (for most formats, the path below the remote).
    pub key: String,
    /// Body size.
    pub size: u64,
    /// Status served (404 for a remembered upstream 404).
    pub status: u16,
    /// `immutable`, `mutable`, `not_found` or `hosted`.
    pub class: &'static str,
    /// sha256 of the body.
    pub digest: String,
    /// Content type served.
    pub content_type: Option<String>,
    /// Where it came from: `upstream`, `upstream 404` (a remembered
    /// absence) or `upload`.
    pub source: &'static str,
    /// When it was stored or last revalidated, unix milliseconds.
    pub stored_at_ms: u64,
    /// When it expires, unix milliseconds (mutable and negative entries).
    pub expires_at_ms: Option<u64>,
    /// Whether it is served without asking the upstream now.
    pub fresh: bool,
    /// Seconds until it expires (negative: expired that long ago).
    pub expires_in_secs: Option<i64>,
    /// Since when it stands in for a failing upstream, unix milliseconds.
    pub stale_since_ms: Option<u64>,
    /// Keys that must exist for it to be served.
    pub references: Vec<String>,
}

/// One page of a remote's entries.
#[derive(Debug, Clone, Serialize)]
pub struct EntriesPage {
    /// The remote.
    pub remote: String,
    /// The key prefix searched.
    pub prefix: String,
    /// The entries, in key order.
    pub entries: Vec<EntryRow>,
    /// Pass as `after` for the next page; none on the last page.
    pub next_after: Option<String>,
}

/// The plugins page.
#[derive(Debug, Clone, Serialize)]
pub struct PluginsView {
    /// The plugin directory.
    pub plugin_dir: String,
    /// Every adapter source with its calls.
    pub plugins: Vec<PluginRow>,
    /// Entries of the plugin directory that are not adapters, with why.
    pub ignored: serde_json::Value,
    /// The last loads from the plugin directory, newest first.
    pub history: Vec<Reload>,
}

/// An adapter with its calls.
#[derive(Debug, Clone, Serialize)]
pub struct PluginRow {
    /// What `/plugins` says about it.
    #[serde(flatten)]
    pub status: PluginStatus,
    /// Calls since the start.
    pub calls: u64,
    /// Failed calls since the start.
    pub errors: u64,
    /// Mean time of a call, milliseconds.
    pub mean_ms: Option<f64>,
}

/// The storage page.
#[derive(Debug, Clone, Serialize)]
pub struct StorageView {
    /// The storage directory.
    pub dir: String,
    /// Bytes of blobs (and negative entries) in the store.
    pub used_bytes: u64,
    /// `storage.max_size`.
    pub max_bytes: u64,
    /// `used_bytes` out of `max_bytes`, in percent.
    pub used_percent: f64,
    /// Bytes of small blobs held in memory.
    pub memory_cache_bytes: u64,
    /// `storage.memory_cache`.
    pub memory_cache_max: u64,
    /// Blobs evicted since the start.
    pub evictions: u64,
    /// Blobs that lost their last entry and wait for the next garbage
    /// collection (at most a minute).
    pub unreferenced_blobs: usize,
    /// Unreferenced blob files (crash leftovers) deleted since the start.
    pub orphans_reclaimed: u64,
    /// Their bytes.
    pub orphan_bytes_reclaimed: u64,
    /// The last `artgate fsck` report with its time (`at_ms`), if one ran.
    pub last_fsck: Option<serde_json::Value>,
    /// The shared tier: this version has none (one node, its own disk).
    pub shared_tier: &'static str,
}

/// Requests in counts by outcome (the series after them are bytes).
fn requests(by_outcome: &[u64]) -> u64 {
    by_outcome.iter().take(Outcome::ALL.len()).sum()
}

/// Hit ratio of counts by outcome ([`Totals::hit_ratio`]).
pub fn hit_ratio(by_outcome: &[u64]) -> Option<f64> {
    let at = |o: Outcome| by_outcome.get(o.index()).copied().unwrap_or(0);
    let hits = at(Outcome::Hit);
    let lookups = hits
        + at(Outcome::Miss)
        + at(Outcome::Revalidated)
        + at(Outcome::Stale)
        + at(Outcome::Bypass);
    (lookups > 0).then(|| hits as f64 / lookups as f64)
}

/// The remotes whose content a viewer may see (`read`, or
/// `anonymous_read`): fills and upstream errors name keys and URLs of a
/// remote, so the overview lists only these.
pub type Visible = std::collections::HashSet<String>;

/// [`Visible`] for `viewer`.
pub fn visible(state: &AppState, viewer: &super::access::Viewer<'_>) -> Visible {
    state
        .config
        .remotes
        .iter()
        .filter(|r| viewer.may(&state.config, r, crate::auth::Need::Read))
        .map(|r| r.name.clone())
        .collect()
}

/// The overview, with the fills and upstreams of the `visible` remotes.
pub async fn overview(state: &AppState, visible: &Visible) -> Overview {
    let now = now_ms() / 1000;
    let metrics = &state.engine.metrics;
    let totals = metrics.timeline.totals(now, WINDOW_SECS);
    let buckets = metrics.timeline.window(now, WINDOW_SECS, BUCKETS);
    let bucket_secs = super::timeline::bucket_seconds(WINDOW_SECS, BUCKETS);
    let last_minute = metrics.timeline.totals(now, 60);
    // Not waiting for the first load: the console answers at once after a
    // start, and says the adapters are still loading.
    let active = state.plugins.active();
    let failed = active
        .statuses()
        .iter()
        .filter(|s| s.status.starts_with("failed"))
        .map(|s| FailedAdapter {
            name: s.name.clone(),
            error: s.last_error.clone().unwrap_or_default(),
        })
        .collect();
    Overview {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.console.started.elapsed().as_secs(),
        rate_per_sec: requests(&last_minute) as f64 / 60.0,
        last_hour: Totals {
            requests: requests(&totals),
            by_outcome: Outcome::ALL
                .iter()
                .map(|o| OutcomeCount {
                    outcome: o.as_str(),
                    count: totals[o.index()],
                })
                .collect(),
            hit_ratio: hit_ratio(&totals),
            served_bytes: totals[SERIES_SERVED],
            fetched_bytes: totals[SERIES_FETCHED],
            saved_bytes: totals[SERIES_SERVED].saturating_sub(totals[SERIES_FETCHED]),
        },
        buckets: buckets
            .iter()
            .map(|b| Bucket {
                rate_per_sec: requests(b) as f64 / bucket_secs as f64,
                hit_ratio: hit_ratio(b),
                served_bytes: b[SERIES_SERVED],
                fetched_bytes: b[SERIES_FETCHED],
            })
            .collect(),
        bucket_secs,
        upstreams: state
            .config
            .remotes
            .iter()
            .filter(|r| r.mode == RemoteMode::PullThrough && visible.contains(&r.name))
            .map(|r| UpstreamRow {
                remote: r.name.clone(),
                upstreams: upstream_urls(r),
                health: state.engine.upstream.health.get(&r.name),
            })
            .collect(),
        fills: fills(state, visible),
        adapters: AdapterSummary {
            ready: state.plugins.is_ready(),
            active: active
                .statuses()
                .iter()
                .filter(|s| s.status == "active")
                .count(),
            failed,
        },
    }
}

/// The fills in progress of the `visible` remotes.
pub fn fills(state: &AppState, visible: &Visible) -> Vec<FillRow> {
    state
        .engine
        .fills
        .snapshot(MAX_FILLS)
        .into_iter()
        .filter(|(id, _)| visible.contains(id.remote()))
        .map(|(id, fill)| {
            let p = fill.progress();
            FillRow {
                remote: id.remote().to_owned(),
                key: id.key().to_owned(),
                phase: p.phase,
                bytes: p.bytes,
                expected: p.expected,
                percent: p
                    .expected
                    .filter(|e| *e > 0)
                    .map(|e| (p.bytes as f64 * 100.0 / e as f64).min(100.0)),
                waiters: p.waiters,
                elapsed_ms: p.elapsed.as_millis() as u64,
            }
        })
        .collect()
}

/// The charts of the overview, as inline SVG: requests per second with the
/// hit ratio, and bytes served and fetched per bucket.
pub fn charts(o: &Overview) -> (String, String) {
    let rate: Vec<f64> = o.buckets.iter().map(|b| b.rate_per_sec).collect();
    let served: Vec<f64> = o.buckets.iter().map(|b| b.served_bytes as f64).collect();
    let fetched: Vec<f64> = o.buckets.iter().map(|b| b.fetched_bytes as f64).collect();
    let requests = chart::line_chart(
        "Requests per second, last hour",
        "/s",
        &[chart::Series {
            label: "requests/s",
            class: "s-requests",
            values: &rate,
        }],
        640,
        200,
    );
    let bytes = chart::line_chart(
        &format!("Bytes per {} s, last hour", o.bucket_secs),
        "B",
        &[
            chart::Series {
                label: "served to clients",
                class: "s-served",
                values: &served,
            },
            chart::Series {
                label: "fetched from upstreams",
                class: "s-fetched",
                values: &fetched,
            },
        ],
        640,
        200,
    );
    (requests, bytes)
}

/// Every remote, in configuration order.
pub async fn remotes(state: &AppState) -> Result<Vec<RemoteRow>, StoreError> {
    let mut rows = Vec::new();
    for r in &state.config.remotes {
        rows.push(remote_row(state, r).await?);
    }
    Ok(rows)
}

async fn remote_row(state: &AppState, r: &RemoteConfig) -> Result<RemoteRow, StoreError> {
    let name = r.name.clone();
    let (size_bytes, entries) = state
        .engine
        .store
        .run(move |s| {
            Ok((
                s.meta.remote_size(&name)?,
                s.meta.count_entries(&name, "", LIST_COUNT_LIMIT + 1)?,
            ))
        })
        .await?;
    let counts = state.engine.metrics.remote_outcomes(&r.name);
    Ok(RemoteRow {
        name: r.name.clone(),
        package: r.package.clone(),
        mode: r.mode.as_str(),
        upstreams: upstream_urls(r),
        members: r.members.clone(),
        size_bytes,
        entries: entries.min(LIST_COUNT_LIMIT),
        entries_capped: entries > LIST_COUNT_LIMIT,
        requests: counts.iter().sum(),
        hit_ratio: hit_ratio(&counts),
        errors: counts[Outcome::Error.index()],
        upstream_errors: state
            .engine
            .upstream
            .health
            .get(&r.name)
            .map_or(0, |h| h.errors),
    })
}

/// One remote's page; its configuration only `with_config` (admins).
pub async fn remote(
    state: &AppState,
    r: &RemoteConfig,
    with_config: bool,
) -> Result<RemoteDetail, StoreError> {
    let mut row = remote_row(state, r).await?;
    if row.entries_capped {
        // The page counts further than the list.
        let name = r.name.clone();
        let entries = state
            .engine
            .store
            .run(move |s| s.meta.count_entries(&name, "", COUNT_LIMIT + 1))
            .await?;
        row.entries = entries.min(COUNT_LIMIT);
        row.entries_capped = entries > COUNT_LIMIT;
    }
    Ok(RemoteDetail {
        row,
        config: if with_config {
            r.redacted_json()
        } else {
            serde_json::Value::Null
        },
        health: state.engine.upstream.health.get(&r.name),
        recent: state.console.recent.of(&r.name),
    })
}

/// A page of `remote`'s entries whose key starts with `prefix`, after the
/// key `after`, at most `limit` ([`MAX_PAGE`]).
pub async fn entries(
    state: &AppState,
    remote: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<EntriesPage, StoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let (r, p, a) = (
        remote.to_owned(),
        prefix.to_owned(),
        after.map(str::to_owned),
    );
    // One more than asked tells whether there is a next page.
    let mut list = state
        .engine
        .store
        .run(move |s| s.meta.list_entries(&r, &p, a.as_deref(), limit + 1))
        .await?;
    let more = list.len() > limit;
    list.truncate(limit);
    let now = now_ms();
    let next_after = more.then(|| list.last().map(|(k, _)| k.clone())).flatten();
    Ok(EntriesPage {
        remote: remote.to_owned(),
        prefix: prefix.to_owned(),
        entries: list
            .into_iter()
            .map(|(key, e)| entry_row(key, &e, now))
            .collect(),
        next_after,
    })
}

fn entry_row(key: String, e: &Entry, now: u64) -> EntryRow {
    EntryRow {
        key,
        size: e.size,
        status: e.status,
        class: match e.class {
            EntryClass::Immutable => "immutable",
            EntryClass::Mutable => "mutable",
            EntryClass::NotFound => "not_found",
            EntryClass::Hosted => "hosted",
        },
        digest: e.blob.to_string(),
        content_type: e.content_type.clone(),
        source: match e.class {
            EntryClass::Hosted => "upload",
            EntryClass::NotFound => "upstream 404",
            _ => "upstream",
        },
        stored_at_ms: e.stored_at_ms,
        expires_at_ms: e.expires_at_ms,
        fresh: e.is_fresh(now),
        expires_in_secs: e.expires_at_ms.map(|t| {
            let ms = i128::from(t) - i128::from(now);
            i64::try_from(ms.div_euclid(1000)).unwrap_or(i64::MAX)
        }),
        stale_since_ms: e.stale_since_ms,
        references: e.references.clone(),
    }
}

/// The plugins page.
pub async fn plugins(state: &AppState) -> PluginsView {
    let active = state.plugins.ready_active().await;
    let totals = state.engine.metrics.adapter_totals();
    let plugins = active
        .statuses()
        .iter()
        .map(|s| {
            let t = totals.iter().find(|(n, _)| *n == s.name).map(|(_, t)| t);
            let calls = t.map_or(0, |t| t.calls.load(Ordering::Relaxed));
            let nanos = t.map_or(0, |t| t.nanos.load(Ordering::Relaxed));
            PluginRow {
                status: s.clone(),
                calls,
                errors: t.map_or(0, |t| t.errors.load(Ordering::Relaxed)),
                mean_ms: (calls > 0).then(|| nanos as f64 / calls as f64 / 1e6),
            }
        })
        .collect();
    PluginsView {
        plugin_dir: state.plugins.dir().display().to_string(),
        plugins,
        ignored: serde_json::to_value(active.ignored()).unwrap_or_default(),
        history: state.plugins.history(),
    }
}

/// The storage page.
pub async fn storage(state: &AppState) -> StorageView {
    let cfg = &state.config.storage;
    let used = state.engine.store.meta.total_size();
    let (orphans, orphan_bytes) = state.engine.metrics.orphans();
    let dir = cfg.dir.clone();
    let last_fsck = tokio::task::spawn_blocking(move || crate::store::fsck::load_last(&dir))
        .await
        .ok()
        .flatten();
    StorageView {
        dir: cfg.dir.display().to_string(),
        used_bytes: used,
        max_bytes: cfg.max_size,
        used_percent: if cfg.max_size == 0 {
            0.0
        } else {
            used as f64 * 100.0 / cfg.max_size as f64
        },
        memory_cache_bytes: state.engine.store.hot.weight(),
        memory_cache_max: cfg.memory_cache,
        evictions: state.engine.metrics.evictions(),
        unreferenced_blobs: state.engine.store.meta.unreferenced_pending(),
        orphans_reclaimed: orphans,
        orphan_bytes_reclaimed: orphan_bytes,
        last_fsck,
        shared_tier: "none: this gateway is one node with its own disk",
    }
}

fn upstream_urls(r: &RemoteConfig) -> Vec<String> {
    r.upstreams
        .iter()
        .map(|u| crate::upstream::redact_url(u.to_string().trim_end_matches('/')))
        .collect()
}
