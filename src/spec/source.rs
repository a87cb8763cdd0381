//! The text of a spec file and the mapping from parser positions to byte spans for diagnostics.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};

/// One spec file's name and contents, shared by every diagnostic that points into it.
#[derive(Clone, Debug)]
pub struct SpecSource {
    path: PathBuf,
    text: Arc<String>,
    /// Byte offset of every character, present only when the text is not pure ASCII
    /// (the YAML parser counts characters, miette counts bytes).
    char_offsets: Option<Arc<Vec<usize>>>,
}

impl SpecSource {
    pub fn new(path: impl Into<PathBuf>, text: String) -> Self {
        let char_offsets = (!text.is_ascii()).then(|| {
            let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            offsets.push(text.len());
            Arc::new(offsets)
        });
        Self { path: path.into(), text: Arc::new(text), char_offsets }
    }

    pub fn read(path: &Path) -> std::io::Result<Self> {
        Ok(Self::new(path, std::fs::read_to_string(path)?))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// A miette source for diagnostics, named by the path as the user gave it.
    pub fn named(&self) -> NamedSource<String> {
        NamedSource::new(self.path.display().to_string(), self.text.as_ref().clone())
    }

    /// Byte offset of the character at `char_index`, clamped to the end of the text.
    pub fn byte_offset(&self, char_index: usize) -> usize {
        match &self.char_offsets {
            None => char_index.min(self.text.len()),
            Some(offsets) => offsets[char_index.min(offsets.len() - 1)],
        }
    }

    /// A span from character positions as the parser reports them.
    pub fn span(&self, start_char: usize, end_char: usize) -> SourceSpan {
        let start = self.byte_offset(start_char);
        let end = self.byte_offset(end_char.max(start_char)).max(start);
        SourceSpan::new(start.into(), end - start)
    }

    /// 1-based line and column of a byte offset, for messages that are not rendered by miette.
    pub fn line_col(&self, byte: usize) -> (usize, usize) {
        let before = &self.text[..byte.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}
