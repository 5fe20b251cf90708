//! The architecture test: which module may name which. Reads every source file under src/,
//! collects the crate paths it names (`use crate::…` lines, grouped imports and inline
//! `crate::x::y` paths alike) and whether it names axum, and fails on a direction the table
//! forbids. docs/architecture.md shows the same table; change both together.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The fronts: each speaks HTTP to a party outside. They never import each other. (The
/// upstream pages are the login front's; `upstream` is a protocol client like `bankid`.)
const FRONTS: &[&str] = &["login", "oidc", "saml", "admin", "scim"];

/// The core: plain Rust values, no HTTP server. It imports neither axum, `web` nor a front.
/// `upstream` (the federation protocol clients) holds to the same.
const CORE: &[&str] = &[
    "authn",
    "directory",
    "storage",
    "keys",
    "sync",
    "upstream",
    "services",
];

/// What each module may name of the crate besides itself (`*` = anything). A module that
/// is not listed fails the test: a new module takes its place in the table.
const ALLOWED: &[(&str, &[&str])] = &[
    ("config", &[]),
    ("clock", &[]),
    // The process's counters: it names nothing of the crate, so anyone may record into it.
    ("metrics", &[]),
    ("web", &["config"]),
    // Log output: the format is a setting.
    ("logging", &["config"]),
    // The XML reader and XML signatures, shared by the SAML IdP and the upstream SAML client.
    ("xmlsec", &["keys"]),
    // Only the directory's model types (checked below), never its logic.
    ("storage", &["clock", "directory"]),
    ("keys", &["storage", "clock"]),
    ("directory", &["storage", "config", "clock", "keys"]),
    (
        "sync",
        &["directory", "storage", "config", "clock", "keys", "metrics"],
    ),
    ("bankid", &["keys", "config", "clock"]),
    ("upstream", &["keys", "config", "clock", "xmlsec"]),
    (
        "authn",
        &[
            "directory",
            "storage",
            "keys",
            "config",
            "clock",
            "bankid",
            "upstream",
            "metrics",
        ],
    ),
    // The registry of relying parties: the protocol fronts serve them, admin and cli manage them.
    (
        "services",
        &[
            "xmlsec",
            "authn",
            "directory",
            "storage",
            "keys",
            "config",
            "clock",
        ],
    ),
    (
        "login",
        &[
            "authn",
            "directory",
            "web",
            "keys",
            "config",
            "clock",
            "bankid",
            "upstream",
            "metrics",
        ],
    ),
    (
        "oidc",
        &[
            "services",
            "authn",
            "directory",
            "keys",
            "storage",
            "web",
            "config",
            "clock",
            "metrics",
        ],
    ),
    (
        "saml",
        &[
            "services",
            "xmlsec",
            "authn",
            "directory",
            "keys",
            "storage",
            "web",
            "config",
            "clock",
            "metrics",
        ],
    ),
    // The admin web UI: the core's public functions, never another front.
    (
        "admin",
        &[
            "services",
            "authn",
            "directory",
            "storage",
            "keys",
            "web",
            "config",
            "clock",
        ],
    ),
    (
        "sim",
        &[
            "web",
            "sync",
            "bankid",
            "directory",
            "keys",
            "config",
            "clock",
        ],
    ),
    ("scim", &["sync", "storage", "config"]),
    ("demo", &["*"]),
    ("app", &["*"]),
    ("cli", &["*"]),
    ("lib", &["*"]),
    ("main", &["*"]),
];

/// Functions at the crate root that any module may call.
const ROOT_ITEMS: &[&str] = &["error_chain"];

#[derive(Debug, Default)]
struct Names {
    /// Crate paths named, as segments after `crate::` (the first one or two).
    paths: BTreeSet<String>,
    axum: bool,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments, so a doc line naming a module is no import.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string (a URL) is rare in these files and keeps the line.
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths after each `crate::`, with `{a::b, c::{d, e}}` groups expanded.
fn names_of(code: &str) -> Names {
    let mut names = Names {
        axum: code.contains("axum::") || code.contains("use axum"),
        ..Default::default()
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        // `portvakt_crate::` or `foo_crate::` is not the crate.
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        expand(rest, String::new(), &mut names.paths);
    }
    names.paths.retain(|p| !p.is_empty());
    names
}

/// One use tree at the start of `s`: a path, or a path ending in a `{…}` group.
fn expand(s: &str, prefix: String, out: &mut BTreeSet<String>) {
    let s = s.trim_start();
    let path: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let after = &s[path.len()..];
    let Some(group) = after.strip_prefix('{') else {
        out.insert(format!("{prefix}{path}"));
        return;
    };
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                expand(&group[start..i], format!("{prefix}{path}"), out);
                return;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&group[start..i], format!("{prefix}{path}"), out);
                start = i + 1;
            }
            _ => {}
        }
    }
}

/// The top-level module a file belongs to: `src/authn/flow.rs` → `authn`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

fn head(path: &str) -> &str {
    path.split("::").next().unwrap_or(path)
}

fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in &files {
        let module = module_of(src, file);
        let shown = file.strip_prefix(src.parent().unwrap()).unwrap().display();
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == module) else {
            found.push(format!("{shown}: module `{module}` is not in the table"));
            continue;
        };
        let names = names_of(&code_of(&std::fs::read_to_string(file).unwrap()));
        if CORE.contains(&module.as_str()) && names.axum {
            found.push(format!("{shown}: `{module}` is core and names axum"));
        }
        for path in &names.paths {
            let target = head(path);
            if target == module || ROOT_ITEMS.contains(&target) || allowed.contains(&"*") {
                continue;
            }
            if FRONTS.contains(&module.as_str()) && FRONTS.contains(&target) {
                found.push(format!("{shown}: front `{module}` names front `{path}`"));
            } else if !allowed.contains(&target) {
                found.push(format!("{shown}: `{module}` may not name `crate::{path}`"));
            } else if module == "storage"
                && target == "directory"
                && !(path == "directory::model" || path.starts_with("directory::model::"))
            {
                found.push(format!(
                    "{shown}: storage names `crate::{path}`; only `directory::model` types"
                ));
            }
        }
    }
    found
}

#[test]
fn modules_import_only_in_the_allowed_directions() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "forbidden imports (see docs/architecture.md, \"Dependency direction\"):\n{}",
        found.join("\n")
    );
}

/// The test's own teeth: a front naming another front, the core naming axum or `web`, and
/// storage naming directory logic are all caught, in `use` lines, groups and inline paths.
#[test]
fn the_check_catches_each_kind_of_forbidden_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for (file, text) in [
        ("oidc/a.rs", "use crate::saml::sp::Sp;\n"),
        (
            "authn/b.rs",
            "use axum::Router;\nfn f() { crate::web::paths::LOGIN; }\n",
        ),
        (
            "storage/c.rs",
            "use crate::{directory::{model::Person, roles::Dates}, clock::Clock};\n",
        ),
        (
            "config.rs",
            "// crate::authn in a comment is fine\nuse crate::authn::acr;\n",
        ),
        (
            "login/d.rs",
            "use crate::authn::Authn;\nuse crate::web::WebError;\n",
        ),
        ("newthing.rs", "fn f() {}\n"),
    ] {
        let path = src.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let found = violations(&src).join("\n");
    assert!(
        found.contains("front `oidc` names front `saml::sp::Sp`"),
        "{found}"
    );
    assert!(found.contains("`authn` is core and names axum"), "{found}");
    assert!(
        found.contains("`authn` may not name `crate::web::paths"),
        "{found}"
    );
    assert!(
        found.contains("storage names `crate::directory::roles"),
        "{found}"
    );
    assert!(!found.contains("crate::directory::model"), "{found}");
    assert!(!found.contains("clock"), "{found}");
    assert!(
        found.contains("`config` may not name `crate::authn::acr`"),
        "{found}"
    );
    assert!(!found.contains("in a comment"), "{found}");
    assert!(!found.contains("login"), "{found}");
    assert!(
        found.contains("module `newthing` is not in the table"),
        "{found}"
    );
}
