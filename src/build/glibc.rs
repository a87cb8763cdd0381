//! The glibc a Lambda `bootstrap` needs, read from the symbol versions of its ELF file.
//!
//! A binary built on a host with a newer glibc than the Lambda runtime's links symbols of that
//! newer version (`memcpy@GLIBC_2.38`, say) and dies at start on Lambda, long after the deploy
//! succeeded. The engine checks every zip it packages against the runtime's glibc, so a CI image
//! with a newer glibc cannot ship such a function.

use object::Endianness;
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, Sym};

/// A glibc version, as `GLIBC_major.minor` names it.
pub type GlibcVersion = (u32, u32);

/// The newest glibc version the binary needs, and one symbol that needs it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GlibcNeed {
    pub version: GlibcVersion,
    pub symbol: String,
}

/// The glibc a Lambda runtime provides, for the runtimes a `bootstrap` runs on; `None` for the
/// others (a managed language runtime runs no bootstrap of ours).
pub fn runtime_glibc(runtime: &str) -> Option<GlibcVersion> {
    match runtime {
        "provided.al2023" => Some((2, 34)),
        "provided.al2" => Some((2, 26)),
        _ => None,
    }
}

/// The newest `GLIBC_x.y` any undefined dynamic symbol of `elf` requires; `None` for a binary
/// that needs no glibc (static, or musl). An ELF file that cannot be read is an error.
pub fn newest_needed(elf: &[u8]) -> Result<Option<GlibcNeed>, String> {
    let file = ElfFile64::<Endianness>::parse(elf).map_err(|e| format!("not a 64-bit ELF file: {e}"))?;
    let endian = file.endian();
    let sections = file.elf_header().sections(endian, elf).map_err(|e| e.to_string())?;
    let Some(versions) = sections.versions(endian, elf).map_err(|e| e.to_string())? else { return Ok(None) };
    let symbols = sections.symbols(endian, elf, elf::SHT_DYNSYM).map_err(|e| e.to_string())?;
    let mut newest: Option<GlibcNeed> = None;
    for (index, symbol) in symbols.enumerate() {
        if !symbol.is_undefined(endian) {
            continue;
        }
        let version = versions.version(versions.version_index(endian, index).index()).map_err(|e| e.to_string())?;
        let Some(version) = version.and_then(|v| parse_version(v.name())) else { continue };
        if newest.as_ref().is_none_or(|n| version > n.version) {
            let name = symbols.symbol_name(endian, symbol).map_err(|e| e.to_string())?;
            newest = Some(GlibcNeed { version, symbol: String::from_utf8_lossy(name).into_owned() });
        }
    }
    Ok(newest)
}

/// `GLIBC_2.34` as (2, 34); other version names (`GCC_3.0`, `GLIBC_PRIVATE`) as `None`.
fn parse_version(name: &[u8]) -> Option<GlibcVersion> {
    let rest = std::str::from_utf8(name).ok()?.strip_prefix("GLIBC_")?;
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_are_read_as_glibc_versions_or_ignored() {
        assert_eq!(parse_version(b"GLIBC_2.34"), Some((2, 34)));
        assert_eq!(parse_version(b"GLIBC_2.2.5"), Some((2, 2)));
        assert_eq!(parse_version(b"GLIBC_2"), Some((2, 0)));
        assert_eq!(parse_version(b"GLIBC_PRIVATE"), None);
        assert_eq!(parse_version(b"GCC_3.0"), None);
    }

    #[test]
    fn the_test_binary_itself_names_its_newest_glibc_symbol() {
        // This very test binary is a dynamically linked glibc program: it needs some GLIBC_2.x
        // and names a symbol for it; a file that is not ELF is refused.
        let exe = std::fs::read(std::env::current_exe().expect("the test binary")).expect("readable");
        let need = newest_needed(&exe).expect("an ELF file").expect("linked against glibc");
        assert_eq!(need.version.0, 2);
        assert!(!need.symbol.is_empty());
        assert!(newest_needed(b"#!/bin/sh\n").is_err());
    }

    #[test]
    fn runtimes_name_their_glibc() {
        assert_eq!(runtime_glibc("provided.al2023"), Some((2, 34)));
        assert_eq!(runtime_glibc("provided.al2"), Some((2, 26)));
        assert_eq!(runtime_glibc("python3.12"), None);
    }
}
