//! `Sensitive<T>`: a value (password, card, identity or phone number) that must never be printed.
//!
//! The wrapper serialises and deserialises as the bare value, so it can sit in
//! wire structs, but its `Debug` and `Display` show only a mask. Invariant 6 of
//! ARCHITECTURE.md relies on this: a struct that derives `Debug` and holds
//! personal data through `Sensitive` cannot leak it into a log line or a span.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret or a piece of personal data; `Debug` and `Display` print `***`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Sensitive(value)
    }

    /// The clear value. Call it only where the value is really needed (to
    /// encrypt it, to compare it), never to format it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the clear value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Sensitive(value)
    }
}

impl From<&str> for Sensitive<String> {
    fn from(value: &str) -> Self {
        Sensitive(value.to_owned())
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T: Serialize> Serialize for Sensitive<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sensitive<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Sensitive)
    }
}

/// Implements `Debug` for a struct by printing only the fields listed (and
/// `..` for the rest): for structs that hold personal data in plain fields,
/// the fields that are safe to print are named, and nothing else can leak.
#[macro_export]
macro_rules! debug_shows {
    ($ty:ident: $($field:ident),* $(,)?) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_mask_the_value() {
        let card = Sensitive::new("6228480402637874214".to_owned());
        assert_eq!(format!("{card:?}"), "***");
        assert_eq!(format!("{card}"), "***");
        assert_eq!(card.expose(), "6228480402637874214");
    }

    #[test]
    fn serialises_as_the_bare_value() {
        let card = Sensitive::new("622848".to_owned());
        assert_eq!(serde_json::to_string(&card).unwrap(), "\"622848\"");
        let back: Sensitive<String> = serde_json::from_str("\"622848\"").unwrap();
        assert_eq!(back, card);
    }
}
