//! Typed plan values: a kind's spec as a plan holds it, where any value may be known only after
//! apply. `#[derive(Planned)]` (crates/model-derive) gives each spec model `Foo` a twin
//! `FooPlanned` whose every value is a [`Known`]: lists and maps may be unknown as a whole or
//! item by item, blocks field by field, so a kind's normalisation, grants, findings, deployer
//! ARNs, annotations and checks read a typed model at plan time, not a JSON map.
//!
//! A JSON document (a policy) is one value: its parts that are unknown stay as the marker
//! ([`crate::value::UNKNOWN`]) inside it, as a string in which an unknown value was
//! interpolated does (`arn:aws:s3:::<unknown>/*`); the permission checks treat both as unknown.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::ProviderError;
use crate::value::{Attrs, UNKNOWN, is_unknown};

/// A value in a plan: known, or known only after apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Known<T> {
    Known(T),
    Unknown,
}

impl<T> Known<T> {
    /// The value, if it is known.
    pub fn known(&self) -> Option<&T> {
        match self {
            Known::Known(v) => Some(v),
            Known::Unknown => None,
        }
    }

    /// The value to change in place, if it is known.
    pub fn known_mut(&mut self) -> Option<&mut T> {
        match self {
            Known::Known(v) => Some(v),
            Known::Unknown => None,
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Known::Unknown)
    }
}

impl Known<String> {
    /// The text, or the unknown marker, which permission checks and plans treat as unknown (a
    /// grant's principal or resource, an ARN part).
    pub fn text(&self) -> &str {
        match self {
            Known::Known(s) => s,
            Known::Unknown => UNKNOWN,
        }
    }
}

impl Known<String> {
    /// The text, if it is known whole (no unknown value interpolated into it): what a check of
    /// its form can judge.
    pub fn whole(&self) -> Option<&str> {
        self.known().map(String::as_str).filter(|s| !s.contains(UNKNOWN))
    }
}

impl<T: Default> Default for Known<T> {
    fn default() -> Self {
        Known::Known(T::default())
    }
}

/// [`Known::known`] for an optional value: `None` when it is unset or unknown.
pub trait KnownValue<T> {
    fn known(&self) -> Option<&T>;
    fn known_mut(&mut self) -> Option<&mut T>;
}

impl<T> KnownValue<T> for Option<Known<T>> {
    fn known(&self) -> Option<&T> {
        self.as_ref().and_then(Known::known)
    }

    fn known_mut(&mut self) -> Option<&mut T> {
        self.as_mut().and_then(Known::known_mut)
    }
}

/// Unsets an optional value known to equal `value` (what AWS reports for unset).
pub fn unset_when<T: PartialEq>(v: &mut Option<Known<T>>, value: &T) {
    if v.known() == Some(value) {
        *v = None;
    }
}

/// Rewrites each known string of a list (the unknown ones cannot be).
pub fn each_known(list: &mut [Known<String>], f: impl Fn(&mut String)) {
    list.iter_mut().filter_map(Known::known_mut).for_each(f);
}

/// How the strings of a list compare (CORS origins as written, methods upper case, headers
/// lower case).
#[derive(Clone, Copy)]
pub enum Case {
    AsWritten,
    Upper,
    Lower,
}

impl Case {
    /// Spells each known string of `list` the one way it compares, and sorts it.
    pub fn spell_sorted(self, list: &mut [Known<String>]) {
        each_known(list, |s| match self {
            Case::Upper => s.make_ascii_uppercase(),
            Case::Lower => s.make_ascii_lowercase(),
            Case::AsWritten => {}
        });
        sort_by_text(list);
    }
}

/// Sorts a list of strings by text, unknown ones first, where the order carries no meaning.
pub fn sort_by_text(list: &mut [Known<String>]) {
    list.sort_by(|a, b| a.text().cmp(b.text()));
}

/// [`Known::text`] for an optional string: `None` when it is unset.
pub trait KnownText {
    fn text(&self) -> Option<&str>;
}

impl KnownText for Option<Known<String>> {
    fn text(&self) -> Option<&str> {
        self.as_ref().map(Known::text)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Known<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if is_unknown(&value) {
            return Ok(Known::Unknown);
        }
        T::deserialize(value).map(Known::Known).map_err(D::Error::custom)
    }
}

impl<T: Serialize> Serialize for Known<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Known::Known(v) => v.serialize(serializer),
            Known::Unknown => serializer.serialize_str(UNKNOWN),
        }
    }
}

/// How a value of a model's type reads in a plan (`#[derive(Planned)]` uses it for each field).
pub trait Plannable {
    type Planned;
}

/// A model with a plan-time twin, written by `#[derive(Planned)]`.
pub trait HasPlan {
    /// The model with every value a [`Known`].
    type Plan: Serialize + DeserializeOwned + std::fmt::Debug + Clone + PartialEq + Send + Sync;
}

macro_rules! scalar {
    ($($t:ty),*) => { $(impl Plannable for $t { type Planned = Known<$t>; })* };
}
scalar!(String, bool, i64, Value);

/// A narrower integer is read as `i64` in a plan, so that a value out of its range is still
/// read, and the kind's own check names the range AWS takes.
impl Plannable for i32 {
    type Planned = Known<i64>;
}

impl Plannable for u32 {
    type Planned = Known<i64>;
}

impl<T: Plannable> Plannable for Option<T> {
    type Planned = Option<T::Planned>;
}

impl<T: Plannable> Plannable for Vec<T> {
    type Planned = Known<Vec<T::Planned>>;
}

impl<T: Plannable> Plannable for std::collections::BTreeMap<String, T> {
    type Planned = Known<std::collections::BTreeMap<String, T::Planned>>;
}

/// Writes the plan model back over `attrs`: each of the model's attributes takes the model's
/// value (or goes, when the model leaves it unset); every other attribute stays.
pub fn write_back<P: Serialize>(kind: &str, model: &P, names: &[&str], attrs: &mut Attrs) -> Result<(), ProviderError> {
    let written = super::typed::encode(kind, model)?;
    for name in names {
        match written.get(*name) {
            Some(v) => attrs.insert((*name).to_string(), v.clone()),
            None => attrs.remove(*name),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::typed::decode as read;
    use crate::value::unknown;
    use serde_json::json;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Model {
        name: Known<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        list: Option<Known<Vec<Known<String>>>>,
    }

    #[test]
    fn the_marker_reads_as_unknown_at_any_depth_and_writes_back_as_the_marker() {
        let attrs = json!({"name": unknown(), "list": ["a", unknown()], "arn": "computed"});
        let model: Model = read("k", attrs.as_object().unwrap()).unwrap();
        assert_eq!(model.name, Known::Unknown);
        assert_eq!(model.list, Some(Known::Known(vec![Known::Known("a".into()), Known::Unknown])));
        assert_eq!(model.name.text(), UNKNOWN);
        let mut back = attrs.as_object().unwrap().clone();
        write_back("k", &model, &["name", "list"], &mut back).unwrap();
        assert_eq!(Value::Object(back), attrs, "a round trip changes nothing, computed attributes stay");
    }

    #[test]
    fn an_unset_optional_value_is_none_and_written_back_as_absent() {
        let mut attrs = json!({"name": "n", "list": ["x"]}).as_object().unwrap().clone();
        let mut model: Model = read("k", &attrs).unwrap();
        assert_eq!(model.list.known(), Some(&vec![Known::Known("x".to_string())]));
        model.list = None;
        write_back("k", &model, &["name", "list"], &mut attrs).unwrap();
        assert_eq!(Value::Object(attrs), json!({"name": "n"}));
    }

    #[test]
    fn a_value_of_the_wrong_type_is_an_error_naming_it() {
        let attrs = json!({"name": 5}).as_object().unwrap().clone();
        let e = read::<Model>("k", &attrs).unwrap_err();
        assert!(e.to_string().contains("string"), "{e}");
    }
}
