//! The daemon crate's modules in layers that only point down (docs/design.md draws them): a
//! module may use only modules of a lower layer, so an import that points up, or two modules
//! that use each other, fail here. Test code (`#[cfg(test)] mod ...`, `tests.rs`) may use
//! anything.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The crate's top-level modules, lowest layer first. A module may use the modules of the
/// layers before its own, none of its own layer (they are independent), none after.
const LAYERS: &[&[&str]] = &[
    // Leaves: the config file's types, systemd's protocols, the private bus, the arguments.
    &["config", "systemd", "privatebus", "cli"],
    // The pure core: events and time in, effects out.
    &["core"],
    // Around the core: its files, the API's names for its values, who may call, the KUKSA
    // client's connection and retry rules.
    &["persist", "names", "access", "kuksa"],
    // The actuator backends (the mock is one).
    &["backend"],
    // The engine that owns the core; the fail-safe that stops every backend on a panic.
    &["engine", "failsafe"],
    // Edges: the D-Bus API and the vehicle signals from the broker feed the engine; the trace
    // replayer and the mock seat provider are tools on top of the backends.
    &["edge", "signals", "trace", "mockseat"],
    &["walksim"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The source with comments, string and char literals blanked out (so that a path in a doc
/// comment or a message is not an import).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push(b[i]);
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == b'"'
                        && b[j + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&c| c == b'#')
                            .count()
                            == hashes
                    {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.extend_from_slice(b"\"\"");
                i = j;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.extend_from_slice(b"\"\"");
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{..}'), or a lifetime ('a): kept as is.
                if b.get(i + 1) == Some(&b'\\') {
                    let mut j = i + 2;
                    while j < b.len() && b[j] != b'\'' {
                        j += 1;
                    }
                    i = j + 1;
                    out.extend_from_slice(b"' '");
                } else if let Some(end) = src[i + 1..].char_indices().nth(1)
                    && src[i + 1 + end.0..].starts_with('\'')
                {
                    i += 1 + end.0 + 1;
                    out.extend_from_slice(b"' '");
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `code` without its `#[cfg(test)]` items (a test module may use anything).
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        // The item ends at its `;` (a `mod tests;` or a `use`), or where its braces close.
        let semi = item.find(';');
        let brace = item.find('{');
        let end = match (semi, brace) {
            (Some(s), Some(b)) if s < b => s + 1,
            (_, Some(b)) => {
                let mut depth = 0;
                let mut end = item.len();
                for (k, c) in item[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(s), None) => s + 1,
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The top-level modules `code` names through `crate::`.
fn uses(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    let mut at = 0;
    while let Some(k) = code[at..].find("crate::") {
        let start = at + k;
        at = start + "crate::".len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = code[at..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the names at depth 0 of the group.
            let mut depth = 0;
            let mut expect_name = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => expect_name = true,
                    c if expect_name && depth == 0 && (c.is_ascii_alphabetic() || c == '_') => {
                        found.insert(ident(&group[k..]));
                        expect_name = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// Every source file of the library: (its top-level module, path, text).
fn sources(root: &Path) -> Vec<(String, PathBuf, String)> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, files);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let src = root.join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for p in files {
        let Ok(rel) = p.strip_prefix(&src) else {
            continue;
        };
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        // The binaries (main.rs, bin/) and the crate root are not modules of the library.
        if first == "main.rs" || first == "lib.rs" || first == "bin" {
            continue;
        }
        if p.file_name().is_some_and(|f| f == "tests.rs") {
            continue;
        }
        let module = first.trim_end_matches(".rs").to_string();
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        out.push((module, rel.to_path_buf(), text));
    }
    out
}

/// What breaks the layering in `files`, one line each.
fn violations(files: &[(String, PathBuf, String)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (module, path, text) in files {
        let Some(own) = layer(module) else {
            bad.push(format!(
                "{}: module `{module}` is in no layer (add it to LAYERS)",
                path.display()
            ));
            continue;
        };
        for used in uses(&without_tests(&code_only(text))) {
            if used == *module {
                continue;
            }
            match layer(&used) {
                None => bad.push(format!(
                    "{}: uses `crate::{used}`, which is in no layer",
                    path.display()
                )),
                Some(l) if l >= own => bad.push(format!(
                    "{}: `{module}` uses `crate::{used}`: {}",
                    path.display(),
                    if l == own {
                        "a module of its own layer (they must not know each other)"
                    } else {
                        "a module of a higher layer"
                    }
                )),
                Some(_) => {}
            }
        }
    }
    bad
}

fn crate_sources() -> Vec<(String, PathBuf, String)> {
    sources(Path::new(env!("CARGO_MANIFEST_DIR")))
}

#[test]
fn every_module_uses_only_lower_layers() {
    let files = crate_sources();
    assert!(
        files.iter().any(|(m, _, _)| m == "core") && files.iter().any(|(m, _, _)| m == "edge"),
        "the sources were not found"
    );
    let bad = violations(&files);
    assert!(
        bad.is_empty(),
        "imports against the layers:\n{}",
        bad.join("\n")
    );
}

#[test]
fn an_upward_import_or_a_circle_is_caught() {
    let plant = |module: &str, line: &str| {
        let mut files = crate_sources();
        let f = files
            .iter_mut()
            .find(|(m, p, _)| m == module && p.ends_with("mod.rs"))
            .unwrap_or_else(|| panic!("no {module}/mod.rs"));
        f.2.push_str(line);
        violations(&files)
    };
    let up = plant("core", "\nuse crate::edge::Dbus;\n");
    assert!(
        up.iter().any(|v| v.contains("`core` uses `crate::edge`")),
        "{up:?}"
    );
    let grouped = plant(
        "backend",
        "\nuse crate::{config::Config, engine::{Call, Edge}};\n",
    );
    assert!(
        grouped
            .iter()
            .any(|v| v.contains("`backend` uses `crate::engine`")),
        "{grouped:?}"
    );
    let sideways = plant("edge", "\nfn f() { crate::signals::spawn(); }\n");
    assert!(
        sideways.iter().any(|v| v.contains("of its own layer")),
        "{sideways:?}"
    );
    // Not imports: a doc comment, a message, test code.
    let quiet = plant(
        "core",
        "\n/// see [`crate::edge`]\nconst S: &str = \"crate::edge\";\n#[cfg(test)]\nmod t { use crate::edge::Dbus; }\n",
    );
    assert_eq!(quiet, violations(&crate_sources()));
}
