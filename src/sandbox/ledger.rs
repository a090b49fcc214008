//! The sandbox's double-entry ledger: every account's balance and frozen amount, every change journaled.
//!
//! Money enters only through [`Ledger::receive`] (a bank or wallet paid in)
//! and leaves only through [`Ledger::pay_out`] (to a bank card); everything
//! else is a transfer between two accounts. So the sum of all balances always
//! equals money received minus money paid out, which the property tests check
//! after every step. Amounts are `i64` fen and never negative; a transfer that
//! would overdraw the available balance (balance - frozen) is refused.

use std::collections::BTreeMap;

use time::OffsetDateTime;

/// Who holds an account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// A member, by the merchant's bizUserId.
    Member(String),
    /// The platform (the merchant itself), in one of its standard account sets (6.21).
    Platform,
}

/// One account: an owner in an account set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountKey {
    pub owner: Owner,
    pub account_set: String,
}

impl AccountKey {
    /// A member's account in `account_set`.
    pub fn member(biz_user_id: &str, account_set: &str) -> Self {
        AccountKey {
            owner: Owner::Member(biz_user_id.to_owned()),
            account_set: account_set.to_owned(),
        }
    }

    /// The platform's account in `account_set`.
    pub fn platform(account_set: &str) -> Self {
        AccountKey {
            owner: Owner::Platform,
            account_set: account_set.to_owned(),
        }
    }
}

/// Balance and frozen amount of one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    pub balance: i64,
    pub frozen: i64,
}

impl Balance {
    /// What can be spent: balance minus frozen.
    pub fn available(&self) -> i64 {
        self.balance - self.frozen
    }
}

/// One journaled change of one account (5.14 income/expense detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub serial: u64,
    pub account: AccountKey,
    pub at: OffsetDateTime,
    pub before: i64,
    pub change: i64,
    pub after: i64,
    pub frozen_after: i64,
    pub biz_order_no: Option<String>,
    pub remark: String,
}

/// Why the ledger refused a movement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient available balance: {available} fen available, {needed} fen needed")]
    Insufficient { available: i64, needed: i64 },
    #[error("amount must be positive, got {0}")]
    NotPositive(i64),
    #[error("cannot unfreeze {needed} fen: only {frozen} fen frozen")]
    NotFrozen { frozen: i64, needed: i64 },
    /// A balance or total would leave the i64 range: refused, never wrapped.
    #[error("amount out of range: a balance or total would overflow")]
    Overflow,
}

/// What a movement is for: the order number and a remark for the journal.
#[derive(Debug, Clone, Copy)]
pub struct Memo<'a> {
    pub biz_order_no: Option<&'a str>,
    pub remark: &'a str,
}

/// All accounts and their journal.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    accounts: BTreeMap<AccountKey, Balance>,
    journal: Vec<Entry>,
    received: i64,
    paid_out: i64,
}

impl Ledger {
    /// An account's balance (zero for an account never used).
    pub fn balance(&self, key: &AccountKey) -> Balance {
        self.accounts.get(key).copied().unwrap_or_default()
    }

    /// Total received from outside minus total paid out (never negative:
    /// nothing leaves that did not come in).
    pub fn net_inflow(&self) -> i64 {
        self.received - self.paid_out
    }

    /// Total received from outside.
    pub fn received(&self) -> i64 {
        self.received
    }

    /// Total paid out to bank cards.
    pub fn paid_out(&self) -> i64 {
        self.paid_out
    }

    /// Sum of all balances (in i128: exact whatever the number of accounts).
    pub fn total(&self) -> i128 {
        self.accounts.values().map(|b| i128::from(b.balance)).sum()
    }

    /// Every account, for checks.
    pub fn accounts(&self) -> impl Iterator<Item = (&AccountKey, &Balance)> {
        self.accounts.iter()
    }

    /// The journal of one account, oldest first.
    pub fn entries_of<'a>(&'a self, key: &'a AccountKey) -> impl DoubleEndedIterator<Item = &'a Entry> + 'a {
        self.journal.iter().filter(move |e| &e.account == key)
    }

    /// Journals a change already checked to fit (see [`Ledger::fits`]).
    fn record(&mut self, key: &AccountKey, change: i64, memo: Memo<'_>) {
        let account = self.accounts.entry(key.clone()).or_default();
        let before = account.balance;
        account.balance = before.saturating_add(change);
        let entry = Entry {
            serial: self.journal.len() as u64 + 1,
            account: key.clone(),
            at: OffsetDateTime::now_utc(),
            before,
            change,
            after: account.balance,
            frozen_after: account.frozen,
            biz_order_no: memo.biz_order_no.map(str::to_owned),
            remark: memo.remark.to_owned(),
        };
        self.journal.push(entry);
    }

    fn check(&self, key: &AccountKey, amount: i64) -> Result<(), LedgerError> {
        if amount <= 0 {
            return Err(LedgerError::NotPositive(amount));
        }
        let available = self.balance(key).available();
        if available < amount {
            return Err(LedgerError::Insufficient {
                available,
                needed: amount,
            });
        }
        Ok(())
    }

    /// Whether `key` can take `amount` more without leaving the i64 range.
    fn fits(&self, key: &AccountKey, amount: i64) -> Result<(), LedgerError> {
        self.balance(key)
            .balance
            .checked_add(amount)
            .map(|_| ())
            .ok_or(LedgerError::Overflow)
    }

    /// Money arriving from outside (a bank card, a wallet, a POS terminal).
    pub fn receive(&mut self, to: &AccountKey, amount: i64, memo: Memo<'_>) -> Result<(), LedgerError> {
        if amount <= 0 {
            return Err(LedgerError::NotPositive(amount));
        }
        self.fits(to, amount)?;
        self.received = self.received.checked_add(amount).ok_or(LedgerError::Overflow)?;
        self.record(to, amount, memo);
        Ok(())
    }

    /// Money leaving to a bank card.
    pub fn pay_out(&mut self, from: &AccountKey, amount: i64, memo: Memo<'_>) -> Result<(), LedgerError> {
        self.check(from, amount)?;
        // paid_out <= received always, so it cannot overflow where received did not.
        self.paid_out += amount;
        self.record(from, -amount, memo);
        Ok(())
    }

    /// Moves `amount` between two accounts; refused when `from` lacks it.
    pub fn transfer(
        &mut self,
        from: &AccountKey,
        to: &AccountKey,
        amount: i64,
        memo: Memo<'_>,
    ) -> Result<(), LedgerError> {
        self.check(from, amount)?;
        if from != to {
            self.fits(to, amount)?;
        }
        self.record(from, -amount, memo);
        self.record(to, amount, memo);
        Ok(())
    }

    /// Freezes part of the available balance.
    pub fn freeze(&mut self, key: &AccountKey, amount: i64, memo: Memo<'_>) -> Result<(), LedgerError> {
        // frozen + amount <= balance after the check, so the sum fits.
        self.check(key, amount)?;
        self.accounts.entry(key.clone()).or_default().frozen += amount;
        self.record(key, 0, memo);
        Ok(())
    }

    /// Releases frozen money.
    pub fn unfreeze(&mut self, key: &AccountKey, amount: i64, memo: Memo<'_>) -> Result<(), LedgerError> {
        if amount <= 0 {
            return Err(LedgerError::NotPositive(amount));
        }
        let frozen = self.balance(key).frozen;
        if frozen < amount {
            return Err(LedgerError::NotFrozen { frozen, needed: amount });
        }
        self.accounts.entry(key.clone()).or_default().frozen -= amount;
        self.record(key, 0, memo);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMO: Memo<'static> = Memo {
        biz_order_no: Some("o-1"),
        remark: "test",
    };

    #[test]
    fn transfers_conserve_and_refuse_overdraft() {
        let mut l = Ledger::default();
        let a = AccountKey::member("a", "100000");
        let b = AccountKey::member("b", "100000");
        l.receive(&a, 1000, MEMO).unwrap();
        l.transfer(&a, &b, 300, MEMO).unwrap();
        assert_eq!(l.total(), i128::from(l.net_inflow()));
        assert_eq!(
            l.transfer(&a, &b, 701, MEMO),
            Err(LedgerError::Insufficient {
                available: 700,
                needed: 701
            })
        );
        l.freeze(&a, 500, MEMO).unwrap();
        assert!(l.transfer(&a, &b, 201, MEMO).is_err());
        l.unfreeze(&a, 500, MEMO).unwrap();
        l.pay_out(&a, 700, MEMO).unwrap();
        assert_eq!(l.balance(&a).balance, 0);
        assert_eq!(l.total(), i128::from(l.net_inflow()));
        assert_eq!(l.transfer(&a, &b, 0, MEMO), Err(LedgerError::NotPositive(0)));
        l.receive(&b, i64::MAX - 1000, MEMO).unwrap();
        assert_eq!(
            l.receive(&b, 1, MEMO),
            Err(LedgerError::Overflow),
            "received would overflow"
        );
    }
}
