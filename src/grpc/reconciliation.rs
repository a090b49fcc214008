//! `yungate.v1.ReconciliationService`: a day's reconciliation run on demand, and its stored report, paged.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::proto::reconciliation_service_server::ReconciliationService;
use super::proto::{
    GetReconciliationReportRequest, GetReconciliationReportResponse, ReconcileRequest, ReconcileResponse,
    ReconciliationRow, ReconciliationSummary, ReconciliationVerdict,
};
use super::status::{self, Violation};
use crate::error::GatewayError;
use crate::exchange::{ProviderAnswer, ProviderRequest};
use crate::reconcile::{self, Reconciler, Report, ReportRow, Summary, Verdict};

/// The most rows a page holds, and the default.
const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

/// The service over a reconciler.
pub struct Reconciliations<S> {
    reconciler: Arc<Reconciler<S>>,
}

impl<S> Reconciliations<S> {
    pub fn new(reconciler: Arc<Reconciler<S>>) -> Self {
        Reconciliations { reconciler }
    }
}

fn verdict_of(v: Verdict) -> ReconciliationVerdict {
    match v {
        Verdict::Matched => ReconciliationVerdict::Matched,
        Verdict::AmountDiffers => ReconciliationVerdict::AmountDiffers,
        Verdict::ProviderOnly => ReconciliationVerdict::ProviderOnly,
        Verdict::GatewayOnly => ReconciliationVerdict::GatewayOnly,
        Verdict::ResolvedByFile => ReconciliationVerdict::ResolvedByFile,
        Verdict::Conflict => ReconciliationVerdict::Conflict,
    }
}

/// The proto form of a report's counts.
pub fn summary_of(s: &Summary) -> ReconciliationSummary {
    ReconciliationSummary {
        date: s.date.clone(),
        dry_run: s.dry_run,
        ran_at_ms: i64::try_from(s.ran_at_ms).unwrap_or(i64::MAX),
        file_rows: s.file_rows,
        file_amount: s.file_amount,
        file_channel_fee: s.file_channel_fee,
        matched: s.count(Verdict::Matched),
        amount_differs: s.count(Verdict::AmountDiffers),
        provider_only: s.count(Verdict::ProviderOnly),
        gateway_only: s.count(Verdict::GatewayOnly),
        resolved_by_file: s.count(Verdict::ResolvedByFile),
        conflict: s.count(Verdict::Conflict),
        applied: s.applied,
        rows_left_out: s.rows_left_out,
    }
}

fn row_of(r: &ReportRow) -> ReconciliationRow {
    ReconciliationRow {
        line: u32::try_from(r.line).unwrap_or(u32::MAX),
        order_no: r.order_no.clone(),
        biz_order_no: r.biz_order_no.clone(),
        order_type: r.order_type.clone(),
        amount: r.amount,
        channel_fee: r.channel_fee,
        traded_at: r.traded_at.clone(),
        verdict: verdict_of(r.verdict) as i32,
        gateway_amount: r.gateway_amount,
        rpc: r.rpc.clone(),
        applied: r.applied,
        detail: r.detail.clone(),
    }
}

fn bad(field: &str, description: &str) -> Status {
    status::invalid_argument(&[Violation {
        field: field.to_owned(),
        description: description.to_owned(),
    }])
}

fn date_of(text: &str) -> Result<time::Date, Status> {
    reconcile::parse_date(text).map_err(|e| bad("date", &e.to_string()))
}

#[tonic::async_trait]
impl<S> ReconciliationService for Reconciliations<S>
where
    S: tower::Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    async fn reconcile(&self, request: Request<ReconcileRequest>) -> Result<Response<ReconcileResponse>, Status> {
        let r = request.into_inner();
        let date = date_of(&r.date)?;
        let report = self
            .reconciler
            .run(date, r.dry_run)
            .await
            .map_err(|e| status::from_reconcile_error(&e))?;
        Ok(Response::new(ReconcileResponse {
            summary: Some(summary_of(&report.summary)),
            rows: report
                .rows
                .iter()
                .filter(|row| row.verdict != Verdict::Matched)
                .take(MAX_PAGE)
                .map(row_of)
                .collect(),
        }))
    }

    async fn get_reconciliation_report(
        &self,
        request: Request<GetReconciliationReportRequest>,
    ) -> Result<Response<GetReconciliationReportResponse>, Status> {
        let r = request.into_inner();
        let date = date_of(&r.date)?;
        let size = match usize::try_from(r.page_size).unwrap_or(usize::MAX) {
            0 => DEFAULT_PAGE,
            n if n <= MAX_PAGE => n,
            _ => return Err(bad("page_size", "must be at most 1000")),
        };
        let start = if r.page_token.is_empty() {
            0
        } else {
            r.page_token
                .parse::<usize>()
                .map_err(|_| bad("page_token", "must be a next_page_token this rpc returned"))?
        };
        let wanted = match ReconciliationVerdict::try_from(r.verdict) {
            Ok(ReconciliationVerdict::Unspecified) => None,
            Ok(v) => Some(v),
            Err(_) => return Err(bad("verdict", "is not a ReconciliationVerdict")),
        };
        let day = crate::provider::formats::format_compact_date(date);
        let Report { summary, rows } = self
            .reconciler
            .report(&day)
            .await
            .map_err(|e| status::from_gateway_error(&GatewayError::StoreUnavailable(e.to_string())))?
            .ok_or_else(|| status::no_reconciliation_report(&day))?;
        let mut selected = rows
            .iter()
            .filter(|row| wanted.is_none_or(|v| verdict_of(row.verdict) == v))
            .skip(start);
        let page: Vec<ReconciliationRow> = selected.by_ref().take(size).map(row_of).collect();
        let more = selected.next().is_some();
        Ok(Response::new(GetReconciliationReportResponse {
            summary: Some(summary_of(&summary)),
            rows: page,
            next_page_token: if more {
                (start + size).to_string()
            } else {
                String::new()
            },
        }))
    }
}
