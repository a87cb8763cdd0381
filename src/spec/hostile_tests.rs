//! The spec loader against hostile input: a mutator over the shipped spec (truncations, swapped
//! and duplicated lines, values of the wrong type, stray YAML syntax, random text), the files
//! in `tests/hostile-specs/` (the kept corpus: alias bombs, deep nesting, very long lines, bytes
//! that are not UTF-8), and the diagnostic renderer on each outcome. Nothing may panic, hang
//! or grow without bound; every refusal is a diagnostic.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{Overrides, Spec, SpecSource};
use crate::provider::Registry;

const SHIPPED: &str = include_str!("../../specs/cruddur.yaml");

/// Loads `text` and renders any error as a user would see it, with miette's graphical handler
/// at a fixed width; what it took.
fn load_and_render(name: &str, text: String) -> Duration {
    let started = Instant::now();
    let registry = Registry::aws();
    if let Err(e) = Spec::parse(SpecSource::new(name, text), &registry, &Overrides::none()) {
        let mut out = String::new();
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor()).with_width(100);
        handler.render_report(&mut out, &e).expect("a diagnostic renders");
        assert!(!out.is_empty());
    }
    started.elapsed()
}

/// Values that are wrong somewhere in every spec: other types, stray YAML, broken references.
const HOSTILE_VALUES: &[&str] = &[
    "[",
    "{",
    "]",
    "}",
    "- x",
    "[a, [b, [c",
    "{a: ${var.X}}",
    "${",
    "${var.",
    "${s3_bucket.}",
    "$${x}",
    "'",
    "\"",
    "&anchor x",
    "*nowhere",
    "!!binary aGk=",
    "!custom x",
    "~",
    "null",
    "true",
    "-1",
    "1099511627776",
    "123456789012345678901234567890",
    "1e400",
    ".nan",
    "0x7fffffffffffffff",
    "{}",
    "[]",
    "|",
    ">-",
    "\t",
    "\u{0}",
    "\u{feff}",
    "ünïcödé ✓",
    "? complex\n: key",
    "--- \n...",
    "%YAML 1.1",
];

/// One way to break the shipped spec.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    SwapLines(usize, usize),
    DeleteLine(usize),
    DuplicateLine(usize),
    ReplaceValue(usize, usize),
    Insert(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let lines = SHIPPED.lines().count();
    prop_oneof![
        (0..SHIPPED.len()).prop_map(Mutation::Truncate),
        (0..lines, 0..lines).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (0..lines).prop_map(Mutation::DeleteLine),
        (0..lines).prop_map(Mutation::DuplicateLine),
        (0..lines, 0..HOSTILE_VALUES.len()).prop_map(|(l, v)| Mutation::ReplaceValue(l, v)),
        (0..SHIPPED.len(), any::<String>()).prop_map(|(at, s)| Mutation::Insert(at, s)),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut text = text.to_string();
    for m in mutations {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let n = lines.len().max(1);
        match m {
            Mutation::Truncate(at) => {
                let mut cut = (*at).min(text.len());
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                continue;
            }
            Mutation::Insert(at, s) => {
                let mut at = (*at).min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert_str(at, s);
                continue;
            }
            Mutation::SwapLines(a, b) if lines.len() > 1 => lines.swap(a % n, b % n),
            Mutation::DeleteLine(a) if !lines.is_empty() => {
                lines.remove(a % n);
            }
            Mutation::DuplicateLine(a) if !lines.is_empty() => {
                let line = lines[a % n].clone();
                lines.insert(a % n, line);
            }
            Mutation::ReplaceValue(a, v) if !lines.is_empty() => {
                let line = &mut lines[a % n];
                let key_end = line.find(": ").map_or(line.len(), |i| i + 2);
                line.truncate(key_end);
                line.push_str(HOSTILE_VALUES[*v]);
            }
            _ => {}
        }
        text = lines.join("\n");
        text.push('\n');
    }
    text
}

proptest! {
    // A CI smoke run: 256 mutated specs per run, each up to three mutations deep. Failures are
    // kept by proptest under proptest-regressions/ and replayed first on every later run.
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn a_mutated_spec_is_loaded_or_refused_with_a_diagnostic_never_a_panic(mutations in prop::collection::vec(mutation(), 1..4)) {
        let took = load_and_render("mutated.yaml", apply(SHIPPED, &mutations));
        prop_assert!(took < Duration::from_secs(5), "took {took:?}");
    }
}

/// The kept corpus: every file in tests/hostile-specs/ is read as a spec file is, loaded, and
/// any error rendered, each within seconds.
#[test]
fn every_file_in_the_hostile_corpus_is_refused_or_loaded_quickly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile-specs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/hostile-specs") {
        let path = entry.expect("an entry").path();
        let started = Instant::now();
        match Spec::load(&path, &Registry::aws(), &Default::default()) {
            Ok(_) => {}
            Err(e) => {
                let mut out = String::new();
                let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                    .with_width(100);
                handler.render_report(&mut out, &e).expect("a diagnostic renders");
                assert!(out.len() < 200_000, "{}: a diagnostic of {} bytes", path.display(), out.len());
            }
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{} took {:?}", path.display(), started.elapsed());
        seen += 1;
    }
    assert!(seen >= 6, "the corpus is there: {seen} files");
}

#[test]
fn an_alias_bomb_is_refused_within_bounds() {
    // A billion laughs: nine levels of ten aliases each.
    let mut text =
        String::from("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(",");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let took = load_and_render("bomb.yaml", text);
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    for text in [format!("resources: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)), {
        let mut t = String::from("resources:\n");
        for depth in 0..300 {
            t.push_str(&" ".repeat(depth + 1));
            t.push_str("a:\n");
        }
        t
    }] {
        let registry = Registry::aws();
        let err = Spec::parse(SpecSource::new("deep.yaml", text), &registry, &Overrides::none()).expect_err("refused");
        let shown = format!("{err:?}");
        // Ours for block nesting; saphyr's own parser limit for flow nesting.
        assert!(shown.contains("levels deep") || shown.contains("recursion limit exceeded"), "{shown}");
    }
}

#[test]
fn a_line_of_a_hundred_thousand_characters_gets_a_short_diagnostic() {
    let long = "x".repeat(100_000);
    let text = SHIPPED.replace("memory_size: 1024", &format!("memory_size: \"{long}\""));
    assert_ne!(text, SHIPPED, "the shipped spec sets memory_size: 1024");
    let registry = Registry::aws();
    let err = Spec::parse(SpecSource::new("long.yaml", text), &registry, &Overrides::none()).expect_err("refused");
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, &err)
        .expect("renders");
    assert!(out.contains("memory_size"), "{out}");
    assert!(out.contains("more characters"), "the value is abbreviated in the message: {out}");
}

#[test]
fn out_of_range_numbers_are_refused_before_any_call() {
    let registry = Registry::aws();
    for (value, shown) in [
        ("1099511627776", "AWS takes 128 to 10240 MB"),
        ("-5", "AWS takes 128 to 10240 MB"),
        ("99999999999999999999999", ""),
    ] {
        let text = SHIPPED.replacen("memory_size: 1024", &format!("memory_size: {value}"), 1);
        let err = Spec::parse(SpecSource::new("range.yaml", text), &registry, &Overrides::none().allowing_unset())
            .expect_err("refused");
        let shown_err = flat(&format!("{:?}", miette::Report::new(err)));
        assert!(shown_err.contains("memory_size") && shown_err.contains(shown), "{value}: {shown_err}");
    }
    let text = SHIPPED.replacen("timeout: ", "timeout: -1 #", 1);
    let err = Spec::parse(SpecSource::new("range.yaml", text), &registry, &Overrides::none().allowing_unset())
        .expect_err("refused");
    assert!(flat(&format!("{:?}", miette::Report::new(err))).contains("AWS takes 1 to 900 seconds"));
    // An integer without a range of its own, nested in a block, gets AWS's: 0 to 2^31-1.
    let text = SHIPPED.replacen("max_age_seconds: 3000", "max_age_seconds: -7", 1);
    assert_ne!(text, SHIPPED);
    let err = Spec::parse(SpecSource::new("range.yaml", text), &registry, &Overrides::none().allowing_unset())
        .expect_err("refused");
    let shown = flat(&format!("{:?}", miette::Report::new(err)));
    assert!(
        shown.contains("cors_rules[0].max_age_seconds of s3_bucket.uploads is -7: AWS takes 0 to 2147483647"),
        "{shown}"
    );
}

#[test]
fn a_key_written_twice_in_one_mapping_is_refused_naming_both_places() {
    // YAML keeps the last of two equal keys: the first bucket would vanish from the spec.
    let text =
        "resources:\n  s3_bucket:\n    uploads: { name: a }\n    assets: { name: b }\n    uploads: { name: c }\n";
    let registry = Registry::aws();
    let err =
        Spec::parse(SpecSource::new("dup.yaml", text.into()), &registry, &Overrides::none()).expect_err("refused");
    let shown = format!("{:?}", miette::Report::new(err));
    assert!(shown.contains("duplicate key `uploads`") && shown.contains("line 3"), "{shown}");
    // The same name in different mappings is fine.
    let ok = "resources:\n  s3_bucket:\n    b: { name: bbb }\n  sns_topic:\n    b: { name: bbb }\n";
    assert!(Spec::parse(SpecSource::new("ok.yaml", ok.into()), &registry, &Overrides::none()).is_ok());
}

/// A rendered diagnostic as one line of words (the renderer wraps at its width).
fn flat(text: &str) -> String {
    text.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ")
}

#[test]
fn a_100_kb_mapping_key_is_refused_with_its_line_and_column_not_a_panic() {
    let registry = Registry::aws();
    let key = "k".repeat(100_000);
    for text in [format!("{key}: 1\n"), format!("resources:\n  s3_bucket:\n    {key}:\n      name: b\n")] {
        let err = Spec::parse(SpecSource::new("long.yaml", text), &registry, &Overrides::none().allowing_unset())
            .expect_err("refused");
        let shown = flat(&format!("{:?}", miette::Report::new(err)));
        assert!(shown.contains("long.yaml") && shown.contains("line "), "{shown}");
    }
}

#[test]
fn a_list_or_a_mapping_where_a_single_value_belongs_is_refused_not_read_as_unset() {
    let registry = Registry::aws();
    for (from, to, named) in [
        ("timeout: 30", "timeout: [5]", "timeout"),
        ("name: ${var.THUMBING_TOPIC_NAME}${stage}", "name: {a: b}", "name"),
        ("tags: { app: cruddur }", "tags: [app]", "tags"),
        ("allowed_methods: [PUT]", "allowed_methods: {a: PUT}", "allowed_methods"),
    ] {
        assert!(SHIPPED.contains(from), "the shipped spec has `{from}`");
        let text = SHIPPED.replacen(from, to, 1);
        let err = Spec::parse(SpecSource::new("shape.yaml", text), &registry, &Overrides::none().allowing_unset())
            .expect_err(to);
        let shown = flat(&format!("{:?}", miette::Report::new(err)));
        assert!(
            shown.contains(named) && (shown.contains("not a list") || shown.contains("not a mapping")),
            "{to}: {shown}"
        );
    }
}
