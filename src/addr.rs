//! Resource addresses (`kind.name`), the identity of a resource in specs, plans and state.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// `kind.name`, e.g. `s3_bucket.uploads`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceAddr {
    pub kind: String,
    pub name: String,
}

impl ResourceAddr {
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        Self { kind: kind.into(), name: name.into() }
    }
}

impl fmt::Display for ResourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind, self.name)
    }
}

/// Why a string is not a resource address.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a resource address: expected KIND.NAME, e.g. s3_bucket.uploads")]
pub struct BadAddr(String);

impl FromStr for ResourceAddr {
    type Err = BadAddr;
    fn from_str(s: &str) -> Result<Self, BadAddr> {
        match s.split_once('.') {
            Some((kind, name)) if is_ident(kind) && is_ident(name) => Ok(Self::new(kind, name)),
            _ => Err(BadAddr(s.to_string())),
        }
    }
}

impl TryFrom<String> for ResourceAddr {
    type Error = BadAddr;
    fn try_from(s: String) -> Result<Self, BadAddr> {
        s.parse()
    }
}

impl From<ResourceAddr> for String {
    fn from(a: ResourceAddr) -> String {
        a.to_string()
    }
}

/// Names of kinds, resources, attributes and variables: letters, digits, `_` and `-`,
/// starting with a letter or `_`.
pub fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_round_trips_through_text() {
        // Parsing the display form gives back the same address; junk is refused.
        let a: ResourceAddr = "s3_bucket.uploads".parse().expect("valid");
        assert_eq!(a, ResourceAddr::new("s3_bucket", "uploads"));
        assert_eq!(a.to_string(), "s3_bucket.uploads");
        assert!("s3_bucket".parse::<ResourceAddr>().is_err());
        assert!("s3_bucket.up.loads".parse::<ResourceAddr>().is_err());
        assert!(".x".parse::<ResourceAddr>().is_err());
    }
}
