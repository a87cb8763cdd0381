//! The documentation stays true to the code: the stack's graph picture is of the shipped spec,
//! and every link in the README and docs/ points at a file in the repository.

use std::path::{Path, PathBuf};

use crate::harness::Workdir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn the_graph_picture_is_of_the_shipped_spec() {
    let work = Workdir::new();
    let spec = format!("{ROOT}/specs/cruddur.yaml");
    let generated = work.run(&["graph", "--spec", &spec]).expect_code(0).stdout;
    let committed = std::fs::read_to_string(Path::new(ROOT).join("docs/graph.dot")).expect("docs/graph.dot");
    assert!(generated == committed, "the stack changed: run scripts/render-graph");
    let svg = std::fs::read_to_string(Path::new(ROOT).join("docs/graph.svg")).expect("docs/graph.svg");
    for line in committed.lines().filter(|l| l.contains("->")) {
        let from = line.trim().split('"').nth(1).expect("a quoted node");
        assert!(svg.contains(from), "docs/graph.svg lacks {from}: run scripts/render-graph");
    }
}

/// Markdown links `[text](target)` in `text`.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

#[test]
fn every_link_in_the_readme_and_docs_points_at_a_file_in_the_repository() {
    let root = Path::new(ROOT).canonicalize().expect("root");
    let mut pages: Vec<PathBuf> = vec![root.join("README.md")];
    pages.extend(
        std::fs::read_dir(root.join("docs"))
            .expect("docs/")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("readable");
        for link in links(&text) {
            let target = link.split('#').next().unwrap_or_default();
            if link.contains("://") || link.starts_with("mailto:") {
                broken.push(format!("{}: {link} points outside the repository", page.display()));
                continue;
            }
            if target.is_empty() {
                continue; // an anchor on the same page
            }
            let resolved = page.parent().expect("in a folder").join(target);
            match resolved.canonicalize() {
                Ok(p) if p.starts_with(&root) => {}
                Ok(_) => broken.push(format!("{}: {link} leaves the repository", page.display())),
                Err(_) => broken.push(format!("{}: {link} does not exist", page.display())),
            }
        }
        assert!(!text.contains("../shared"), "{} refers to notes outside the repository", page.display());
    }
    assert!(broken.is_empty(), "{broken:#?}");
    assert!(pages.len() >= 10, "the docs are found: {pages:?}");
}
