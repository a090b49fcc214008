//! Reconciliation: the provider's daily file (4.3.2) matched against what the gateway did, each row classified, unknown outcomes the file proves completed, a report kept per day, and a daily run.
//!
//! A run of date D, one at a time across replicas (a lease in the store):
//!
//! ```text
//!   getCheckAccountFile(D) -> url   (through the provider stack: signed, rate limited)
//!   fetch(url): the provider's host only, at most max_file_bytes, within the timeout
//!   parse: every row or nothing (checkfile.rs)
//!   per row, the records of the calls its type may be (keyed by its bizOrderNo):
//!     refused / failed here               -> conflict
//!     unknown here, row not only its own  -> conflict (an unlisted type, a number on two rows)
//!     unknown here, amounts agree         -> resolved by file (complete the record)
//!     unknown here, amounts differ        -> amount differs
//!     done here                           -> matched, or amount differs
//!     no record (expired): the timeline   -> matched / conflict / provider only
//!   the day index (timeline.rs) minus the file's numbers -> gateway only
//!   not a dry run: store the report, journal changed verdicts, publish the counts
//! ```
//!
//! Runs are idempotent per date: the stored verdicts of every number say
//! which a number already had (nothing is journalled twice); a record the
//! file completed has the day's `resolved_by_file` timeline event, written
//! the moment it was completed (so a run cut short still leaves its trace,
//! and its error counts its completions), and stays resolved by file, not
//! matched; the event on the stream is deduplicated by its content. A row
//! of a type 4.3.2 does not list, or whose number is on several rows,
//! never completes a record.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tower::{Service, ServiceExt};

use crate::error::GatewayError;
use crate::exchange::{ProviderAnswer, ProviderRequest, Subject};
use crate::idempotency::fingerprint::record_key;
use crate::idempotency::outcome::{Stored, StoredResult};
use crate::idempotency::resolve::order_answer;
use crate::provider::calls::Call;
use crate::provider::checkfile::{self, FetchError, FetchLimits, FileError, Row, RowType};
use crate::provider::client::CallError;
use crate::provider::codes::OrderStatus;
use crate::provider::{formats, wire};
use crate::store::notifications::{NotificationLog, Record};
use crate::store::{Completed, Expect, Inspected, RecordState, Store, StoreError, lease};
use crate::telemetry::Metrics;
use crate::timeline::{self, Event, Timeline};

/// The most rows a stored report keeps (those that need a look first).
pub const MAX_REPORT_ROWS: usize = 100_000;
/// The notification stream's service and method of a reconciliation event.
pub const EVENT_SERVICE: &str = "yungate";
pub const EVENT_METHOD: &str = "reconciled";
/// A success recorded this close to midnight may be in the neighbouring day's file.
const MIDNIGHT_MARGIN_MS: u64 = 5 * 60 * 1000;

/// What became of a row (see `ReconciliationVerdict` in the proto).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Conflict,
    AmountDiffers,
    GatewayOnly,
    ProviderOnly,
    ResolvedByFile,
    Matched,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Matched,
        Verdict::AmountDiffers,
        Verdict::ProviderOnly,
        Verdict::GatewayOnly,
        Verdict::ResolvedByFile,
        Verdict::Conflict,
    ];

    /// The word in metrics, timelines and the stream event.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Matched => "matched",
            Verdict::AmountDiffers => "amount_differs",
            Verdict::ProviderOnly => "provider_only",
            Verdict::GatewayOnly => "gateway_only",
            Verdict::ResolvedByFile => "resolved_by_file",
            Verdict::Conflict => "conflict",
        }
    }
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    /// The file's line (0: a gateway-only success).
    pub line: usize,
    #[serde(default)]
    pub order_no: String,
    pub biz_order_no: String,
    #[serde(default)]
    pub order_type: String,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub channel_fee: i64,
    #[serde(default)]
    pub traded_at: String,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_amount: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rpc: String,
    #[serde(default)]
    pub applied: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Its verdict is in the number's timeline already (this run).
    #[serde(skip)]
    pub journalled: bool,
}

impl ReportRow {
    /// A row of the file, not yet classified (provider only until a record says otherwise).
    fn of(row: &Row) -> ReportRow {
        ReportRow {
            line: row.line,
            order_no: row.order_no.clone(),
            biz_order_no: row.biz_order_no.clone(),
            order_type: row.row_type.word().to_owned(),
            amount: row.amount,
            channel_fee: row.channel_fee,
            traded_at: wire::format_timestamp(row.at),
            verdict: Verdict::ProviderOnly,
            gateway_amount: None,
            rpc: String::new(),
            applied: false,
            detail: String::new(),
            journalled: false,
        }
    }
}

/// A day's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub date: String,
    pub dry_run: bool,
    pub ran_at_ms: u64,
    pub file_rows: u64,
    pub file_amount: i64,
    pub file_channel_fee: i64,
    /// By verdict word.
    pub counts: BTreeMap<String, u64>,
    pub applied: u64,
    pub rows_left_out: u64,
}

impl Summary {
    pub fn count(&self, verdict: Verdict) -> u64 {
        self.counts.get(verdict.word()).copied().unwrap_or(0)
    }
}

/// A day's report: its counts and its rows (those that need a look first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub summary: Summary,
    pub rows: Vec<ReportRow>,
}

/// Why a run did not end in a report.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("date must be yyyyMMdd, a past or present day (China time)")]
    Date,
    #[error("another reconciliation run holds the lease; try again when it ends")]
    Running,
    #[error("{0}")]
    Gateway(GatewayError),
    /// getCheckAccountFile did not give a URL.
    #[error("{0}")]
    Provider(CallError),
    #[error("getCheckAccountFile answered without a url")]
    NoUrl,
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("the file of {date} is not a 4.3.2 file: {source}")]
    File {
        date: String,
        #[source]
        source: FileError,
    },
    #[error("the file's amounts do not sum within 64 bits")]
    Overflow,
    #[error("the store did not answer: {0}")]
    Store(#[from] StoreError),
    #[error("the run stopped: {0}")]
    Stopped(String),
    /// Failed after records were completed (each one in its timeline).
    #[error(
        "{source}; before that, the run completed {completed} record(s) of unknown outcome the file proves (each \
         in its number's timeline): run again to finish"
    )]
    Interrupted {
        completed: u64,
        #[source]
        source: Box<ReconcileError>,
    },
    /// A daily run of `date` failed.
    #[error("{date}: {source}")]
    Day {
        date: String,
        #[source]
        source: Box<ReconcileError>,
    },
}

/// How runs are made.
#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    /// The provider's SOA URL: the file is taken only from its host,
    pub provider_url: String,
    /// or from one of these (over HTTPS).
    pub file_hosts: Vec<String>,
    pub limits: FetchLimits,
    /// How long a day's report is kept.
    pub report_retention: Duration,
    /// How long idempotency records are kept (a completed one as well).
    pub record_retention: Duration,
    /// The records' keys.
    pub sysid: String,
    pub secret: [u8; 32],
}

/// The daily run.
#[derive(Debug, Clone, Copy)]
pub struct DailySettings {
    /// China time of day after which the previous day is reconciled.
    pub at: time::Time,
    /// How often a replica checks whether the run is due.
    pub check_every: Duration,
    /// How long after a failed run the next try waits.
    pub retry_after: Duration,
    /// How many past days are looked at for a missing report.
    pub catch_up_days: u32,
}

/// Reconciliation runs; `S` is the provider stack.
pub struct Reconciler<S> {
    store: Arc<dyn Store>,
    provider: S,
    http: reqwest::Client,
    timeline: Timeline,
    log: Arc<dyn NotificationLog>,
    metrics: Arc<Metrics>,
    settings: ReconcileSettings,
    /// One run at a time in this replica; the lease makes it one across replicas.
    running: tokio::sync::Mutex<()>,
    /// Days whose daily runs failed: how often, and when to try next.
    backoff: std::sync::Mutex<HashMap<String, (u32, tokio::time::Instant)>>,
}

impl<S> std::fmt::Debug for Reconciler<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("provider_url", &self.settings.provider_url)
            .finish_non_exhaustive()
    }
}

/// The store key of a day's report, and of its summary alone (what the
/// daily run and the metrics read, without the rows).
fn report_key(sysid: &str, date: &str) -> String {
    format!("yg:recon:{{{sysid}:{date}}}")
}

fn summary_key(sysid: &str, date: &str) -> String {
    format!("yg:recon:{{{sysid}:{date}}}:summary")
}

/// The store key of the verdict each number of a day got (never cut short like the report).
fn verdicts_key(sysid: &str, date: &str) -> String {
    format!("yg:recon:{{{sysid}:{date}}}:verdicts")
}

/// A past or present China date as yyyyMMdd.
pub fn parse_date(text: &str) -> Result<time::Date, ReconcileError> {
    if text.len() != 8 {
        return Err(ReconcileError::Date);
    }
    let date = formats::parse_compact_date(text).ok_or(ReconcileError::Date)?;
    if date > timeline::china_date(timeline::now_ms()) {
        return Err(ReconcileError::Date);
    }
    Ok(date)
}

/// A run's own name in the lease: a lease held by an earlier run of this
/// replica is never taken for this one's.
fn run_token() -> Result<String, ReconcileError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ReconcileError::Store(StoreError(format!("no random token: {e}"))))?;
    Ok(hex::encode(bytes))
}

/// An error after records were completed: said so, so that nobody reads
/// "nothing was changed" (each completion is in its number's timeline).
fn after(completed: u64, error: ReconcileError) -> ReconcileError {
    if completed == 0 || matches!(error, ReconcileError::Interrupted { .. }) {
        error
    } else {
        ReconcileError::Interrupted {
            completed,
            source: Box::new(error),
        }
    }
}

/// The run lease, renewed as time passes (a third of its time at most
/// between renewals), whatever loop the run is in.
struct Held<'a> {
    store: &'a dyn Store,
    token: String,
    ttl: Duration,
    renewed: tokio::time::Instant,
}

impl Held<'_> {
    /// Renews the lease if a third of its time has passed.
    async fn keep(&mut self) -> Result<(), ReconcileError> {
        if self.renewed.elapsed() >= self.ttl / 3 {
            self.renew().await?;
        }
        Ok(())
    }

    /// Renews the lease now; `Running` when another run holds it.
    async fn renew(&mut self) -> Result<(), ReconcileError> {
        if self.store.lease(lease::RECONCILIATION, &self.token, self.ttl).await? {
            self.renewed = tokio::time::Instant::now();
            Ok(())
        } else {
            Err(ReconcileError::Running)
        }
    }
}

/// When the file of `date` is whole (`checkfile::generated_at`), in Unix
/// milliseconds. A report made before (the sandbox's `checkFile.early`)
/// does not settle the day for the daily run.
fn whole_after(date: time::Date) -> u64 {
    checkfile::generated_at(date)
        .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
        .map_or(u64::MAX, |s| s.saturating_mul(1000))
}

/// Whether a stored summary settles its day for the daily run: made once
/// the file was whole, or the file is not whole yet (then the day is run
/// again once, after 11:00, not at every check).
fn settles(summary: &Summary, date: time::Date) -> bool {
    let whole = whole_after(date);
    summary.ran_at_ms >= whole || timeline::now_ms() < whole
}

/// Whether a confirmation rpc (4.2.8, 4.2.11): its refusal (a wrong SMS
/// code) leaves the order open, so it says nothing of the order's end.
fn confirms(rpc: &str) -> bool {
    Call::ALL
        .into_iter()
        .any(|c| c.spec().rpc == rpc && c.spec().idempotency.confirms_order())
}

impl<S> Reconciler<S>
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    pub fn new(
        store: Arc<dyn Store>,
        provider: S,
        timeline: Timeline,
        log: Arc<dyn NotificationLog>,
        metrics: Arc<Metrics>,
        settings: ReconcileSettings,
    ) -> Result<Self, String> {
        crate::provider::client::install_tls_provider();
        // No redirects: a redirect could lead off the provider's host.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("yungate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the file client: {e}"))?;
        Ok(Reconciler {
            store,
            provider,
            http,
            timeline,
            log,
            metrics,
            settings,
            running: tokio::sync::Mutex::new(()),
            backoff: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The stored report of `date` (yyyyMMdd), if a run stored one.
    pub async fn report(&self, date: &str) -> Result<Option<Report>, StoreError> {
        let entries = self.store.journal_read(&report_key(&self.settings.sysid, date)).await?;
        Ok(entries.last().and_then(|e| serde_json::from_slice(e).ok()))
    }

    /// The stored summary of `date` (yyyyMMdd), without the rows.
    pub async fn summary(&self, date: &str) -> Result<Option<Summary>, StoreError> {
        let entries = self
            .store
            .journal_read(&summary_key(&self.settings.sysid, date))
            .await?;
        Ok(entries.last().and_then(|e| serde_json::from_slice(e).ok()))
    }

    /// The verdicts a stored run gave each number of `date` (every row,
    /// however long the report), for a re-run to journal only changes.
    async fn verdicts(&self, date: &str) -> Result<HashMap<String, Verdict>, StoreError> {
        let entries = self
            .store
            .journal_read(&verdicts_key(&self.settings.sysid, date))
            .await?;
        Ok(entries
            .last()
            .and_then(|e| serde_json::from_slice(e).ok())
            .unwrap_or_default())
    }

    /// Reconciles `date`; see the module's description. The run is a task
    /// of its own: a caller that goes away does not cut it short.
    pub async fn run(self: &Arc<Self>, date: time::Date, dry_run: bool) -> Result<Report, ReconcileError> {
        let me = Arc::clone(self);
        let run = tokio::spawn(async move { me.run_guarded(date, dry_run, false).await });
        match run.await {
            Ok(Ok(report)) => report.ok_or(ReconcileError::Running),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(ReconcileError::Stopped(e.to_string())),
        }
    }

    /// One run under the replica's mutex and the lease; `None` when
    /// `only_if_missing` and the date has a whole report already.
    async fn run_guarded(
        &self,
        date: time::Date,
        dry_run: bool,
        only_if_missing: bool,
    ) -> Result<Option<Report>, ReconcileError> {
        let Ok(_one) = self.running.try_lock() else {
            return Err(ReconcileError::Running);
        };
        let result = async {
            let mut held = Held {
                store: self.store.as_ref(),
                token: run_token()?,
                ttl: self.settings.limits.timeout + Duration::from_secs(60),
                renewed: tokio::time::Instant::now(),
            };
            held.renew().await?;
            let result = self.run_held(&mut held, date, dry_run, only_if_missing).await;
            // Given back at once (a lease of a millisecond, this run's own
            // token), so that another replica need not wait out its time.
            let _ = self
                .store
                .lease(lease::RECONCILIATION, &held.token, Duration::from_millis(1))
                .await;
            result
        }
        .await;
        if !dry_run && !matches!(result, Ok(None) | Err(ReconcileError::Running)) {
            self.metrics
                .reconciliation_run(if result.is_ok() { "ok" } else { "failed" });
        }
        result
    }

    async fn run_held(
        &self,
        held: &mut Held<'_>,
        date: time::Date,
        dry_run: bool,
        only_if_missing: bool,
    ) -> Result<Option<Report>, ReconcileError> {
        let day = formats::format_compact_date(date);
        // Under the lease: a report stored meanwhile by another replica is seen.
        if only_if_missing && self.summary(&day).await?.is_some_and(|s| settles(&s, date)) {
            return Ok(None);
        }
        let url = self.file_url(&day).await?;
        let url = checkfile::check_url(&url, &self.settings.provider_url, &self.settings.file_hosts)?;
        let bytes = checkfile::fetch(&self.http, url, &self.settings.limits).await?;
        held.renew().await?;
        // Up to millions of rows: off the async workers, on a thread of its
        // own (one run at a time; tokio's blocking pool is not used, invariant 5).
        let (parsed, rows) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("yungate-checkfile".into())
            .spawn(move || {
                let _ = parsed.send(checkfile::parse(&bytes));
            })
            .map_err(|e| ReconcileError::Stopped(format!("cannot start the file's reader: {e}")))?;
        let rows = rows
            .await
            .map_err(|e| ReconcileError::Stopped(e.to_string()))?
            .map_err(|source| ReconcileError::File {
                date: day.clone(),
                source,
            })?;
        held.renew().await?;
        let before = self.verdicts(&day).await?;
        let mut listed: HashMap<&str, usize> = HashMap::new();
        for row in &rows {
            *listed.entry(row.biz_order_no.as_str()).or_insert(0) += 1;
        }
        let mut file_amount: i128 = 0;
        let mut file_fee: i128 = 0;
        let mut completed = 0u64;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            held.keep().await.map_err(|e| after(completed, e))?;
            file_amount += i128::from(row.amount);
            file_fee += i128::from(row.channel_fee);
            let twins = listed.get(row.biz_order_no.as_str()).copied().unwrap_or(1);
            let classified = self
                .classify(&day, row, twins, dry_run, &mut completed)
                .await
                .map_err(|e| after(completed, e))?;
            out.push(classified);
        }
        let gateway_only = self
            .gateway_only(held, date, &listed)
            .await
            .map_err(|e| after(completed, e))?;
        out.extend(gateway_only);
        let summary = Summary {
            date: day.clone(),
            dry_run,
            ran_at_ms: timeline::now_ms(),
            file_rows: rows.len() as u64,
            file_amount: i64::try_from(file_amount).map_err(|_| after(completed, ReconcileError::Overflow))?,
            file_channel_fee: i64::try_from(file_fee).map_err(|_| after(completed, ReconcileError::Overflow))?,
            counts: Verdict::ALL
                .iter()
                .map(|v| {
                    (
                        v.word().to_owned(),
                        out.iter().filter(|r| r.verdict == *v).count() as u64,
                    )
                })
                .collect(),
            applied: out.iter().filter(|r| r.applied).count() as u64,
            rows_left_out: out.len().saturating_sub(MAX_REPORT_ROWS) as u64,
        };
        if dry_run {
            out.sort_by_key(|r| (r.verdict, r.line));
            out.truncate(MAX_REPORT_ROWS);
            return Ok(Some(Report { summary, rows: out }));
        }
        for row in &out {
            held.keep().await.map_err(|e| after(completed, e))?;
            let changed = before.get(&row.biz_order_no) != Some(&row.verdict);
            // A number the gateway never saw gets no timeline of the file's making.
            if changed && !row.journalled && row.verdict != Verdict::ProviderOnly {
                self.journal(&day, row).await;
            }
        }
        let verdicts: HashMap<&str, Verdict> = out.iter().map(|r| (r.biz_order_no.as_str(), r.verdict)).collect();
        let verdict_bytes = encode(&verdicts).map_err(|e| after(completed, e))?;
        drop(verdicts);
        // Those that need a look first; the order of the file within a verdict.
        out.sort_by_key(|r| (r.verdict, r.line));
        out.truncate(MAX_REPORT_ROWS);
        let report = Report { summary, rows: out };
        let bytes = encode(&report).map_err(|e| after(completed, e))?;
        let summary_bytes = encode(&report.summary).map_err(|e| after(completed, e))?;
        // Stored only while the lease is still this run's.
        held.renew().await.map_err(|e| after(completed, e))?;
        let retention = self.settings.report_retention;
        let sysid = &self.settings.sysid;
        for (key, bytes) in [
            (verdicts_key(sysid, &day), &verdict_bytes),
            (report_key(sysid, &day), &bytes),
            // Last: the summary is the day's "done" mark.
            (summary_key(sysid, &day), &summary_bytes),
        ] {
            self.store
                .journal_append(&key, bytes, retention, 1)
                .await
                .map_err(|e| after(completed, e.into()))?;
        }
        self.publish(&report.summary).await;
        // The gauges show the newest day (the daily run sets them from the store).
        let today = timeline::china_date(timeline::now_ms());
        if today.previous_day().is_some_and(|y| date >= y) {
            self.metrics.reconciliation_rows(&report.summary.counts);
        }
        tracing::info!(
            date = %day,
            rows = report.summary.file_rows,
            conflict = report.summary.count(Verdict::Conflict),
            amount_differs = report.summary.count(Verdict::AmountDiffers),
            provider_only = report.summary.count(Verdict::ProviderOnly),
            gateway_only = report.summary.count(Verdict::GatewayOnly),
            resolved_by_file = report.summary.count(Verdict::ResolvedByFile),
            "reconciled"
        );
        Ok(Some(report))
    }

    /// The file's URL, from getCheckAccountFile.
    async fn file_url(&self, day: &str) -> Result<String, ReconcileError> {
        let mut param = Map::new();
        param.insert("date".into(), json!(day));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let request = ProviderRequest::internal(Call::GetCheckAccountFile, param, Some(deadline));
        let answer = self
            .provider
            .clone()
            .oneshot(request)
            .await
            .map_err(ReconcileError::Gateway)?;
        let value = answer.result.map_err(ReconcileError::Provider)?;
        value
            .get("url")
            .and_then(Json::as_str)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .ok_or(ReconcileError::NoUrl)
    }

    /// The verdict of one row; `twins` is how many rows of the file carry
    /// its number. Each record completed is counted in `completed` and
    /// journalled at once.
    async fn classify(
        &self,
        day: &str,
        row: &Row,
        twins: usize,
        dry_run: bool,
        completed: &mut u64,
    ) -> Result<ReportRow, ReconcileError> {
        let mut out = ReportRow::of(row);
        let s = &self.settings;
        let mut found: Vec<(Call, String, Inspected)> = Vec::new();
        for &call in row.row_type.calls() {
            let key = record_key(&s.secret, &s.sysid, call, &row.biz_order_no);
            if let Some(record) = self.store.inspect(&key).await? {
                found.push((call, key, record));
            }
        }
        if found.is_empty() {
            return self.by_timeline(out).await;
        }
        // The request's amount: the apply call's (a confirmation has none).
        out.gateway_amount = found.iter().find_map(|(_, _, r)| amount_of(&r.subject));
        out.rpc = found[0].0.spec().rpc.to_owned();
        // A failure told to a caller is what a human must see first.
        for (call, _, record) in &found {
            if record.state == RecordState::Done
                && let Some(why) = told_failure(&record.outcome)
            {
                out.verdict = Verdict::Conflict;
                out.rpc = call.spec().rpc.to_owned();
                out.detail = format!(
                    "the gateway answered {}: {why}; the file books a success",
                    call.spec().rpc
                );
                return Ok(out);
            }
        }
        if out.gateway_amount.is_some_and(|a| a != row.amount) {
            out.verdict = Verdict::AmountDiffers;
            out.detail = "the gateway's request was for another amount: nothing was completed".into();
            return Ok(out);
        }
        let open: Vec<&(Call, String, Inspected)> =
            found.iter().filter(|(_, _, r)| r.state != RecordState::Done).collect();
        if let Some((call, _, _)) = open.first() {
            out.rpc = call.spec().rpc.to_owned();
            // Only a row that can be only this order's proves its success.
            if let RowType::Other(word) = &row.row_type {
                out.verdict = Verdict::Conflict;
                out.detail = format!(
                    "the outcome is not known here, and the file's order type {word:?} is not one 4.3.2 lists \
                     (l.2338): nothing was completed"
                );
                return Ok(out);
            }
            if twins > 1 {
                out.verdict = Verdict::Conflict;
                out.detail = format!(
                    "the outcome is not known here, and the file has {twins} rows with this number: nothing was \
                     completed"
                );
                return Ok(out);
            }
            out.verdict = Verdict::ResolvedByFile;
        }
        let unknown: Vec<&&(Call, String, Inspected)> = open
            .iter()
            .filter(|(_, _, r)| r.state == RecordState::Unknown)
            .collect();
        if unknown.is_empty() && !open.is_empty() {
            out.detail = "a call or the resolver holds the record now: run again to complete it".into();
            return Ok(out);
        }
        if !unknown.is_empty() {
            if dry_run {
                out.detail = "dry run: the record would be completed".into();
                return Ok(out);
            }
            for (call, key, record) in unknown {
                let answer = Stored::V1 {
                    result: StoredResult::Answer(file_answer(*call, row, &record.subject)),
                    recovered: true,
                }
                .to_bytes();
                let expect = Expect {
                    member: None,
                    amount: Some(row.amount),
                };
                match self
                    .store
                    .complete_unknown(key, &answer, s.record_retention, &expect)
                    .await?
                {
                    Completed::Done => {
                        *completed += 1;
                        tracing::info!(
                            call = call.spec().method,
                            "an unknown outcome completed by the reconciliation file"
                        );
                        // Journalled at once: a run cut short still leaves its trace.
                        if !out.applied {
                            out.applied = true;
                            out.journalled = true;
                            self.journal(day, &out).await;
                        }
                    }
                    Completed::Mismatch if !out.applied => {
                        out.verdict = Verdict::AmountDiffers;
                        out.detail = "the unknown request here is for another amount: not completed".into();
                        return Ok(out);
                    }
                    Completed::Mismatch | Completed::NotUnknown => {}
                }
            }
            if !out.applied {
                out.detail = "the record changed meanwhile (a retry or the resolver took it): run again".into();
            }
            return Ok(out);
        }
        // All done. Completed by this date's file in an earlier run (perhaps
        // one cut short, which stored no report)? Its timeline says so.
        let recovered = found
            .iter()
            .any(|(_, _, r)| matches!(Stored::from_bytes(&r.outcome), Ok(Stored::V1 { recovered: true, .. })));
        if recovered {
            let events = self.timeline.read(&row.biz_order_no).await?;
            let by_file = events.iter().any(|e| {
                e.kind == "reconciliation" && e.outcome == Verdict::ResolvedByFile.word() && e.detail.starts_with(day)
            });
            if by_file {
                out.verdict = Verdict::ResolvedByFile;
                out.applied = true;
                out.journalled = true;
                out.detail = "completed by an earlier run of this date".into();
                return Ok(out);
            }
        }
        out.verdict = Verdict::Matched;
        if out.gateway_amount.is_none() {
            out.detail = "the gateway's records here carry no amount: amounts not compared".into();
        }
        Ok(out)
    }

    /// A row without a record (expired, or never made here): what its timeline shows.
    async fn by_timeline(&self, out: ReportRow) -> Result<ReportRow, ReconcileError> {
        let events = self.timeline.read(&out.biz_order_no).await?;
        Ok(from_events(out, &events))
    }

    /// Successes the gateway recorded on `date` that the file does not
    /// list, unless another day's file did (a success learnt late).
    async fn gateway_only(
        &self,
        held: &mut Held<'_>,
        date: time::Date,
        listed: &HashMap<&str, usize>,
    ) -> Result<Vec<ReportRow>, ReconcileError> {
        let booked = self.timeline.booked(date).await?;
        let day = formats::format_compact_date(date);
        // A confirmation's answer has no amount; another entry (the
        // notification) may, else the apply call's record does.
        let mut amounts: HashMap<&str, i64> = HashMap::new();
        for b in &booked {
            if let Some(a) = b.amount {
                amounts.insert(b.number.as_str(), a);
            }
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for b in booked.iter().rev() {
            held.keep().await?;
            if listed.contains_key(b.number.as_str()) || !seen.insert(b.number.as_str()) {
                continue;
            }
            let elsewhere = self.timeline.read(&b.number).await?.into_iter().find(|e| {
                e.kind == "reconciliation" && e.outcome != Verdict::GatewayOnly.word() && !e.detail.starts_with(&day)
            });
            if elsewhere.is_some() {
                continue;
            }
            let mut amount = amounts.get(b.number.as_str()).copied();
            if amount.is_none() {
                for call in checkfile::FILE_CALLS {
                    let key = record_key(&self.settings.secret, &self.settings.sysid, call, &b.number);
                    if let Some(record) = self.store.inspect(&key).await? {
                        amount = amount.or_else(|| amount_of(&record.subject));
                    }
                }
            }
            let since_midnight = b.at_ms.saturating_add(8 * 3_600_000) % 86_400_000;
            let near = !(MIDNIGHT_MARGIN_MS..=86_400_000 - MIDNIGHT_MARGIN_MS).contains(&since_midnight);
            out.push(ReportRow {
                line: 0,
                order_no: String::new(),
                biz_order_no: b.number.clone(),
                order_type: String::new(),
                amount: 0,
                channel_fee: 0,
                traded_at: String::new(),
                verdict: Verdict::GatewayOnly,
                gateway_amount: amount,
                rpc: b.rpc.clone(),
                applied: false,
                detail: format!(
                    "the gateway learnt of its success by {}{}; the file does not list it",
                    b.via,
                    if near {
                        ", within 5 minutes of midnight (it may be in the neighbouring day's file)"
                    } else {
                        ""
                    }
                ),
                journalled: false,
            });
        }
        out.reverse();
        Ok(out)
    }

    /// Adds a row's verdict to its number's timeline.
    async fn journal(&self, day: &str, row: &ReportRow) {
        let detail = if row.detail.is_empty() {
            day.to_owned()
        } else {
            format!("{day}: {}", row.detail)
        };
        self.timeline
            .record(
                &row.biz_order_no,
                Event {
                    rpc: row.rpc.clone(),
                    actor: "reconciliation".into(),
                    detail: detail.chars().take(500).collect(),
                    ..Event::now("reconciliation", row.verdict.word())
                },
            )
            .await;
    }

    /// The run's counts on the notification stream (deduplicated by content).
    async fn publish(&self, summary: &Summary) {
        let mut counts = summary.clone();
        // The same counts are the same event, whenever the run was.
        counts.ran_at_ms = 0;
        let body = json!({
            "service": EVENT_SERVICE,
            "method": EVENT_METHOD,
            "summary": counts,
        });
        let rps = body.to_string();
        let id = hex::encode(Sha256::digest(rps.as_bytes()));
        let record = Record {
            id,
            service: EVENT_SERVICE.into(),
            method: EVENT_METHOD.into(),
            biz_order_no: None,
            biz_user_id: None,
            timestamp: wire::format_timestamp(time::OffsetDateTime::now_utc()),
            version: "1.0".into(),
            rps,
            trace: None,
        };
        if let Err(e) = self.log.append(&record).await {
            tracing::warn!(error = %e, "cannot publish the reconciliation event");
        }
    }

    /// Reconciles each of the last `catch_up_days` China days without a
    /// whole report (oldest first) once past `settings.at`, each failing
    /// day on a back-off of its own; sets the verdict gauges from the
    /// newest stored summary, whichever replica ran it; until `stop`.
    pub async fn daily(self: Arc<Self>, settings: DailySettings, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.daily_once(&settings).await {
                tracing::warn!(error = %e, "a daily reconciliation failed; it is tried again later");
            }
            tokio::select! {
                () = tokio::time::sleep(settings.check_every) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn daily_once(&self, settings: &DailySettings) -> Result<(), ReconcileError> {
        let now = time::OffsetDateTime::now_utc().to_offset(wire::CHINA);
        // Before `at`, yesterday's file may not be there yet: the day before is the newest due.
        let newest = if now.time() >= settings.at { 1 } else { 2 };
        let mut latest = None;
        let mut missing = 0u64;
        let mut first_error = None;
        for back in (newest..newest + i64::from(settings.catch_up_days.max(1))).rev() {
            let Some(date) = now.date().checked_sub(time::Duration::days(back)) else {
                continue;
            };
            let day = formats::format_compact_date(date);
            if let Some(summary) = self.summary(&day).await?
                && settles(&summary, date)
            {
                latest = Some(summary);
                continue;
            }
            missing += 1;
            if !self.due(&day) {
                continue;
            }
            match self.run_guarded(date, false, true).await {
                Ok(Some(report)) => {
                    missing -= 1;
                    self.backoff_clear(&day);
                    latest = Some(report.summary);
                }
                Ok(None) => missing -= 1,
                Err(ReconcileError::Running) => {}
                Err(e) => {
                    self.backoff_failed(&day, settings.retry_after);
                    first_error.get_or_insert(ReconcileError::Day {
                        date: day,
                        source: Box::new(e),
                    });
                }
            }
        }
        self.metrics.reconciliation_days_missing(missing);
        if let Some(summary) = latest {
            self.metrics.reconciliation_rows(&summary.counts);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Whether a day whose runs failed may be tried again now.
    fn due(&self, day: &str) -> bool {
        let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        backoff
            .get(day)
            .is_none_or(|(_, next)| *next <= tokio::time::Instant::now())
    }

    /// After a failed run of `day`: the next try waits `retry_after`,
    /// doubled with each failure up to six hours (a file that stays
    /// malformed is not downloaded every few minutes all day).
    fn backoff_failed(&self, day: &str, retry_after: Duration) {
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let failures = backoff.get(day).map_or(0, |(n, _)| *n).saturating_add(1);
        let wait = retry_after
            .saturating_mul(1u32 << failures.saturating_sub(1).min(10))
            .min(Duration::from_secs(6 * 3600).max(retry_after));
        backoff.insert(day.to_owned(), (failures, tokio::time::Instant::now() + wait));
        // Days out of every window are forgotten.
        if backoff.len() > 64 {
            backoff.clear();
        }
    }

    fn backoff_clear(&self, day: &str) {
        self.backoff.lock().unwrap_or_else(|p| p.into_inner()).remove(day);
    }
}

/// A report or a summary as the store keeps it.
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ReconcileError> {
    serde_json::to_vec(value).map_err(|e| ReconcileError::Store(StoreError(format!("cannot encode the report: {e}"))))
}

/// A row's verdict from its number's timeline alone (its record expired,
/// or there never was one).
fn from_events(mut out: ReportRow, events: &[Event]) -> ReportRow {
    // What reconciliation itself said is no evidence of what the gateway did.
    let events: Vec<&Event> = events.iter().filter(|e| e.kind != "reconciliation").collect();
    // The newest event that says where the order stood decides; an older
    // one was overtaken (a refused confirmation, then a confirmed one).
    let mut decisive = None;
    for e in events.iter().rev() {
        let status = e.order_status.map(OrderStatus::from_code);
        let verdict = match (status, e.kind.as_str(), e.outcome.as_str()) {
            (Some(status), _, _) if status.is_success() => Some(Verdict::Matched),
            (Some(status), _, _) if status.is_failure() => Some(Verdict::Conflict),
            // Pending or unpaid when last heard of: the file tells how it ended.
            (Some(_), _, _) => Some(Verdict::Matched),
            (None, "notification", "OK") | (None, "attempt" | "resolution" | "override", "ok" | "landed") => {
                Some(Verdict::Matched)
            }
            // A refused confirmation (a wrong SMS code) leaves the order open.
            (None, "attempt", "refused") if confirms(&e.rpc) => None,
            (None, "notification", "error") | (None, _, "refused" | "absent" | "number_used") => {
                Some(Verdict::Conflict)
            }
            // Unknown when last heard of: nothing after it settled it.
            (None, "attempt", "unknown") | (None, "resolution", "unresolved") => Some(Verdict::ResolvedByFile),
            _ => None,
        };
        if let Some(verdict) = verdict {
            decisive = Some((verdict, *e));
            break;
        }
    }
    match decisive {
        None if events.is_empty() => {
            out.detail = "no record or timeline of this number at the gateway".into();
        }
        None => {
            out.rpc = events.last().map(|e| e.rpc.clone()).unwrap_or_default();
            out.detail = "the gateway never sent it (its attempts were refused before sending, or only its \
                          confirmations were refused)"
                .into();
        }
        Some((Verdict::ResolvedByFile, e)) => {
            out.verdict = Verdict::ResolvedByFile;
            out.rpc.clone_from(&e.rpc);
            out.detail = "its outcome was left unknown here and its record has expired: nothing to complete (a \
                          retry of it meets the number used)"
                .into();
        }
        Some((verdict, e)) => {
            out.verdict = verdict;
            out.rpc.clone_from(&e.rpc);
            let in_progress = e
                .order_status
                .is_some_and(|s| !OrderStatus::from_code(s).is_success() && !OrderStatus::from_code(s).is_failure());
            out.detail = if verdict == Verdict::Conflict {
                format!(
                    "its record has expired; the timeline's last word was {} {}{}; the file books a success",
                    e.kind,
                    e.outcome,
                    e.order_status
                        .map(|s| format!(" (6.13 status {s})"))
                        .unwrap_or_default()
                )
            } else if in_progress {
                "the gateway last knew it in progress and its record has expired: amounts not compared".into()
            } else {
                "its record has expired: amounts not compared".into()
            };
        }
    }
    out
}

/// A record subject's amount.
fn amount_of(subject: &[u8]) -> Option<i64> {
    serde_json::from_slice::<Json>(subject).ok()?.get("amount")?.as_i64()
}

/// What the gateway told its caller, when it was a failure or a refusal.
fn told_failure(outcome: &[u8]) -> Option<String> {
    let Ok(Stored::V1 { result, .. }) = Stored::from_bytes(outcome) else {
        return None;
    };
    match result {
        StoredResult::Answer(value) => OrderStatus::of_answer(&value)
            .filter(|s| s.is_failure())
            .map(|s| format!("6.13 status {} {}", s.code(), s.name_zh())),
        StoredResult::Refusal { code, .. } => Some(format!("refused with {code}")),
        StoredResult::NumberUsed { code, .. } => Some(format!("an order with this number existed already ({code})")),
    }
}

/// The answer a record of `call` stands for once the file proved it: what
/// the row proves (the numbers, the amount for a refund or a transfer, a
/// success) and nothing more.
fn file_answer(call: Call, row: &Row, subject: &[u8]) -> Json {
    let kept: Map<String, Json> = serde_json::from_slice(subject).unwrap_or_default();
    if call == Call::ApplicationTransfer {
        // 4.2.19's answer: transferNo, bizTransferNo, amount.
        return json!({
            "transferNo": row.order_no,
            "bizTransferNo": row.biz_order_no,
            "amount": row.amount,
        });
    }
    let mut subject = Subject::from_kept(&kept);
    subject.biz_order_no = Some(row.biz_order_no.clone());
    let mut answer = order_answer(&subject, OrderStatus::Success);
    if let Some(map) = answer.as_object_mut() {
        match call {
            // A refund row's orderNo may be the original order's ("可查询订单和退款原订单号",
            // l.2337): only its amount is the refund's for sure (4.2.17 answers amount).
            Call::Refund => {
                map.insert("amount".into(), json!(row.amount));
            }
            // The apply calls answer orderNo (4.2.2-4.2.6); the confirmations do not.
            Call::PayBackendSms | Call::PayBackendNewMobile => {}
            _ => {
                map.insert("orderNo".into(), json!(row.order_no));
            }
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_compact_and_not_in_the_future() {
        assert!(parse_date("20261207").is_ok());
        for bad in ["2026-12-07", "2026120", "20261332", "29991231", ""] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_timeline_alone_tells_a_failure_from_a_success() {
        let rows = checkfile::parse("O1|充值|100|0|2026-12-07 10:00:00|o1".as_bytes()).unwrap();
        let row = || ReportRow::of(&rows[0]);
        let event = |kind: &str, outcome: &str, status: Option<i64>| Event {
            rpc: "DepositApply".into(),
            order_status: status,
            ..Event::now(kind, outcome)
        };
        let verdict = |events: &[Event]| from_events(row(), events).verdict;
        assert_eq!(verdict(&[]), Verdict::ProviderOnly);
        // The answer said pending, the notification said OK.
        assert_eq!(
            verdict(&[event("attempt", "ok", Some(99)), event("notification", "OK", Some(4))]),
            Verdict::Matched
        );
        // An answer OK at the protocol level, payStatus fail (6.13 3): the caller was told it failed.
        assert_eq!(verdict(&[event("attempt", "ok", Some(3))]), Verdict::Conflict);
        // A recovered 交易失败.
        assert_eq!(
            verdict(&[
                event("attempt", "unknown", None),
                event("resolution", "landed", Some(3))
            ]),
            Verdict::Conflict
        );
        assert_eq!(verdict(&[event("attempt", "refused", None)]), Verdict::Conflict);
        // Answered pending and never heard of again: the file says how it ended.
        assert_eq!(verdict(&[event("attempt", "ok", Some(99))]), Verdict::Matched);
        // Unknown and never settled.
        assert_eq!(verdict(&[event("attempt", "unknown", None)]), Verdict::ResolvedByFile);
        // Never sent.
        assert_eq!(verdict(&[event("attempt", "not_sent", None)]), Verdict::ProviderOnly);
        // A refused confirmation (a wrong SMS code) leaves the order open; the later answer decides.
        let confirmation = |outcome: &str| Event {
            rpc: "ConfirmPaySms".into(),
            ..Event::now("attempt", outcome)
        };
        assert_eq!(
            verdict(&[event("attempt", "ok", Some(1)), confirmation("refused")]),
            Verdict::Matched
        );
        assert_eq!(
            verdict(&[
                event("attempt", "ok", Some(1)),
                confirmation("refused"),
                event("attempt", "ok", Some(4))
            ]),
            Verdict::Matched
        );
        // A refusal overtaken by an answer in progress is not the last word.
        assert_eq!(
            verdict(&[event("attempt", "refused", None), event("attempt", "ok", Some(99))]),
            Verdict::Matched
        );
        // Reconciliation's own words are no evidence.
        assert_eq!(
            verdict(&[event("reconciliation", "matched", None)]),
            Verdict::ProviderOnly
        );
    }

    #[test]
    fn what_a_record_told_its_caller() {
        let stored = |result| {
            Stored::V1 {
                result,
                recovered: false,
            }
            .to_bytes()
        };
        assert_eq!(
            told_failure(&stored(StoredResult::Answer(json!({"payStatus": "pending"})))),
            None
        );
        assert!(told_failure(&stored(StoredResult::Answer(json!({"orderStatus": 3})))).is_some());
        assert!(told_failure(&stored(StoredResult::Answer(json!({"payStatus": "fail"})))).is_some());
        assert!(
            told_failure(&stored(StoredResult::Refusal {
                code: "40004".into(),
                message: String::new()
            }))
            .is_some()
        );
    }
}
