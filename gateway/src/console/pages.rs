//! The console's HTML pages: askama templates (`gateway/templates/console/`,
//! compiled into the binary and HTML-escaped by default) over the values
//! of [`super::data`], formatted for reading.

use super::chart::{format_bytes, format_rate};
use super::data::{self, EntriesPage, Overview, PluginsView, RemoteDetail, RemoteRow, StorageView};
use super::form::{encode, encode_path};
use crate::store::now_ms;
use askama::Template;

/// What every page shows around its content.
pub struct Chrome {
    /// The page's title.
    pub title: String,
    /// The navigation entry to mark as current.
    pub nav: &'static str,
    /// The token's name.
    pub user: String,
    /// Whether a token (or session) identified the viewer.
    pub logged_in: bool,
    /// Whether the viewer came with a session cookie (then a log-out
    /// button is shown).
    pub session: bool,
    /// Whether access control is off (a banner says so).
    pub open: bool,
    /// Whether actions are offered.
    pub admin: bool,
    /// The CSRF token forms carry.
    pub csrf: String,
    /// A one-line notice above the content (the result of an action).
    pub notice: Option<String>,
    /// The gateway's version.
    pub version: &'static str,
}

/// `/ui/`.
#[derive(Template)]
#[template(path = "console/overview.html")]
pub struct OverviewPage {
    /// Around the content.
    pub c: Chrome,
    /// The data.
    pub o: Overview,
    f: Figures,
    upstreams: Vec<UpstreamView>,
}

/// The overview's figures as the page shows them; also each update of its
/// live feed (`events.rs`), which `console.js` puts into the page.
#[derive(Debug, serde::Serialize)]
pub struct Figures {
    /// Requests per second over the last minute.
    pub rate: String,
    /// Hit ratio of the last hour.
    pub hit_ratio: String,
    /// Requests of the last hour.
    pub requests: u64,
    /// Bytes served, fetched and saved in the last hour.
    pub served: String,
    /// See `served`.
    pub fetched: String,
    /// See `served`.
    pub saved: String,
    /// Requests by outcome.
    pub outcomes: Vec<data::OutcomeCount>,
    /// The charts, as SVG (escaped by `chart.rs`).
    pub chart_requests: String,
    /// See `chart_requests`.
    pub chart_bytes: String,
    /// Fills in progress.
    pub fills: Vec<FillView>,
}

/// A fill in progress, as the page shows it.
#[derive(Debug, serde::Serialize)]
pub struct FillView {
    /// Remote.
    pub remote: String,
    /// Key.
    pub key: String,
    /// What it is doing.
    pub phase: &'static str,
    /// Percent done, when the size is known.
    pub percent: Option<f64>,
    /// Bytes so far (of the expected size).
    pub progress: String,
    /// Requests reading it.
    pub waiters: usize,
    /// Running time.
    pub elapsed: String,
}

impl Figures {
    /// The figures of `o`.
    pub fn of(o: &Overview) -> Figures {
        let (chart_requests, chart_bytes) = data::charts(o);
        let t = &o.last_hour;
        Figures {
            rate: format_rate(o.rate_per_sec),
            hit_ratio: ratio(t.hit_ratio),
            requests: t.requests,
            served: format_bytes(t.served_bytes),
            fetched: format_bytes(t.fetched_bytes),
            saved: format_bytes(t.saved_bytes),
            outcomes: t.by_outcome.clone(),
            chart_requests,
            chart_bytes,
            fills: o
                .fills
                .iter()
                .map(|f| FillView {
                    remote: f.remote.clone(),
                    key: f.key.clone(),
                    phase: f.phase,
                    percent: f.percent,
                    progress: match f.expected {
                        Some(e) => format!("{} / {}", format_bytes(f.bytes), format_bytes(e)),
                        None => format_bytes(f.bytes),
                    },
                    waiters: f.waiters,
                    elapsed: format!("{:.1} s", f.elapsed_ms as f64 / 1000.0),
                })
                .collect(),
        }
    }
}

struct UpstreamView {
    remote: String,
    upstreams: String,
    last_success: String,
    last_error: String,
    failing: bool,
    latency: String,
}

impl OverviewPage {
    /// The overview page of `o`.
    pub fn new(c: Chrome, o: Overview) -> Self {
        OverviewPage {
            f: Figures::of(&o),
            upstreams: o
                .upstreams
                .iter()
                .map(|u| {
                    let h = u.health.as_ref();
                    let ok = h.and_then(|h| h.last_success_ms);
                    let bad = h.and_then(|h| h.last_error_ms);
                    UpstreamView {
                        remote: u.remote.clone(),
                        upstreams: u.upstreams.join(", "),
                        last_success: ok.map_or("never".into(), ago),
                        last_error: match (bad, h.and_then(|h| h.last_error.as_deref())) {
                            (Some(at), Some(e)) => format!("{}: {e}", ago(at)),
                            _ => "none".into(),
                        },
                        failing: bad > ok,
                        latency: h
                            .and_then(|h| h.avg_latency_ms)
                            .map_or("-".into(), |ms| format!("{ms:.1} ms")),
                    }
                })
                .collect(),
            c,
            o,
        }
    }
}

/// `/ui/remotes`.
#[derive(Template)]
#[template(path = "console/remotes.html")]
pub struct RemotesPage {
    /// Around the content.
    pub c: Chrome,
    rows: Vec<RemoteView>,
}

struct RemoteView {
    name: String,
    package: String,
    mode: &'static str,
    targets: String,
    entries: String,
    size: String,
    requests: u64,
    hit_ratio: String,
    errors: u64,
}

impl RemotesPage {
    /// The list of `rows`.
    pub fn new(c: Chrome, rows: Vec<RemoteRow>) -> Self {
        let rows = rows
            .into_iter()
            .map(|r| RemoteView {
                targets: if r.members.is_empty() {
                    r.upstreams.join(", ")
                } else {
                    r.members.join(", ")
                },
                entries: format!("{}{}", r.entries, if r.entries_capped { "+" } else { "" }),
                size: format_bytes(r.size_bytes),
                hit_ratio: ratio(r.hit_ratio),
                errors: r.errors + r.upstream_errors,
                requests: r.requests,
                mode: r.mode,
                package: r.package,
                name: r.name,
            })
            .collect();
        RemotesPage { c, rows }
    }
}

/// `/ui/remotes/{r}`.
#[derive(Template)]
#[template(path = "console/remote.html")]
pub struct RemotePage {
    /// Around the content.
    pub c: Chrome,
    d: RemoteDetail,
    size: String,
    hit_ratio: String,
    recent: Vec<EventView>,
    config: String,
}

struct EventView {
    when: String,
    method: String,
    path: String,
    status: u16,
    outcome: &'static str,
    ms: String,
}

impl RemotePage {
    /// The page of `d`.
    pub fn new(c: Chrome, d: RemoteDetail) -> Self {
        RemotePage {
            size: format_bytes(d.row.size_bytes),
            hit_ratio: ratio(d.row.hit_ratio),
            recent: d
                .recent
                .iter()
                .map(|e| EventView {
                    when: ago(e.at_ms),
                    method: e.method.clone(),
                    path: e.path.clone(),
                    status: e.status,
                    outcome: e.outcome,
                    ms: format!("{:.1}", e.ms),
                })
                .collect(),
            config: serde_json::to_string_pretty(&d.config).unwrap_or_default(),
            c,
            d,
        }
    }
}

/// `/ui/remotes/{r}/browse`.
#[derive(Template)]
#[template(path = "console/browse.html")]
pub struct BrowsePage {
    /// Around the content.
    pub c: Chrome,
    remote: String,
    page: EntriesPage,
    rows: Vec<EntryView>,
    crumbs: Vec<(String, String)>,
    next: Option<String>,
    can_upload: bool,
    can_delete: bool,
    can_flush: bool,
}

struct EntryView {
    key: String,
    key_q: String,
    href: String,
    downloadable: bool,
    size: String,
    digest: String,
    digest_short: String,
    source: &'static str,
    stored: String,
    fresh: bool,
    freshness: String,
    references: usize,
}

/// What the viewer may do on a browse page.
pub struct BrowseRights {
    /// Upload files (a hosted remote and `write`).
    pub upload: bool,
    /// Delete files (a hosted remote and `delete`).
    pub delete: bool,
    /// Flush cached entries (a pull-through remote and an admin).
    pub flush: bool,
}

impl BrowsePage {
    /// The page of `page`.
    pub fn new(c: Chrome, page: EntriesPage, rights: BrowseRights) -> Self {
        let remote = page.remote.clone();
        let rows = page
            .entries
            .iter()
            .map(|e| EntryView {
                key: e.key.clone(),
                key_q: encode(&e.key),
                href: format!("/ui/remotes/{remote}/files/{}", encode_path(&e.key)),
                downloadable: e.status == 200,
                size: format_bytes(e.size),
                digest: e.digest.clone(),
                digest_short: e.digest.chars().take(19).collect(),
                source: e.source,
                stored: ago(e.stored_at_ms),
                fresh: e.fresh,
                freshness: match e.expires_in_secs {
                    None => "never expires".into(),
                    Some(s) if s >= 0 => format!("fresh for {}", span(s as u64)),
                    Some(s) => format!("expired {} ago", span(s.unsigned_abs())),
                },
                references: e.references.len(),
            })
            .collect();
        // Each `/`-separated part of the prefix links to its level.
        let mut crumbs = vec![(remote.clone(), format!("/ui/remotes/{remote}/browse"))];
        let mut acc = String::new();
        for part in page.prefix.split_inclusive('/') {
            acc.push_str(part);
            crumbs.push((
                part.trim_end_matches('/').to_owned(),
                format!("/ui/remotes/{remote}/browse?prefix={}", encode(&acc)),
            ));
        }
        let next = page.next_after.as_ref().map(|a| {
            format!(
                "/ui/remotes/{remote}/browse?prefix={}&after={}",
                encode(&page.prefix),
                encode(a)
            )
        });
        BrowsePage {
            c,
            remote,
            page,
            rows,
            crumbs,
            next,
            can_upload: rights.upload,
            can_delete: rights.delete,
            can_flush: rights.flush,
        }
    }
}

/// `/ui/plugins`.
#[derive(Template)]
#[template(path = "console/plugins.html")]
pub struct PluginsPage {
    /// Around the content.
    pub c: Chrome,
    v: PluginsView,
    rows: Vec<PluginView>,
    history: Vec<ReloadView>,
}

struct PluginView {
    name: String,
    version: String,
    status: &'static str,
    failed: bool,
    source: String,
    sha256: String,
    sha256_short: String,
    loaded_at: String,
    calls: u64,
    errors: u64,
    mean: String,
    last_error: String,
}

struct ReloadView {
    when: String,
    path: String,
    result: String,
    failed: bool,
}

impl PluginsPage {
    /// The page of `v`.
    pub fn new(c: Chrome, v: PluginsView) -> Self {
        let rows = v
            .plugins
            .iter()
            .map(|p| PluginView {
                name: p.status.name.clone(),
                version: p.status.version.clone().unwrap_or_default(),
                status: p.status.status,
                failed: p.status.status.starts_with("failed"),
                source: p.status.source.clone(),
                sha256: p.status.sha256.clone(),
                sha256_short: p.status.sha256.chars().take(12).collect(),
                loaded_at: p.status.loaded_at.clone().unwrap_or_default(),
                calls: p.calls,
                errors: p.errors,
                mean: p.mean_ms.map_or("-".into(), |ms| format!("{ms:.2} ms")),
                last_error: p.status.last_error.clone().unwrap_or_default(),
            })
            .collect();
        let history = v
            .history
            .iter()
            .map(|h| ReloadView {
                when: ago(h.at_ms),
                path: h.path.clone(),
                result: match (&h.adapter, &h.error) {
                    (_, Some(e)) => format!("refused: {e}"),
                    (Some(a), None) => format!("loaded {a}"),
                    (None, None) => "loaded".into(),
                },
                failed: h.error.is_some(),
            })
            .collect();
        PluginsPage {
            c,
            v,
            rows,
            history,
        }
    }
}

/// `/ui/storage`.
#[derive(Template)]
#[template(path = "console/storage.html")]
pub struct StoragePage {
    /// Around the content.
    pub c: Chrome,
    v: StorageView,
    used: String,
    max: String,
    percent: String,
    memory: String,
    memory_max: String,
    orphan_bytes: String,
    fsck: Option<String>,
    fsck_when: String,
    fsck_verdict: String,
}

impl StoragePage {
    /// The page of `v`.
    pub fn new(c: Chrome, v: StorageView) -> Self {
        let f = v.last_fsck.as_ref();
        StoragePage {
            used: format_bytes(v.used_bytes),
            max: format_bytes(v.max_bytes),
            percent: format!("{:.1} %", v.used_percent),
            memory: format_bytes(v.memory_cache_bytes),
            memory_max: format_bytes(v.memory_cache_max),
            orphan_bytes: format_bytes(v.orphan_bytes_reclaimed),
            fsck: f.and_then(|f| serde_json::to_string_pretty(&f["report"]).ok()),
            fsck_when: f
                .and_then(|f| f["at_ms"].as_u64())
                .map_or("unknown".into(), ago),
            fsck_verdict: f
                .and_then(|f| f["report"]["verdict"].as_str())
                .unwrap_or("unknown")
                .to_owned(),
            c,
            v,
        }
    }
}

/// `/ui/login`.
#[derive(Template)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    /// Around the content.
    pub c: Chrome,
    /// Where to go after logging in.
    pub next: String,
}

/// A confirmation before an action.
#[derive(Template)]
#[template(path = "console/confirm.html")]
pub struct ConfirmPage {
    /// Around the content.
    pub c: Chrome,
    /// The heading.
    pub heading: String,
    /// What will happen, as a question.
    pub question: String,
    /// Where the form posts.
    pub action: String,
    /// Hidden fields.
    pub fields: Vec<(String, String)>,
    /// The button's text.
    pub button: String,
    /// Where "Cancel" goes.
    pub back: String,
}

/// The result of an action, or an error.
#[derive(Template)]
#[template(path = "console/message.html")]
pub struct MessagePage {
    /// Around the content.
    pub c: Chrome,
    /// The heading.
    pub heading: String,
    /// One sentence.
    pub text: String,
    /// Whether it is an error.
    pub error: bool,
    /// Where "Back" goes.
    pub back: String,
}

/// A ratio as a percentage, `-` when there is none.
fn ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{:.1} %", r * 100.0))
}

/// How long ago `at_ms` was, in words.
pub fn ago(at_ms: u64) -> String {
    let now = now_ms();
    if at_ms > now {
        return "just now".into();
    }
    format!("{} ago", span((now - at_ms) / 1000))
}

/// A number of seconds in the largest unit that fits.
fn span(s: u64) -> String {
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_ratios_read_well() {
        assert_eq!(span(5), "5 s");
        assert_eq!(span(125), "2 min");
        assert_eq!(span(7300), "2 h");
        assert_eq!(span(200_000), "2 d");
        assert_eq!(ratio(None), "-");
        assert_eq!(ratio(Some(0.5)), "50.0 %");
        assert_eq!(ago(now_ms() + 10_000), "just now");
    }
}
