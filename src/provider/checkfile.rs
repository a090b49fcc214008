//! The merchant reconciliation file of 4.3.2 read strictly: one row per line, `orderNo|orderType|amount|channelFee|time|bizOrderNo` (l.2335), errors named by line.
//!
//! Facts from the spec: the file holds "所有订单及平台转账成功的交易"
//! (l.2333); the columns are 通联订单号 (orderNo, l.2337), 订单类型 ("充值|
//! 消费|提现|平台转账|代收|代付|退款 等", l.2338: an open list, so another word
//! is kept, not refused), 交易金额 and 渠道手续费金额 in fen (l.2339-2340),
//! 交易时间 `yyyy-MM-dd HH:mm:ss` (l.2341) and 商户订单编号 (bizOrderNo,
//! l.2342). Left open, and read leniently only there: the encoding (UTF-8,
//! with or without a BOM, else GB18030, the superset of GBK that Chinese
//! systems write) and the line ends (`\n` or `\r\n`, blank lines at the end).
//! Everything else is checked and a row that breaks a rule is an error
//! naming its line: a reconciliation that skipped rows would report them as
//! missing money. The one free-text column (the order type) may not start
//! as a spreadsheet formula (`=`, `+`, `-`, `@`); the numbers are the
//! merchant's own and are kept as written (any printable ASCII, as the
//! gateway accepts them), so an export to a spreadsheet must escape them.
//!
//! The file travels by URL (getCheckAccountFile's answer); [`fetch`] takes
//! it only from the provider's own host, bounded in size and time.

use std::time::Duration;

use serde_json::Value as Json;
use time::OffsetDateTime;

use super::calls::Call;
use super::codes::OrderStatus;
use super::formats::MAX_AMOUNT_FEN;
use super::wire;

/// The most rows a file may hold: a day of a large merchant, bounded.
pub const MAX_ROWS: usize = 2_000_000;
/// The longest order number read, in bytes.
const MAX_NUMBER: usize = 64;
/// The most errors a parse reports (the count says how many more).
const MAX_ERRORS: usize = 20;

/// The order type column, in the spec's words (l.2338).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowType {
    /// 充值
    Deposit,
    /// 消费
    Consume,
    /// 提现
    Withdraw,
    /// 平台转账
    Transfer,
    /// 代收
    Collect,
    /// 代付
    Pay,
    /// 退款
    Refund,
    /// Another word ("等": the list is open), at most 32 characters.
    Other(String),
}

impl RowType {
    /// The word the file writes.
    pub fn word(&self) -> &str {
        match self {
            RowType::Deposit => "充值",
            RowType::Consume => "消费",
            RowType::Withdraw => "提现",
            RowType::Transfer => "平台转账",
            RowType::Collect => "代收",
            RowType::Pay => "代付",
            RowType::Refund => "退款",
            RowType::Other(word) => word,
        }
    }

    /// The calls whose records a row of this type may be (keyed by the
    /// row's bizOrderNo, or for a platform transfer its bizTransferNo):
    /// the apply call and, for payments, their confirmations (4.2.8,
    /// 4.2.11); for a type the spec does not list, every one (to find what
    /// the gateway did; such a row never completes a record).
    pub fn calls(&self) -> &'static [Call] {
        const CONFIRMATIONS: [Call; 2] = [Call::PayBackendSms, Call::PayBackendNewMobile];
        match self {
            RowType::Deposit => &[Call::DepositApply, CONFIRMATIONS[0], CONFIRMATIONS[1]],
            RowType::Consume => &[Call::ConsumeApply, CONFIRMATIONS[0], CONFIRMATIONS[1]],
            RowType::Withdraw => &[Call::WithdrawApply, CONFIRMATIONS[0], CONFIRMATIONS[1]],
            RowType::Collect => &[Call::AgentCollectApplySimplify, CONFIRMATIONS[0], CONFIRMATIONS[1]],
            RowType::Pay => &[Call::SignalAgentPaySimplify],
            RowType::Refund => &[Call::Refund],
            RowType::Transfer => &[Call::ApplicationTransfer],
            RowType::Other(_) => &FILE_CALLS,
        }
    }

    fn of(word: &str) -> RowType {
        match word {
            "充值" => RowType::Deposit,
            "消费" => RowType::Consume,
            "提现" => RowType::Withdraw,
            "平台转账" => RowType::Transfer,
            "代收" => RowType::Collect,
            "代付" => RowType::Pay,
            "退款" => RowType::Refund,
            other => RowType::Other(other.to_owned()),
        }
    }
}

/// One row of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Its line, from 1.
    pub line: usize,
    /// 通联订单号.
    pub order_no: String,
    pub row_type: RowType,
    /// 交易金额, fen.
    pub amount: i64,
    /// 渠道手续费金额, fen.
    pub channel_fee: i64,
    /// 交易时间, China time.
    pub at: OffsetDateTime,
    /// 商户订单编号.
    pub biz_order_no: String,
}

/// The calls whose successes the file lists ("所有订单及平台转账成功的交易",
/// l.2333): the orders keyed by bizOrderNo, their confirmations, refunds
/// and platform transfers. Freezes are no order; a batch's items are its
/// orders, but its record is keyed by the batch.
pub const FILE_CALLS: [Call; 9] = [
    Call::DepositApply,
    Call::WithdrawApply,
    Call::ConsumeApply,
    Call::AgentCollectApplySimplify,
    Call::SignalAgentPaySimplify,
    Call::PayBackendSms,
    Call::PayBackendNewMobile,
    Call::Refund,
    Call::ApplicationTransfer,
];

/// Whether an answer of `call` (a call's own, or one recovered) says the
/// money moved, so that the day's file must list it: a platform transfer
/// answers only once done (4.2.19), an order when `payStatus` is
/// "success" (4.2.2-4.2.8) or its 6.13 status is 4 or 5. A refund's own
/// answer (4.2.17) has no status: its notification or a query tells.
pub fn books(call: Call, answer: &Json) -> bool {
    if !FILE_CALLS.contains(&call) {
        return false;
    }
    if call == Call::ApplicationTransfer {
        return true;
    }
    OrderStatus::of_answer(answer).is_some_and(OrderStatus::is_success)
}

/// When the provider generates the file of `date`: "云账户每天上午 11:00
/// 生成前一天的商户对账文件" (4.3.2 l.2329), 11:00 China time the next day.
pub fn generated_at(date: time::Date) -> Option<OffsetDateTime> {
    let next = date.next_day()?.with_hms(11, 0, 0).ok()?;
    Some(next.assume_offset(wire::CHINA))
}

/// Why a file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the file is neither UTF-8 nor GB18030 (GBK) text")]
    Encoding,
    #[error("the file has more than {MAX_ROWS} rows")]
    TooManyRows,
    #[error("{} row(s) break the format (orderNo|orderType|amount|channelFee|time|bizOrderNo, 4.3.2): {}{}",
        .count, .first.join("; "), if *.count > .first.len() { "; ..." } else { "" })]
    Rows { count: usize, first: Vec<String> },
}

/// Reads a file's bytes as text: UTF-8 (a BOM dropped), else GB18030.
pub fn decode(bytes: &[u8]) -> Result<String, FileError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(FileError::Encoding);
    }
    Ok(text.into_owned())
}

/// Parses a whole file; every row must be well formed.
pub fn parse(bytes: &[u8]) -> Result<Vec<Row>, FileError> {
    let text = decode(bytes)?;
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    // Blank lines are allowed at the end only.
    let last = lines.iter().rposition(|l| !l.trim().is_empty()).map_or(0, |i| i + 1);
    if last > MAX_ROWS {
        return Err(FileError::TooManyRows);
    }
    let mut rows = Vec::with_capacity(last);
    let mut errors = Vec::new();
    let mut count = 0;
    for (i, line) in lines[..last].iter().enumerate() {
        match row(i + 1, line) {
            Ok(r) => rows.push(r),
            Err(e) => {
                count += 1;
                if errors.len() < MAX_ERRORS {
                    errors.push(format!("line {}: {e}", i + 1));
                }
            }
        }
    }
    if count > 0 {
        return Err(FileError::Rows { count, first: errors });
    }
    Ok(rows)
}

/// Whether a spreadsheet would run `text` as a formula (OWASP's list).
fn formula(text: &str) -> bool {
    text.starts_with(['=', '+', '-', '@'])
}

fn number(field: &str, value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > MAX_NUMBER || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{field} must be 1 to {MAX_NUMBER} printable ASCII characters"));
    }
    Ok(value.to_owned())
}

fn fen(field: &str, value: &str) -> Result<i64, String> {
    if value.is_empty() || value.len() > 16 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{field} must be a whole number of fen"));
    }
    value
        .parse::<i64>()
        .ok()
        .filter(|n| *n <= MAX_AMOUNT_FEN)
        .ok_or_else(|| format!("{field} is above {MAX_AMOUNT_FEN} fen"))
}

fn row(line: usize, text: &str) -> Result<Row, String> {
    let fields: Vec<&str> = text.split('|').collect();
    let [order_no, row_type, amount, fee, at, biz_order_no] = fields.as_slice() else {
        return Err(format!("{} fields, not 6", fields.len()));
    };
    let row_type = row_type.trim();
    if row_type.is_empty() || row_type.chars().count() > 32 || row_type.chars().any(char::is_control) {
        return Err("orderType must be a word of at most 32 characters".into());
    }
    // The one free-text column: a word, never a formula a spreadsheet would run.
    if formula(row_type) {
        return Err("orderType must not start with = + - @ (a spreadsheet formula)".into());
    }
    Ok(Row {
        line,
        order_no: number("orderNo", order_no.trim())?,
        row_type: RowType::of(row_type),
        amount: fen("amount", amount.trim())?,
        channel_fee: fen("channelFee", fee.trim())?,
        at: (at.len() == 19)
            .then(|| wire::parse_timestamp(at))
            .flatten()
            .ok_or("time must be yyyy-MM-dd HH:mm:ss")?,
        biz_order_no: number("bizOrderNo", biz_order_no.trim())?,
    })
}

/// How [`fetch`] takes a file.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    /// The most bytes read; a longer file is refused.
    pub max_bytes: usize,
    /// The whole download's time.
    pub timeout: Duration,
}

/// Why a file was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the file's URL is not a URL: {0}")]
    BadUrl(String),
    #[error(
        "the file's URL names host {found:?}, not the provider's ({provider:?}) nor one of reconciliation.file_hosts: not fetched"
    )]
    ForeignHost { found: String, provider: String },
    #[error("the file's URL is {found}, but the provider is reached over {provider}: not fetched")]
    Scheme { found: String, provider: String },
    #[error("the file is larger than {max} bytes: not read (reconciliation.max_file_bytes)")]
    TooLarge { max: usize },
    #[error("the file did not arrive within {} s", .0.as_secs())]
    Timeout(Duration),
    #[error("the provider answered HTTP {0} for the file")]
    Status(u16),
    #[error("the file could not be downloaded: {0}")]
    Transport(String),
}

/// Checks that `url` is on the provider's host (`provider` is its SOA
/// URL), over the provider's scheme or HTTPS, or on one of `also` (hosts an
/// operator named, the spec promising no host for the file: l.2328 says
/// only "http 方式"), over HTTPS.
pub fn check_url(url: &str, provider: &str, also: &[String]) -> Result<reqwest::Url, FetchError> {
    let url = reqwest::Url::parse(url).map_err(|e| FetchError::BadUrl(e.to_string()))?;
    let provider = reqwest::Url::parse(provider).map_err(|e| FetchError::BadUrl(format!("provider.url: {e}")))?;
    let host = |u: &reqwest::Url| u.host_str().map(str::to_ascii_lowercase).unwrap_or_default();
    let named = !host(&url).is_empty() && also.iter().any(|h| h.eq_ignore_ascii_case(&host(&url)));
    if !named && (host(&url).is_empty() || host(&url) != host(&provider)) {
        return Err(FetchError::ForeignHost {
            found: host(&url),
            provider: host(&provider),
        });
    }
    if url.scheme() != "https" && (named || url.scheme() != provider.scheme()) {
        return Err(FetchError::Scheme {
            found: url.scheme().to_owned(),
            provider: provider.scheme().to_owned(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::BadUrl("it carries credentials".into()));
    }
    Ok(url)
}

/// Downloads the file at `url` (checked with [`check_url`]) with `http`,
/// which must not follow redirects (a redirect is refused as a status):
/// at most `limits.max_bytes`, within `limits.timeout`.
pub async fn fetch(http: &reqwest::Client, url: reqwest::Url, limits: &FetchLimits) -> Result<Vec<u8>, FetchError> {
    let download = async {
        let mut response = http
            .get(url)
            .send()
            .await
            .map_err(|e| FetchError::Transport(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > u64::try_from(limits.max_bytes).unwrap_or(u64::MAX))
        {
            return Err(FetchError::TooLarge { max: limits.max_bytes });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Transport(e.without_url().to_string()))?
        {
            if body.len().saturating_add(chunk.len()) > limits.max_bytes {
                return Err(FetchError::TooLarge { max: limits.max_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(limits.timeout, download)
        .await
        .unwrap_or(Err(FetchError::Timeout(limits.timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_in_either_encoding_and_line_end() {
        let text = "O1|充值|10000|60|2026-12-07 10:00:00|d-1\r\nT1|平台转账|300|0|2026-12-07 10:01:00|t-1\n\n";
        let rows = parse(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                &rows[0].row_type,
                rows[0].amount,
                rows[0].channel_fee,
                rows[0].biz_order_no.as_str()
            ),
            (&RowType::Deposit, 10_000, 60, "d-1")
        );
        assert_eq!((rows[1].line, &rows[1].row_type), (2, &RowType::Transfer));
        // GBK, as Chinese systems often write it, and a UTF-8 BOM.
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert_eq!(parse(&gbk).unwrap(), rows);
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(parse(&bom).unwrap(), rows);
        // "等": another type is kept as written.
        let other = parse("O2|冲正|1|0|2026-12-07 10:00:00|x".as_bytes()).unwrap();
        assert_eq!(other[0].row_type, RowType::Other("冲正".into()));
    }

    #[test]
    fn every_broken_row_is_named_by_its_line() {
        let text = "O1|充值|10000|0|2026-12-07 10:00:00|d-1\n\
                    O2|消费|-5|0|2026-12-07 10:00:00|d-2\n\
                    O3|消费|5|0|2026-12-07|d-3\n\
                    \n\
                    O4|消费|5|0|2026-12-07 10:00:00\n";
        let err = parse(text.as_bytes()).unwrap_err();
        let FileError::Rows { count, first } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*count, 4, "{first:?}");
        assert!(first[0].starts_with("line 2: amount"), "{first:?}");
        assert!(first[1].starts_with("line 3: time"), "{first:?}");
        assert!(
            first[2].starts_with("line 4: 1 fields"),
            "a blank line inside: {first:?}"
        );
        assert!(first[3].starts_with("line 5: 5 fields"), "{first:?}");
        assert_eq!(parse(b"\xff\xfe\xfd"), Err(FileError::Encoding));
        assert!(parse(format!("O1|充值|{}|0|2026-12-07 10:00:00|d", MAX_AMOUNT_FEN + 1).as_bytes()).is_err());
    }

    #[test]
    fn an_order_type_a_spreadsheet_would_run_is_refused() {
        for word in ["=HYPERLINK(1)", "+1", "-2+3", "@SUM(A1)"] {
            let err = parse(format!("O1|{word}|1|0|2026-12-07 10:00:00|x").as_bytes()).unwrap_err();
            assert!(err.to_string().contains("spreadsheet formula"), "{word}: {err}");
        }
        // The merchant's own numbers are kept as written (the gateway accepts them so).
        let kept = parse("-1|退款(代收)|1|0|2026-12-07 10:00:00|+A1".as_bytes()).unwrap();
        assert_eq!(
            (kept[0].order_no.as_str(), kept[0].biz_order_no.as_str()),
            ("-1", "+A1")
        );
        assert_eq!(kept[0].row_type, RowType::Other("退款(代收)".into()));
    }

    #[test]
    fn the_file_is_taken_only_from_the_providers_host() {
        let provider = "https://yun.allinpay.com/service/soa";
        assert!(
            check_url(
                "https://yun.allinpay.com/file/1902_20261207_allinpay.txt",
                provider,
                &[]
            )
            .is_ok()
        );
        assert!(check_url("https://YUN.allinpay.com/f.txt", provider, &[]).is_ok());
        assert!(matches!(
            check_url("https://evil.example/f.txt", provider, &[]),
            Err(FetchError::ForeignHost { .. })
        ));
        assert!(matches!(
            check_url("https://yun.allinpay.com.evil.example/f.txt", provider, &[]),
            Err(FetchError::ForeignHost { .. })
        ));
        assert!(matches!(
            check_url("http://yun.allinpay.com/f.txt", provider, &[]),
            Err(FetchError::Scheme { .. })
        ));
        assert!(matches!(
            check_url("file:///etc/passwd", provider, &[]),
            Err(FetchError::ForeignHost { .. })
        ));
        assert!(check_url("https://u:p@yun.allinpay.com/f.txt", provider, &[]).is_err());
        // A provider reached over plain HTTP (the sandbox) may hand out HTTP links.
        assert!(check_url("http://127.0.0.1:9/f.txt", "http://127.0.0.1:9/service/soa", &[]).is_ok());
        // A host the operator named, over HTTPS only.
        let files = ["files.allinpay.com".to_owned()];
        assert!(check_url("https://files.allinpay.com/f.txt", provider, &files).is_ok());
        assert!(check_url("http://files.allinpay.com/f.txt", provider, &files).is_err());
        assert!(check_url("https://other.allinpay.com/f.txt", provider, &files).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_or_refused_never_a_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse(&bytes);
        }
    }
}
