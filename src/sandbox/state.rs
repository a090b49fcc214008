//! The sandbox's memory: members and their pending verification codes.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::provider::codes::{MemberType, Source};

/// Everything the sandbox remembers between calls.
#[derive(Debug, Default)]
pub struct SandboxState {
    /// Members by the merchant's `bizUserId`.
    pub members: HashMap<String, Member>,
    next_user: u64,
}

impl SandboxState {
    /// A fresh provider-side user id.
    pub fn new_user_id(&mut self) -> String {
        self.next_user += 1;
        let mut salt = [0u8; 4];
        // An id that differs between sandbox runs, so that nobody comes to rely on its value.
        let _ = getrandom::fill(&mut salt);
        format!("{}-{:08}", hex::encode(salt), self.next_user)
    }
}

/// One member as the provider keeps it.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: String,
    pub biz_user_id: String,
    pub member_type: MemberType,
    pub source: Source,
    pub registered_at: OffsetDateTime,
    /// The bound phone, once `bindPhone` succeeded.
    pub phone: Option<String>,
    /// Real-name record, once `setRealName` succeeded.
    pub real_name: Option<RealName>,
    /// Codes sent by `sendVerificationCode`, by phone number.
    pub pending_codes: HashMap<String, PendingCode>,
    pub locked: bool,
}

/// A verified identity.
#[derive(Debug, Clone)]
pub struct RealName {
    pub name: String,
    pub identity_type: i64,
    pub identity_no: String,
    pub verified_at: OffsetDateTime,
}

/// A verification code waiting to be used.
#[derive(Debug, Clone)]
pub struct PendingCode {
    pub code: String,
    pub code_type: i64,
    pub expires_at: OffsetDateTime,
}
