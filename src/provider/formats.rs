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

/// A date as `yyyy-MM-dd` (or `yyyyMMdd`, as 4.3.2 and 4.1.10 print it).
pub fn parse_date(text: &str) -> Option<time::Date> {
    let text = text.trim();
    time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
        .or_else(|_| time::Date::parse(text, time::macros::format_description!("[year][month][day]")))
        .ok()
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
        assert!(parse_date("2026-13-45").is_none());
    }
}
