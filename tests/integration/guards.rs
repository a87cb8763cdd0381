//! Guards that keep the seams in place: checks of the source tree, not of behaviour.
//!
//! - The engine (`src/{plan,apply,cli,state,spec,graph}`) names no resource kind and no kind's
//!   attribute outside comments and tests: what a kind needs the engine to do goes through a
//!   facet (src/provider/facets), never through a `== "lambda_function"`.
//! - Every `.rs` file in the workspace is compiled into some target: a test file nobody declares
//!   is a test that never runs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cruddur_infra::provider::Registry;

/// The engine's directories, where no kind is named.
const ENGINE: &[&str] = &["plan", "apply", "cli", "state", "spec", "graph", "run.rs"];

/// String literals of the engine that are also some kind's attribute name, each with the one
/// file where it is the engine's own word (a JSON key of our formats, a clap argument): the
/// word is allowed there and nowhere else, so a new use is reviewed.
const ENGINE_WORDS: &[(&str, &str)] = &[
    // Keys of the drift and plan JSON documents, and of the apply --json stream.
    ("action", "plan/drift.rs"),
    ("action", "plan/json.rs"),
    ("action", "cli/events.rs"),
    ("name", "plan/json.rs"),
    ("policy", "plan/json.rs"),
    ("principal", "plan/json.rs"),
    // The build's own events (build::BuildEvents) in the apply --json stream.
    ("code_sha256", "cli/events.rs"),
    ("source", "cli/events.rs"),
    ("architecture", "cli/events.rs"),
    // `output` prints a name column.
    ("name", "cli/output.rs"),
    // A variable's and a JSON Schema's description and type.
    ("description", "spec/variables.rs"),
    ("description", "spec/json_schema.rs"),
    // An output's description, written back in spec syntax for `undo`.
    ("description", "spec/recorded.rs"),
    ("type", "spec/json_schema.rs"),
    ("type", "cli/events.rs"),
    // The state document's format version.
    ("version", "state/mod.rs"),
    // --target, and watch's words for what a plan does.
    ("target", "cli/plan.rs"),
    ("target", "cli/apply.rs"),
    ("target", "cli/destroy.rs"),
    ("target", "cli/watch.rs"),
    ("replaced", "cli/watch.rs"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literals of Rust source outside comments, with their line numbers. Enough of a
/// lexer for our code: line and block comments, raw strings, escapes, char literals and
/// lifetimes.
fn string_literals(source: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = source.chars().collect();
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && at(i + 1) == '/') {
                line += usize::from(chars[i] == '\n');
                i += 1;
            }
            i += 2;
        } else if c == 'r'
            && (at(i + 1) == '"' || (at(i + 1) == '#' && matches!(at(i + 2), '"' | '#')))
            && !at(i.wrapping_sub(1)).is_alphanumeric()
        {
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            let start = i + 2 + hashes;
            let mut j = start;
            let closes = |j: usize| chars[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#');
            while j < chars.len() && !closes(j) {
                j += 1;
            }
            let text: String = chars[start..j.min(chars.len())].iter().collect();
            out.push((line, text.clone()));
            line += text.matches('\n').count();
            i = j + 1 + hashes;
        } else if c == '"' {
            let (start, mut j) = (line, i + 1);
            let mut text = String::new();
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    text.push(chars[j]);
                    j += 1;
                }
                line += usize::from(at(j) == '\n');
                text.push(at(j));
                j += 1;
            }
            out.push((start, text));
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('a', '\n', '"'), or a lifetime ('a) that has no closing quote.
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The part of a file that is not a `#[cfg(test)]` module (they come last in our files).
fn without_tests(source: &str) -> &str {
    source.find("#[cfg(test)]").map_or(source, |at| &source[..at])
}

#[test]
fn the_lexer_finds_strings_and_skips_comments_chars_and_lifetimes() {
    let source = "// \"commented\"\nfn f<'a>(x: &'a str) -> char { let q = '\"'; /* \"block\" */ \
                  g(\"one\", r#\"two \"x\"\"#, \"th\\\"ree\") }\n";
    let found: Vec<String> = string_literals(source).into_iter().map(|(_, s)| s).collect();
    assert_eq!(found, ["one", "two \"x\"", "th\\\"ree"]);
}

#[test]
fn the_engine_names_no_resource_kind_and_no_kinds_attribute() {
    let registry = Registry::aws();
    let kinds: BTreeSet<&str> = registry.names().collect();
    let attributes: BTreeSet<&str> =
        kinds.iter().filter_map(|k| registry.schema(k)).flat_map(|s| s.attributes.iter().map(|a| a.name)).collect();
    assert!(kinds.contains("lambda_function") && attributes.contains("code_sha256"), "the registry is read");
    let src = root().join("src");
    let mut leaks = Vec::new();
    let mut used_allowances = BTreeSet::new();
    for dir in ENGINE {
        let mut files = Vec::new();
        let path = src.join(dir);
        if path.is_file() {
            files.push(path);
        } else {
            rust_files(&path, &mut files);
        }
        for file in files.iter().filter(|f| !f.to_string_lossy().ends_with("tests.rs")) {
            let rel = file.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(file).expect("readable");
            for (line, literal) in string_literals(without_tests(&text)) {
                let what = if kinds.contains(literal.as_str()) {
                    "the kind"
                } else if attributes.contains(literal.as_str()) {
                    if ENGINE_WORDS.contains(&(literal.as_str(), rel.as_str())) {
                        used_allowances.insert((literal.clone(), rel.clone()));
                        continue;
                    }
                    "the attribute"
                } else {
                    continue;
                };
                leaks.push(format!("src/{rel}:{line}: {what} \"{literal}\""));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "the engine names kinds or their attributes; move the logic into a facet of the kind:\n{}",
        leaks.join("\n")
    );
    let stale: Vec<_> =
        ENGINE_WORDS.iter().filter(|(w, f)| !used_allowances.contains(&(w.to_string(), f.to_string()))).collect();
    assert!(stale.is_empty(), "allowances no longer needed, remove them: {stale:?}");
}

/// The `mod` names a module file declares (`mod x;`, `pub mod x;`, `pub(crate) mod x;`).
fn declared_modules(source: &str) -> BTreeSet<String> {
    source
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//"))
        .filter_map(|l| {
            let l = l.strip_prefix("pub ").or_else(|| l.strip_prefix("pub(crate) ")).unwrap_or(l);
            l.strip_prefix("mod ")?.strip_suffix(';').map(str::to_string)
        })
        .collect()
}

/// Whether cargo builds `file` as the root of a target of the package at `package`
/// (auto-discovered: src/lib.rs, src/main.rs, src/bin/*, tests/*, tests/*/main.rs, examples/*,
/// benches/*).
fn is_target_root(package: &Path, file: &Path) -> bool {
    let rel = file.strip_prefix(package).expect("in the package");
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    matches!(
        parts.as_slice(),
        ["src", "lib.rs" | "main.rs"]
            | ["src", "bin", _]
            | ["tests" | "examples" | "benches", _]
            | ["tests" | "examples" | "benches", _, "main.rs"]
    )
}

/// The file that must declare `file` as a module: its directory's mod.rs, lib.rs or main.rs,
/// or for `dir/mod.rs` (and `dir/x.rs` beside a `dir.rs`) the parent's.
fn declaring_files(file: &Path) -> Vec<PathBuf> {
    let dir = file.parent().expect("in a directory");
    let is_mod_rs = file.file_name().is_some_and(|n| n == "mod.rs");
    let (home, _) = if is_mod_rs { (dir.parent().expect("parent"), ()) } else { (dir, ()) };
    let mut candidates: Vec<PathBuf> = ["mod.rs", "lib.rs", "main.rs"].iter().map(|n| home.join(n)).collect();
    if let Some(name) = home.file_name() {
        candidates.push(home.with_file_name(format!("{}.rs", name.to_string_lossy())));
    }
    candidates.into_iter().filter(|c| c != file && c.exists()).collect()
}

fn module_name(file: &Path) -> String {
    if file.file_name().is_some_and(|n| n == "mod.rs") {
        file.parent().and_then(Path::file_name).expect("named").to_string_lossy().into_owned()
    } else {
        file.file_stem().expect("named").to_string_lossy().into_owned()
    }
}

/// The workspace's packages: the engine, the Lambdas and the tools.
fn packages(root: &Path) -> Vec<PathBuf> {
    let mut packages = vec![root.to_path_buf()];
    for group in ["lambdas", "tools"] {
        let entries = std::fs::read_dir(root.join(group)).expect("workspace members");
        packages.extend(entries.flatten().map(|e| e.path()).filter(|p| p.join("Cargo.toml").exists()));
    }
    packages
}

#[test]
fn every_package_takes_the_workspace_lints_which_deny_unsafe_code() {
    let root = root();
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    assert!(workspace.contains("[workspace.lints.rust]\nunsafe_code = \"deny\""), "the workspace denies unsafe");
    for package in packages(&root) {
        let manifest = std::fs::read_to_string(package.join("Cargo.toml")).expect("Cargo.toml");
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "{} does not take the workspace lints",
            package.display()
        );
    }
}

#[test]
fn every_rust_file_in_the_workspace_is_compiled_into_a_target() {
    let root = root();
    let packages = packages(&root);
    let mut orphans = Vec::new();
    let mut checked = 0;
    for package in &packages {
        let mut files = Vec::new();
        for dir in ["src", "tests", "examples", "benches"] {
            rust_files(&package.join(dir), &mut files);
        }
        for file in files {
            checked += 1;
            if is_target_root(package, &file) {
                continue;
            }
            let name = module_name(&file);
            let declared = declaring_files(&file)
                .iter()
                .any(|d| declared_modules(&std::fs::read_to_string(d).unwrap_or_default()).contains(&name));
            if !declared {
                orphans.push(file.strip_prefix(&root).expect("in the workspace").display().to_string());
            }
        }
    }
    assert!(checked > 50, "only {checked} files seen: is the walk broken?");
    assert!(
        orphans.is_empty(),
        "files no target compiles (declare them with `mod`, or delete them):\n{}",
        orphans.join("\n")
    );
}
