//! Prometheus metrics (`GET /metrics`, text exposition format).

use crate::console::timeline::Timeline;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Now, unix seconds (the timeline's clock).
fn now_secs() -> u64 {
    crate::store::now_ms() / 1000
}

/// The upstream-bytes counter of one remote
/// ([`Metrics::upstream_bytes_counter`]); counts into the timeline too.
pub struct UpstreamBytes {
    counter: Counter,
    timeline: Arc<RequestTimeline>,
}

impl UpstreamBytes {
    /// Count `n` bytes received.
    pub fn inc_by(&self, n: u64) {
        self.counter.inc_by(n);
        self.timeline.add(now_secs(), SERIES_FETCHED, n);
    }
}

pub use crate::cache::Outcome;

/// Every value of the `method` label ([`method_label`]).
const METHOD_LABELS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other",
];

/// The `method` label of a request: the standard methods by name, every
/// other (client-invented) method as `other`.
pub fn method_label(m: &http::Method) -> &'static str {
    use http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReqLabels {
    remote: String,
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RemoteLabel {
    remote: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    remote: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdapterLabel {
    adapter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    adapter: String,
    function: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginErrLabels {
    adapter: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The series of [`Metrics::timeline`]: requests by [`Outcome`] (at
/// [`Outcome::index`]), then [`SERIES_SERVED`] and [`SERIES_FETCHED`].
pub const TIMELINE_SERIES: usize = Outcome::ALL.len() + 2;
/// Body bytes sent to clients, in [`Metrics::timeline`].
pub const SERIES_SERVED: usize = Outcome::ALL.len();
/// Body bytes received from upstreams, in [`Metrics::timeline`].
pub const SERIES_FETCHED: usize = Outcome::ALL.len() + 1;

/// The last hour of requests and bytes, second by second, for the
/// operator console.
pub type RequestTimeline = Timeline<TIMELINE_SERIES>;

/// Calls, failures and time of one adapter since the start.
#[derive(Default)]
pub struct AdapterTotals {
    /// Calls made.
    pub calls: AtomicU64,
    /// Calls that failed (trap, timeout, refusal).
    pub errors: AtomicU64,
    /// Time spent in calls, nanoseconds.
    pub nanos: AtomicU64,
}

/// Every metric the gateway exports.
pub struct Metrics {
    /// The last hour, per second, in memory (the console's charts).
    pub timeline: Arc<RequestTimeline>,
    adapters: RwLock<HashMap<String, Arc<AdapterTotals>>>,
    registry: Registry,
    requests: Family<ReqLabels, Counter>,
    bytes_served: Family<RemoteLabel, Counter>,
    upstream_requests: Family<UpstreamLabels, Counter>,
    upstream_bytes: Family<RemoteLabel, Counter>,
    coalesced: Family<RemoteLabel, Counter>,
    stale: Family<RemoteLabel, Counter>,
    plugin_calls: Family<PluginLabels, Counter>,
    plugin_errors: Family<PluginErrLabels, Counter>,
    plugin_seconds: Family<PluginLabels, Histogram>,
    reloads: Family<ResultLabel, Counter>,
    store_bytes: Gauge<u64, AtomicU64>,
    memory_cache_bytes: Gauge<u64, AtomicU64>,
    plugin_calls_in_flight: Family<AdapterLabel, Gauge<u64, AtomicU64>>,
    plugin_calls_queued: Family<AdapterLabel, Gauge<u64, AtomicU64>>,
    evictions: Counter,
    orphans_reclaimed: Counter,
    orphan_bytes_reclaimed: Counter,
    negatives_expired: Counter,
    fills_inflight: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Create and register every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("artgate");
        let requests = Family::<ReqLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by remote, method and outcome",
            requests.clone(),
        );
        let bytes_served = Family::<RemoteLabel, Counter>::default();
        registry.register(
            "served_bytes",
            "Body bytes sent to clients",
            bytes_served.clone(),
        );
        let upstream_requests = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_requests",
            "Upstream requests by remote and status (or error)",
            upstream_requests.clone(),
        );
        let upstream_bytes = Family::<RemoteLabel, Counter>::default();
        registry.register(
            "upstream_bytes",
            "Body bytes received from upstreams",
            upstream_bytes.clone(),
        );
        let coalesced = Family::<RemoteLabel, Counter>::default();
        registry.register(
            "coalesced_waiters",
            "Requests that joined an in-flight fetch instead of starting one",
            coalesced.clone(),
        );
        let stale = Family::<RemoteLabel, Counter>::default();
        registry.register(
            "stale_served",
            "Stale entries served because the upstream failed",
            stale.clone(),
        );
        let plugin_calls = Family::<PluginLabels, Counter>::default();
        registry.register("plugin_calls", "Calls into adapters", plugin_calls.clone());
        let plugin_errors = Family::<PluginErrLabels, Counter>::default();
        registry.register(
            "plugin_errors",
            "Adapter call failures by kind",
            plugin_errors.clone(),
        );
        let plugin_seconds = Family::<PluginLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.2, 1.0,
            ])
        });
        registry.register(
            "plugin_call_seconds",
            "Time of adapter calls (instantiation included)",
            plugin_seconds.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "plugin_reloads",
            "Plugin loads from the plugin directory by result",
            reloads.clone(),
        );
        let store_bytes = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "store_bytes",
            "Bytes of blobs in the store",
            store_bytes.clone(),
        );
        let memory_cache_bytes = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "memory_cache_bytes",
            "Bytes of small blobs held in memory for hits (storage.memory_cache)",
            memory_cache_bytes.clone(),
        );
        let plugin_calls_in_flight = Family::<AdapterLabel, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "plugin_calls_in_flight",
            "Adapter calls holding a slot of their adapter's lane (max_concurrent_calls), at the scrape",
            plugin_calls_in_flight.clone(),
        );
        let plugin_calls_queued = Family::<AdapterLabel, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "plugin_calls_queued",
            "Adapter calls waiting for a slot of their adapter's lane (at most queue_timeout), at the scrape",
            plugin_calls_queued.clone(),
        );
        let evictions = Counter::default();
        registry.register(
            "store_evictions",
            "Blobs evicted to stay under storage.max_size",
            evictions.clone(),
        );
        let orphans_reclaimed = Counter::default();
        registry.register(
            "store_orphans_reclaimed",
            "Blob files no index entry knew (crash leftovers), deleted in the background",
            orphans_reclaimed.clone(),
        );
        let orphan_bytes_reclaimed = Counter::default();
        registry.register(
            "store_orphan_bytes_reclaimed",
            "Bytes of the orphan blob files deleted in the background",
            orphan_bytes_reclaimed.clone(),
        );
        let negatives_expired = Counter::default();
        registry.register(
            "store_negatives_removed",
            "Cached upstream 404s removed from the index (expired, or evicted under storage.max_size)",
            negatives_expired.clone(),
        );
        let fills_inflight = Gauge::default();
        registry.register(
            "fills_inflight",
            "Upstream fetches in progress",
            fills_inflight.clone(),
        );
        Metrics {
            timeline: Arc::default(),
            adapters: RwLock::default(),
            registry,
            requests,
            bytes_served,
            upstream_requests,
            upstream_bytes,
            coalesced,
            stale,
            plugin_calls,
            plugin_errors,
            plugin_seconds,
            reloads,
            store_bytes,
            memory_cache_bytes,
            plugin_calls_in_flight,
            plugin_calls_queued,
            evictions,
            orphans_reclaimed,
            orphan_bytes_reclaimed,
            negatives_expired,
            fills_inflight,
        }
    }

    /// Count a finished request. `remote` and `method` must come from
    /// closed sets (configured remotes, [`method_label`]): every distinct
    /// label value is a series kept for the life of the process.
    pub fn request(&self, remote: &str, method: &'static str, outcome: Outcome) {
        self.requests
            .get_or_create(&ReqLabels {
                remote: remote.to_owned(),
                method,
                outcome: outcome.as_str(),
            })
            .inc();
        self.timeline.add(now_secs(), outcome.index(), 1);
    }

    /// Requests on `remote` since the start, by outcome (at
    /// [`Outcome::index`]): read from the request counters without
    /// creating a series for a combination never seen.
    pub fn remote_outcomes(&self, remote: &str) -> [u64; Outcome::ALL.len()] {
        std::array::from_fn(|i| {
            METHOD_LABELS
                .iter()
                .filter_map(|method| {
                    self.requests
                        .get(&ReqLabels {
                            remote: remote.to_owned(),
                            method,
                            outcome: Outcome::ALL[i].as_str(),
                        })
                        .map(|c| c.get())
                })
                .sum()
        })
    }

    /// Count body bytes sent to a client.
    pub fn served_bytes(&self, remote: &str, n: u64) {
        self.timeline.add(now_secs(), SERIES_SERVED, n);
        self.bytes_served
            .get_or_create(&RemoteLabel {
                remote: remote.to_owned(),
            })
            .inc_by(n);
    }

    /// Count an upstream request by status (`200`, `304`, `error`, `timeout`).
    pub fn upstream_request(&self, remote: &str, status: &str) {
        self.upstream_requests
            .get_or_create(&UpstreamLabels {
                remote: remote.to_owned(),
                status: status.to_owned(),
            })
            .inc();
    }

    /// Count upstream body bytes.
    pub fn upstream_bytes(&self, remote: &str, n: u64) {
        self.upstream_bytes_counter(remote).inc_by(n);
    }

    /// The upstream-bytes counter of `remote`, for a loop that counts many
    /// chunks (one label lookup instead of one per chunk).
    pub fn upstream_bytes_counter(&self, remote: &str) -> UpstreamBytes {
        UpstreamBytes {
            counter: self
                .upstream_bytes
                .get_or_create(&RemoteLabel {
                    remote: remote.to_owned(),
                })
                .clone(),
            timeline: self.timeline.clone(),
        }
    }

    /// Calls, failures and time of every adapter that was called, by name.
    pub fn adapter_totals(&self) -> Vec<(String, Arc<AdapterTotals>)> {
        let map = self.adapters.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Blobs evicted since the start.
    pub fn evictions(&self) -> u64 {
        self.evictions.get()
    }

    /// Orphan blob files deleted since the start, and their bytes.
    pub fn orphans(&self) -> (u64, u64) {
        (
            self.orphans_reclaimed.get(),
            self.orphan_bytes_reclaimed.get(),
        )
    }

    /// The totals of `adapter`, made on first use.
    fn adapter(&self, adapter: &str) -> Arc<AdapterTotals> {
        let map = &self.adapters;
        if let Some(t) = map.read().unwrap_or_else(|p| p.into_inner()).get(adapter) {
            return t.clone();
        }
        let mut map = map.write().unwrap_or_else(|p| p.into_inner());
        map.entry(adapter.to_owned()).or_default().clone()
    }

    /// Count a request that joined an in-flight fill.
    pub fn coalesced(&self, remote: &str) {
        self.coalesced
            .get_or_create(&RemoteLabel {
                remote: remote.to_owned(),
            })
            .inc();
    }

    /// Count a stale serve.
    pub fn stale_served(&self, remote: &str) {
        self.stale
            .get_or_create(&RemoteLabel {
                remote: remote.to_owned(),
            })
            .inc();
    }

    /// Count an adapter call and its duration.
    pub fn plugin_call(&self, adapter: &str, function: &'static str, seconds: f64) {
        let l = PluginLabels {
            adapter: adapter.to_owned(),
            function,
        };
        self.plugin_calls.get_or_create(&l).inc();
        self.plugin_seconds.get_or_create(&l).observe(seconds);
        let t = self.adapter(adapter);
        t.calls.fetch_add(1, Ordering::Relaxed);
        t.nanos.fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    /// Count an adapter failure.
    pub fn plugin_error(&self, adapter: &str, kind: &'static str) {
        self.adapter(adapter).errors.fetch_add(1, Ordering::Relaxed);
        self.plugin_errors
            .get_or_create(&PluginErrLabels {
                adapter: adapter.to_owned(),
                kind,
            })
            .inc();
    }

    /// Count a plugin-dir load (`ok` or `error`).
    pub fn plugin_reload(&self, result: &'static str) {
        self.reloads.get_or_create(&ResultLabel { result }).inc();
    }

    /// Set the store size.
    pub fn set_store_bytes(&self, n: u64) {
        self.store_bytes.set(n);
    }

    /// Set adapter `adapter`'s calls in flight and waiting for a slot.
    pub fn set_plugin_calls(&self, adapter: &str, in_flight: usize, queued: usize) {
        let label = AdapterLabel {
            adapter: adapter.to_owned(),
        };
        self.plugin_calls_in_flight
            .get_or_create(&label)
            .set(in_flight as u64);
        self.plugin_calls_queued
            .get_or_create(&label)
            .set(queued as u64);
    }

    /// Set the bytes held by the memory cache.
    pub fn set_memory_cache_bytes(&self, n: u64) {
        self.memory_cache_bytes.set(n);
    }

    /// Count evicted blobs.
    pub fn evicted(&self, n: u64) {
        self.evictions.inc_by(n);
    }

    /// Count orphan blob files reclaimed, and their bytes.
    pub fn orphans_reclaimed(&self, blobs: u64, bytes: u64) {
        self.orphans_reclaimed.inc_by(blobs);
        self.orphan_bytes_reclaimed.inc_by(bytes);
    }

    /// Count negative entries (cached 404s) removed from the index.
    pub fn negatives_removed(&self, n: u64) {
        self.negatives_expired.inc_by(n);
    }

    /// Track in-flight fills (+1 / -1).
    pub fn fills_inflight(&self, delta: i64) {
        self.fills_inflight.inc_by(delta);
    }

    /// Export a cluster's shared tier (`artgate_shared_*`): its counters
    /// and whether it is degraded, read at each scrape.
    pub fn register_shared(&mut self, tier: Arc<crate::store::SharedTier>) {
        self.registry
            .register_collector(Box::new(SharedCollector(tier)));
    }

    /// Render the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The shared tier's counters as metrics ([`Metrics::register_shared`]).
struct SharedCollector(Arc<crate::store::SharedTier>);

impl std::fmt::Debug for SharedCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedCollector")
            .field(&self.0.status())
            .finish()
    }
}

impl prometheus_client::collector::Collector for SharedCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let s = &self.0.stats;
        let counters: [(&str, &str, &AtomicU64); 13] = [
            (
                "shared_record_hits",
                "Entries a local miss found in the bucket",
                &s.record_hits,
            ),
            (
                "shared_record_misses",
                "Local misses the bucket had no entry for either",
                &s.record_misses,
            ),
            (
                "shared_record_writes",
                "Index records written to the bucket",
                &s.record_writes,
            ),
            (
                "shared_blob_downloads",
                "Blobs copied from the bucket into the local tier",
                &s.blob_downloads,
            ),
            (
                "shared_blob_uploads",
                "Blobs written to the bucket",
                &s.blob_uploads,
            ),
            ("shared_errors", "Bucket requests that failed", &s.errors),
            (
                "shared_unshared",
                "Entries kept on this node only because the bucket failed",
                &s.unshared,
            ),
            (
                "shared_lease_takeovers",
                "Fetch leases taken over from a node that let them expire",
                &s.lease_takeovers,
            ),
            (
                "shared_peer_fills",
                "Fills streamed from the node fetching for the cluster",
                &s.peer_fills,
            ),
            (
                "shared_gc_rounds",
                "Collection rounds of the cluster's bucket this node ran",
                &s.gc_rounds,
            ),
            (
                "shared_gc_records_evicted",
                "Cached records the collection evicted beyond [shared] max_size",
                &s.gc_records_evicted,
            ),
            (
                "shared_gc_blobs_deleted",
                "Blobs the collection deleted from the bucket",
                &s.gc_blobs_deleted,
            ),
            (
                "shared_gc_bytes_freed",
                "Bytes of the blobs the collection deleted",
                &s.gc_bytes_freed,
            ),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value.load(Ordering::Relaxed));
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        {
            let mut hits = encoder.encode_descriptor(
                "shared_tier_hits",
                "Fresh hits by the tier that had them: memory, local (sled and files), shared (adopted from the bucket)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (tier, value) in [
                ("memory", &s.hits_memory),
                ("local", &s.hits_local),
                ("shared", &s.hits_shared),
            ] {
                let c = ConstCounter::new(value.load(Ordering::Relaxed));
                c.encode(hits.encode_family(&[("tier", tier)])?)?;
            }
        }
        let g = ConstGauge::new(i64::from(self.0.is_degraded()));
        g.encode(encoder.encode_descriptor(
            "shared_degraded",
            "1 while the last bucket request failed",
            None,
            g.metric_type(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remotes_outcomes_are_read_from_the_request_counters_without_new_series() {
        let m = Metrics::new();
        m.request("a", "GET", Outcome::Hit);
        m.request("a", "HEAD", Outcome::Hit);
        m.request("a", "PUT", Outcome::Miss);
        m.request("b", "GET", Outcome::Hit);
        let a = m.remote_outcomes("a");
        assert_eq!(a[Outcome::Hit.index()], 2);
        assert_eq!(a[Outcome::Miss.index()], 1);
        assert_eq!(a.iter().sum::<u64>(), 3);
        assert_eq!(m.remote_outcomes("c"), [0; Outcome::ALL.len()]);
        let text = m.render();
        assert!(!text.contains("remote=\"c\""), "{text}");
        assert_eq!(text.matches("remote=\"a\"").count(), 3, "{text}");
    }
}
