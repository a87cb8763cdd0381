//! Edits a spec's text so that it says what AWS has (`drift --adopt`), keeping its comments and
//! layout: a scalar is replaced where it is written; a mapping whose keys stay keeps its layout
//! and only its changed values are replaced; any other value is written on its key's line in
//! flow style (JSON, which YAML reads); an attribute the spec did not set is added as a line
//! after the resource's last attribute; an accepted undeclared child is added to
//! `drift.ignore`. A value written with a reference or variable (`${...}`) is never replaced by
//! a literal: it is reported as left for a person.

use serde_json::Value;

use super::node::{Node, NodeValue};
use super::source::SpecSource;
use crate::addr::ResourceAddr;

/// One thing to accept into the spec.
#[derive(Clone, Debug)]
pub enum Accept {
    /// The attribute is to say `value`.
    Attribute { addr: ResourceAddr, attr: String, value: Value },
    /// An undeclared child, by the pattern `drift.ignore` takes.
    Ignore(String),
}

/// The patched text, what was written, and what was not (with why).
#[derive(Debug, Default)]
pub struct Patched {
    pub text: String,
    pub applied: Vec<String>,
    pub left: Vec<String>,
}

/// One replacement of `start..end` by `text`.
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

struct Patcher<'a> {
    text: &'a str,
    edits: Vec<Edit>,
    applied: Vec<String>,
    left: Vec<String>,
}

/// The spec's text with `accepts` written in; `Err` when the spec is not YAML.
pub fn patch(source: &SpecSource, accepts: &[Accept]) -> Result<Patched, String> {
    let root = Node::parse(source).map_err(|e| e.message)?;
    let mut p = Patcher { text: source.text(), edits: vec![], applied: vec![], left: vec![] };
    let mut ignores = Vec::new();
    for accept in accepts {
        match accept {
            Accept::Attribute { addr, attr, value } => p.attribute(&root, addr, attr, value),
            Accept::Ignore(pattern) => ignores.push(pattern.clone()),
        }
    }
    if !ignores.is_empty() {
        p.ignore(&root, &ignores);
    }
    let mut text = source.text().to_string();
    // From the end backwards; edits at one place land in the order they were made.
    let mut edits: Vec<(usize, Edit)> = p.edits.drain(..).enumerate().collect();
    edits.sort_by_key(|(n, e)| std::cmp::Reverse((e.start, *n)));
    for (_, e) in &edits {
        text.replace_range(e.start..e.end, &e.text);
    }
    Ok(Patched { text, applied: p.applied, left: p.left })
}

impl Patcher<'_> {
    fn attribute(&mut self, root: &Node, addr: &ResourceAddr, attr: &str, value: &Value) {
        let what = format!("{addr}.{attr}");
        if contains_template(value) {
            self.left.push(format!("{what}: the live value holds `${{`, which the spec would read as a reference"));
            return;
        }
        let block = root.get("resources").and_then(|r| r.get(&addr.kind)).and_then(|k| k.get(&addr.name));
        let Some(block) = block.filter(|b| b.as_map().is_some()) else {
            self.left.push(format!("{what}: {addr} is not declared in the spec"));
            return;
        };
        let entries = block.as_map().expect("checked");
        match entries.iter().find(|(k, _)| k.name == attr) {
            Some((key, node)) => {
                if self.source_of(node).contains("${") {
                    self.left.push(format!(
                        "{what}: the spec computes it from a reference or variable; change that to {}",
                        flow(value)
                    ));
                    return;
                }
                self.replace(key.span.offset(), node, value);
                self.applied.push(format!("{what} = {}", flow(value)));
            }
            None => {
                let Some((last_key, _)) = entries.iter().max_by_key(|(k, _)| k.span.offset()) else {
                    self.left.push(format!("{what}: the resource's block is empty"));
                    return;
                };
                let indent = self.column(last_key.span.offset());
                let at = self.end_of_entry(last_key.span.offset());
                let line = format!("{}{attr}: {}\n", " ".repeat(indent), flow(value));
                self.edits.push(Edit { start: at, end: at, text: line });
                self.applied.push(format!("{what} = {} (added: the spec did not set it)", flow(value)));
            }
        }
    }

    /// Replaces the value of the key at `key_at` (whose node is `node`) by `value`.
    fn replace(&mut self, key_at: usize, node: &Node, value: &Value) {
        let scalar = |n: &Node| !matches!(n.value, NodeValue::List(_) | NodeValue::Map(_));
        if scalar(node) && !value.is_object() && !value.is_array() {
            let (start, end) = (node.span.offset(), node.span.offset() + node.span.len());
            self.edits.push(Edit { start, end, text: flow(value) });
            return;
        }
        // A block mapping whose keys stay: each changed scalar replaced in place.
        if let (NodeValue::Map(entries), Some(new)) = (&node.value, value.as_object()) {
            let same_keys = entries.len() == new.len() && entries.iter().all(|(k, _)| new.contains_key(&k.name));
            if same_keys && entries.iter().all(|(_, v)| scalar(v)) && !self.source_of(node).starts_with('{') {
                for (k, v) in entries {
                    let now = &new[&k.name];
                    if now.is_object() || now.is_array() {
                        break;
                    }
                    if &to_json(v) != now {
                        let (start, end) = (v.span.offset(), v.span.offset() + v.span.len());
                        self.edits.push(Edit { start, end, text: flow(now) });
                    }
                }
                return;
            }
        }
        // Anything else: the whole value on the key's line, in flow style.
        let line_end = self.line_end(key_at);
        let colon = self.text[key_at..line_end].find(':').map_or(line_end, |i| key_at + i + 1);
        let end = self.end_of_entry(key_at);
        self.edits.push(Edit { start: colon, end, text: format!(" {}\n", flow(value)) });
    }

    /// Adds `patterns` to `drift.ignore`, creating the section if there is none.
    fn ignore(&mut self, root: &Node, patterns: &[String]) {
        let quoted: Vec<String> = patterns.iter().map(|p| Value::String(p.clone()).to_string()).collect();
        let note = "# accepted by `cruddur-infra drift --adopt`";
        match root.get("drift").and_then(|d| d.get("ignore")) {
            Some(list @ Node { value: NodeValue::List(items), .. }) if !self.source_of(list).starts_with('[') => {
                let Some(last) = items.iter().max_by_key(|i| i.span.offset()) else { return };
                let line_start = self.line_start(last.span.offset());
                let dash = self.text[line_start..].find('-').unwrap_or(0);
                let at = self.end_of_entry(last.span.offset());
                let mut text = format!("{}{note}\n", " ".repeat(dash));
                for q in &quoted {
                    text.push_str(&format!("{}- {q}\n", " ".repeat(dash)));
                }
                self.edits.push(Edit { start: at, end: at, text });
            }
            Some(list @ Node { value: NodeValue::List(items), .. }) => {
                let mut all: Vec<Value> = items.iter().map(to_json).collect();
                all.extend(patterns.iter().cloned().map(Value::String));
                let (start, end) = (list.span.offset(), list.span.offset() + list.span.len());
                self.edits.push(Edit { start, end, text: flow(&Value::Array(all)) });
            }
            Some(_) => {
                self.left.push("drift.ignore is not a list: the undeclared children were not added".into());
                return;
            }
            None if root.get("drift").is_some() => {
                self.left.push("the spec's drift section has no ignore list to add the children to".into());
                return;
            }
            None => {
                let mut text = String::new();
                if !self.text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&format!("\ndrift:\n  ignore:\n    {note}\n"));
                for q in &quoted {
                    text.push_str(&format!("    - {q}\n"));
                }
                let end = self.text.len();
                self.edits.push(Edit { start: end, end, text });
            }
        }
        self.applied.extend(patterns.iter().map(|p| format!("drift.ignore + {p:?}")));
    }

    fn source_of(&self, node: &Node) -> &str {
        let start = node.span.offset();
        self.text.get(start..start + node.span.len()).unwrap_or_default().trim_start()
    }

    fn line_start(&self, at: usize) -> usize {
        self.text[..at].rfind('\n').map_or(0, |i| i + 1)
    }

    /// Where the line holding `at` ends, its newline included.
    fn line_end(&self, at: usize) -> usize {
        self.text[at..].find('\n').map_or(self.text.len(), |i| at + i + 1)
    }

    fn column(&self, at: usize) -> usize {
        at - self.line_start(at)
    }

    /// The end of the entry whose key (or list item) is at `at`: its line, and the lines after
    /// it indented deeper (blank lines inside count; trailing blank lines do not).
    fn end_of_entry(&self, at: usize) -> usize {
        let indent = self.column(at);
        let mut end = self.line_end(at);
        let mut next = end;
        while next < self.text.len() {
            let line_end = self.line_end(next);
            let line = &self.text[next..line_end];
            let body = line.trim_start_matches(' ');
            if body.trim().is_empty() {
                next = line_end;
                continue;
            }
            if line.len() - body.len() <= indent {
                break;
            }
            end = line_end;
            next = line_end;
        }
        end
    }
}

/// A value in flow style: a scalar plain where YAML reads it back as the same string, else
/// JSON (which YAML reads).
fn flow(value: &Value) -> String {
    match value {
        Value::String(s) if plain_safe(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `s` written plain reads back as the same string.
fn plain_safe(s: &str) -> bool {
    const WORDS: &[&str] = &["true", "false", "null", "yes", "no", "on", "off", "~"];
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    first_ok
        && !WORDS.contains(&s.to_ascii_lowercase().as_str())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./ ".contains(c))
        && !s.ends_with(' ')
}

fn contains_template(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("${"),
        Value::Array(items) => items.iter().any(contains_template),
        Value::Object(map) => map.values().any(contains_template),
        _ => false,
    }
}

/// A node as the JSON value it reads as.
fn to_json(node: &Node) -> Value {
    match &node.value {
        NodeValue::Null => Value::Null,
        NodeValue::Bool(b) => Value::Bool(*b),
        NodeValue::Int(i) => Value::from(*i),
        NodeValue::Float(f) => Value::from(*f),
        NodeValue::Str(s) => Value::String(s.clone()),
        NodeValue::List(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeValue::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.name.clone(), to_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SPEC: &str = "# the avatars stack
resources:
  s3_bucket:
    avatars:
      name: avatars-bucket   # the upload bucket
      tags:
        stage: one   # kept comment
        team: avatars
  sns_topic:
    events:
      name: \"events-${var.env}\"
      tags: { team: avatars }
";

    fn run(accepts: &[Accept]) -> Patched {
        patch(&SpecSource::new("s.yaml", SPEC.to_string()), accepts).expect("patched")
    }

    fn attr(addr: &str, attr: &str, value: Value) -> Accept {
        let (kind, name) = addr.split_once('.').expect("addr");
        Accept::Attribute { addr: ResourceAddr::new(kind, name), attr: attr.into(), value }
    }

    #[test]
    fn a_changed_value_is_replaced_where_it_is_written_and_comments_stay() {
        let p = run(&[attr("s3_bucket.avatars", "tags", json!({"stage": "two", "team": "avatars"}))]);
        assert!(p.text.contains("        stage: two   # kept comment\n"), "{}", p.text);
        assert!(p.text.starts_with("# the avatars stack\n") && p.text.contains("# the upload bucket"), "{}", p.text);
        assert_eq!(p.applied.len(), 1);
    }

    #[test]
    fn a_mapping_whose_keys_change_is_written_on_its_line_and_the_rest_is_kept() {
        let p = run(&[attr("s3_bucket.avatars", "tags", json!({"stage": "one"}))]);
        assert!(p.text.contains("      tags: {\"stage\":\"one\"}\n  sns_topic:"), "{}", p.text);
        let p = run(&[attr("sns_topic.events", "tags", json!({"team": "avatars", "cost": "7"}))]);
        assert!(p.text.contains("      tags: {\"team\":\"avatars\",\"cost\":\"7\"}\n"), "{}", p.text);
    }

    #[test]
    fn an_unset_attribute_is_added_after_the_last_one_and_references_are_left() {
        let p = run(&[
            attr("sns_topic.events", "display_name", json!("Console edit")),
            attr("sns_topic.events", "name", json!("events-prod")),
        ]);
        assert!(p.text.ends_with("      tags: { team: avatars }\n      display_name: Console edit\n"), "{}", p.text);
        assert_eq!(p.left.len(), 1, "{:?}", p.left);
        assert!(p.left[0].contains("reference or variable"), "{:?}", p.left);
        let reparsed = Node::parse(&SpecSource::new("s.yaml", p.text.clone())).expect("still YAML");
        let topic = reparsed.get("resources").and_then(|r| r.get("sns_topic")).and_then(|k| k.get("events"));
        assert_eq!(topic.and_then(|t| t.get("display_name")).and_then(Node::as_str), Some("Console edit"));
    }

    #[test]
    fn an_attribute_added_at_the_end_of_the_file_stays_above_a_new_drift_section() {
        let p = run(&[
            attr("sns_topic.events", "display_name", json!("Console")),
            Accept::Ignore("route GET /x in the API".into()),
        ]);
        let root = Node::parse(&SpecSource::new("s.yaml", p.text.clone())).expect("still YAML");
        let topic = root.get("resources").and_then(|r| r.get("sns_topic")).and_then(|k| k.get("events"));
        assert_eq!(topic.and_then(|t| t.get("display_name")).and_then(Node::as_str), Some("Console"), "{}", p.text);
        assert!(root.get("drift").is_some(), "{}", p.text);
    }

    #[test]
    fn undeclared_children_go_to_drift_ignore_created_or_extended() {
        let p = run(&[Accept::Ignore("route GET /x in the API".into())]);
        assert!(p.text.ends_with("drift:\n  ignore:\n    # accepted by `cruddur-infra drift --adopt`\n    - \"route GET /x in the API\"\n"), "{}", p.text);
        let again = patch(&SpecSource::new("s.yaml", p.text.clone()), &[Accept::Ignore("stage manual*".into())])
            .expect("patched");
        let root = Node::parse(&SpecSource::new("s.yaml", again.text.clone())).expect("YAML");
        let list = root.get("drift").and_then(|d| d.get("ignore")).expect("ignore");
        let NodeValue::List(items) = &list.value else { panic!("a list") };
        let items: Vec<&str> = items.iter().filter_map(Node::as_str).collect();
        assert_eq!(items, ["route GET /x in the API", "stage manual*"]);
    }
}
