//! Formats the provider enforces on identifiers, shared by the gateway's validation and the sandbox.

/// The platform itself as the receiver of a consume order (B2C goods).
pub const PLATFORM_AS_RECEIVER: &str = "#yunBizUserId_B2C#";
/// The platform itself as a split-rule recipient (5.3).
pub const PLATFORM_AS_SPLIT: &str = "#yunBizUserId_application#";
/// bizUserIds no member may take (`protocol.reserved_biz_user_ids`).
pub const RESERVED_BIZ_USER_IDS: [&str; 2] = [PLATFORM_AS_RECEIVER, PLATFORM_AS_SPLIT];

/// 11 digits starting with 1: a mainland mobile number.
pub fn is_mobile(phone: &str) -> bool {
    phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit())
}

/// A resident ID card number: 17 digits and a digit or X, or 15 digits (first generation).
pub fn is_id_card(id: &str) -> bool {
    let b = id.as_bytes();
    match b.len() {
        18 => b[..17].iter().all(u8::is_ascii_digit) && (b[17].is_ascii_digit() || b[17] == b'X' || b[17] == b'x'),
        15 => b.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// A date as `yyyy-MM-dd` or as `yyyyMMdd`, whichever it is.
pub fn parse_date(text: &str) -> Option<time::Date> {
    parse_dashed_date(text).or_else(|| parse_compact_date(text))
}

/// A date as `yyyy-MM-dd` only (4.2.14 beginDate/endDate l.1980-1981, 4.2.22 dateStart/dateEnd l.2276-2277).
pub fn parse_dashed_date(text: &str) -> Option<time::Date> {
    time::Date::parse(text.trim(), DASHED_DATE).ok()
}

/// A date as `yyyyMMdd` only (4.3.2 `date`, l.2360).
pub fn parse_compact_date(text: &str) -> Option<time::Date> {
    time::Date::parse(text.trim(), COMPACT_DATE).ok()
}

const DASHED_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");
const COMPACT_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year][month][day]");

/// `yyyy-MM-dd`.
pub fn format_dashed_date(date: time::Date) -> String {
    date.format(DASHED_DATE).unwrap_or_default()
}

/// `yyyyMMdd`.
pub fn format_compact_date(date: time::Date) -> String {
    date.format(COMPACT_DATE).unwrap_or_default()
}

/// The account sets coupons may come from ("目前只支持营销专用账户和保证金账户",
/// 5.2 l.2437, 2439): marketing (2000000, the default) and margin (100002).
pub const COUPON_ACCOUNT_SETS: [&str; 2] = ["2000000", "100002"];

/// The largest amount, in fen, any single money field may carry. The spec
/// types amounts as Long (2.4) and states no maximum; this bound (10^15 fen,
/// ten trillion yuan) keeps every sum of a request's amounts, over at most
/// [`MAX_LIST_ITEMS`] entries of every list, inside an i64.
pub const MAX_AMOUNT_FEN: i64 = 1_000_000_000_000_000;

/// The most entries a request's list may hold (batch items, refunds, split
/// rules per level, balance parts). The provider limits batch sizes without
/// publishing the figure (change log 1.24); bounding them before any RSA
/// work keeps one request from buying seconds of encryption.
pub const MAX_LIST_ITEMS: usize = 100;

/// The deepest split-rule nesting accepted (5.3 allows several levels, its
/// example has three, no maximum is stated).
pub const MAX_SPLIT_DEPTH: usize = 5;

/// Whether `amount` is a valid positive amount of fen within [`MAX_AMOUNT_FEN`].
pub fn is_positive_amount(amount: i64) -> bool {
    (1..=MAX_AMOUNT_FEN).contains(&amount)
}

/// 12 to 19 digits: a bank card number.
pub fn is_card_number(text: &str) -> bool {
    (12..=19).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

/// 6 to 32 digits: a bank card or a corporate account number (银行卡号/账号,
/// 4.2.3 l.1503); corporate accounts are often longer than 19 digits.
pub fn is_account_number(text: &str) -> bool {
    (6..=32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_formats() {
        assert!(is_id_card("610422198600000000"));
        assert!(is_id_card("11010519491231002X"));
        assert!(!is_id_card("61042219860000000"));
        assert!(!is_id_card("6104221986000000AB"));
        assert!(is_mobile("13800138000"));
        assert!(!is_mobile("23800138000"));
        assert!(!is_mobile("1380013800"));
        assert!(parse_date("2026-11-25").is_some());
        assert_eq!(parse_date("20261125"), parse_date("2026-11-25"));
        assert!(parse_dashed_date("20261125").is_none() && parse_compact_date("2026-11-25").is_none());
        let day = parse_date("2026-01-05").unwrap();
        assert_eq!(
            (format_compact_date(day), format_dashed_date(day)),
            ("20260105".into(), "2026-01-05".into())
        );
        assert!(parse_date("2026-13-45").is_none());
    }
}
