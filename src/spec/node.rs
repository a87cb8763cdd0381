//! A YAML document as a tree of nodes that remember where they came from in the spec file.

use miette::SourceSpan;
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::source::SpecSource;

/// A YAML value with the byte span it was written at.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub span: SourceSpan,
    pub value: NodeValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Node>),
    /// Keys keep their own spans so an unknown attribute can be pointed at.
    Map(Vec<(Key, Node)>),
}

/// A mapping key and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: SourceSpan,
}

/// Why a file could not be read as YAML at all.
#[derive(Debug)]
pub struct YamlSyntaxError {
    pub message: String,
    pub span: SourceSpan,
}

impl Node {
    /// Parses the first document of `source`; an empty file is an empty mapping.
    pub fn parse(source: &SpecSource) -> Result<Node, YamlSyntaxError> {
        bounded(source)?;
        let docs = MarkedYaml::load_from_str(source.text()).map_err(|e| {
            let at = source.byte_offset(e.marker().index());
            YamlSyntaxError { message: e.info().to_string(), span: SourceSpan::new(at.into(), 0) }
        })?;
        match docs.into_iter().next() {
            Some(doc) => convert(&doc, source),
            None => Ok(Node { span: SourceSpan::new(0.into(), 0), value: NodeValue::Map(vec![]) }),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match &self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) => "an integer",
            NodeValue::Float(_) => "a number",
            NodeValue::Str(_) => "a string",
            NodeValue::List(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            NodeValue::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }
}

/// The largest spec read, and the deepest nesting: a spec is a few hundred lines a few levels
/// deep, and these bounds keep a hostile file from exhausting memory or the stack (the tree is
/// built, converted and dropped recursively). Aliases are expanded within saphyr's own budget.
pub const MAX_SPEC_BYTES: usize = 4 << 20;
pub const MAX_DEPTH: usize = 64;

/// Refuses a text too large, nested too deep or with a key twice in one mapping, before a tree
/// is built from it.
fn bounded(source: &SpecSource) -> Result<(), YamlSyntaxError> {
    use saphyr_parser::{Event, Parser};
    let text = source.text();
    if text.len() > MAX_SPEC_BYTES {
        return Err(YamlSyntaxError {
            message: format!("the spec is {} bytes; specs are limited to {MAX_SPEC_BYTES}", text.len()),
            span: SourceSpan::new(0.into(), 0),
        });
    }
    // One frame per open collection: for a mapping, whether a key comes next and the keys seen
    // with where each was first written (YAML keeps the last of two equal keys silently, which
    // would drop a resource without a word).
    struct Frame {
        mapping: bool,
        key_next: bool,
        keys: std::collections::HashMap<String, usize>,
    }
    let mut stack: Vec<Frame> = Vec::new();
    // After a value (a scalar, an alias or a whole collection) in a mapping, a key comes next;
    // after a key, its value.
    let advance = |stack: &mut Vec<Frame>| {
        if let Some(top) = stack.last_mut().filter(|f| f.mapping) {
            top.key_next = !top.key_next;
        }
    };
    for event in Parser::new_from_str(text) {
        match event {
            Ok((Event::SequenceStart(..) | Event::MappingStart(..), span)) => {
                if stack.len() >= MAX_DEPTH {
                    let at = source.byte_offset(span.start.index());
                    return Err(YamlSyntaxError {
                        message: format!("nested more than {MAX_DEPTH} levels deep"),
                        span: SourceSpan::new(at.into(), 0),
                    });
                }
                let mapping = matches!(event, Ok((Event::MappingStart(..), _)));
                stack.push(Frame { mapping, key_next: true, keys: Default::default() });
            }
            Ok((Event::SequenceEnd | Event::MappingEnd, _)) => {
                stack.pop();
                advance(&mut stack);
            }
            Ok((Event::Scalar(value, ..), span)) => {
                if let Some(top) = stack.last_mut().filter(|f| f.mapping && f.key_next) {
                    let at = source.byte_offset(span.start.index());
                    if let Some(first) = top.keys.insert(value.to_string(), at) {
                        let line = text[..first.min(text.len())].matches('\n').count() + 1;
                        return Err(YamlSyntaxError {
                            message: format!(
                                "duplicate key `{value}`: it is already set on line {line}, and YAML would keep only the last"
                            ),
                            span: SourceSpan::new(at.into(), value.len()),
                        });
                    }
                }
                advance(&mut stack);
            }
            Ok((Event::Alias(..), _)) => advance(&mut stack),
            Ok(_) => {}
            // The loader reports the syntax error, with its position.
            Err(_) => break,
        }
    }
    Ok(())
}

fn convert(yaml: &MarkedYaml<'_>, source: &SpecSource) -> Result<Node, YamlSyntaxError> {
    let span = source.span(yaml.span.start.index(), yaml.span.end.index());
    let value = match &yaml.data {
        YamlData::Value(scalar) => match scalar {
            Scalar::Null => NodeValue::Null,
            Scalar::Boolean(b) => NodeValue::Bool(*b),
            Scalar::Integer(i) => NodeValue::Int(*i),
            Scalar::FloatingPoint(f) => NodeValue::Float(f.into_inner()),
            Scalar::String(s) => NodeValue::Str(s.to_string()),
        },
        YamlData::Representation(text, _, _) => NodeValue::Str(text.to_string()),
        YamlData::Sequence(items) => {
            NodeValue::List(items.iter().map(|i| convert(i, source)).collect::<Result<_, _>>()?)
        }
        YamlData::Mapping(entries) => {
            let mut out = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let key = convert(k, source)?;
                let name = match &key.value {
                    NodeValue::Str(s) => s.clone(),
                    NodeValue::Int(i) => i.to_string(),
                    NodeValue::Bool(b) => b.to_string(),
                    _ => {
                        return Err(YamlSyntaxError {
                            message: format!("a mapping key must be a string, not {}", key.type_name()),
                            span: key.span,
                        });
                    }
                };
                out.push((Key { name, span: key.span }, convert(v, source)?));
            }
            NodeValue::Map(out)
        }
        YamlData::Tagged(_, inner) => return convert(inner, source),
        YamlData::Alias(_) | YamlData::BadValue => {
            return Err(YamlSyntaxError {
                message: "YAML aliases and unresolvable values are not supported in specs".into(),
                span,
            });
        }
    };
    Ok(Node { span, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        Node::parse(&SpecSource::new("t.yaml", text.to_string())).expect("valid yaml")
    }

    #[test]
    fn scalar_spans_point_at_the_value() {
        // A scalar's span covers exactly the characters of the value.
        let text = "a:\n  b: hello\n";
        let node = parse(text);
        let b = node.get("a").and_then(|a| a.get("b")).expect("a.b");
        let start: usize = b.span.offset();
        assert_eq!(&text[start..start + b.span.len()], "hello");
    }

    #[test]
    fn spans_are_byte_offsets_after_multibyte_text() {
        // Characters before the value that take several bytes do not shift the span.
        let text = "x: \"héllo wörld\"\ny: target\n";
        let node = parse(text);
        let y = node.get("y").expect("y");
        assert_eq!(&text[y.span.offset()..y.span.offset() + y.span.len()], "target");
    }

    #[test]
    fn yaml_types_are_resolved() {
        // Plain scalars become the YAML 1.2 core types.
        let node = parse("i: 5\nb: true\nn: ~\ns: '5'\n");
        assert_eq!(node.get("i").map(|n| &n.value), Some(&NodeValue::Int(5)));
        assert_eq!(node.get("b").map(|n| &n.value), Some(&NodeValue::Bool(true)));
        assert_eq!(node.get("n").map(|n| &n.value), Some(&NodeValue::Null));
        assert_eq!(node.get("s").map(|n| &n.value), Some(&NodeValue::Str("5".into())));
    }
}
