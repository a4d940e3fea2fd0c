//! Bounded integers for config keys: the range is checked while deserializing,
//! so a wrong type, a negative number and an overflow all say the same thing:
//! `expected an integer 576..=9216, found string "1500"`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// An integer in `MIN..=MAX`, held as `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Int<T, const MIN: i64, const MAX: i64>(T);

impl<T: Copy, const MIN: i64, const MAX: i64> Int<T, MIN, MAX> {
    /// The value.
    pub(super) fn get(self) -> T {
        self.0
    }
}

struct IntVisitor<T, const MIN: i64, const MAX: i64>(PhantomData<T>);

impl<T: TryFrom<i64>, const MIN: i64, const MAX: i64> Visitor<'_> for IntVisitor<T, MIN, MAX> {
    type Value = Int<T, MIN, MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer {MIN}..={MAX}")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        if !(MIN..=MAX).contains(&v) {
            return Err(E::invalid_value(Unexpected::Signed(v), &self));
        }
        T::try_from(v).map(Int).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
        }
    }
}

impl<'de, T: TryFrom<i64>, const MIN: i64, const MAX: i64> Deserialize<'de> for Int<T, MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_i64(IntVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Doc {
        mtu: Int<u32, 576, 9216>,
    }

    fn parse(text: &str) -> Result<u32, String> {
        toml::from_str::<Doc>(text).map(|d| d.mtu.get()).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn in_range_values_load_and_others_name_the_range() {
        assert_eq!(parse("mtu = 1500"), Ok(1500));
        assert_eq!(parse("mtu = 576"), Ok(576));
        let range = "expected an integer 576..=9216";
        assert_eq!(parse("mtu = 575"), Err(format!("invalid value: integer `575`, {range}")));
        assert_eq!(parse("mtu = -1"), Err(format!("invalid value: integer `-1`, {range}")));
        assert_eq!(parse("mtu = \"1500\""), Err(format!("invalid type: string \"1500\", {range}")));
        assert_eq!(parse("mtu = 1.5"), Err(format!("invalid type: floating point `1.5`, {range}")));
    }
}
