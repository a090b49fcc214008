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
//! missing money.

use time::OffsetDateTime;

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

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_or_refused_never_a_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse(&bytes);
        }
    }
}
