//! File import (`sync run --file PATH`): an SS 12000 JSON dump read as the whole truth of a
//! source, like a full run of the API. PATH is either a folder of the API's list responses
//! saved as files, named by what they list (`organisations.json`, `persons-2.json`, …), or
//! one JSON document with the arrays `organisations`, `persons`, `groups` and `duties`.
//!
//! Records are read by the API's own tolerant parser (`ss12000::parse`). A record it skips
//! (a required field missing, a date it cannot read) is a bad record, reported with its file
//! and line; whether bad records stop the import is the caller's choice.

use super::ss12000::parse::Entity;
use super::ss12000::types::{ParseReport, Snapshot};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::path::{Path, PathBuf};

/// The source name a file import records its people under unless told another.
pub const FILE_SOURCE: &str = "file";

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    /// The file is not JSON of the expected shape: serde_json's message names the line.
    #[error("{0} is not an SS 12000 list: {1}")]
    Json(String, serde_json::Error),
    #[error(
        "{0} has a \"data\" array, but its name does not say what it lists (name it \
         organisations*.json, persons*.json, groups*.json or duties*.json)"
    )]
    Unnamed(String),
    #[error(
        "{0} holds no SS 12000 lists (organisations*.json, persons*.json, groups*.json, \
         duties*.json)"
    )]
    Empty(String),
}

/// A record the parser skipped: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub file: String,
    pub line: usize,
    /// The parser's reason, e.g. `Person: missing id`.
    pub reason: String,
}

impl std::fmt::Display for BadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// What a dump holds: the snapshot of the good records, and the bad ones.
#[derive(Debug, Default)]
pub struct Dump {
    pub snapshot: Snapshot,
    pub bad: Vec<BadRecord>,
}

/// The lists a file may hold. `data` is a list response's array; what it lists comes from
/// the file's name. Other keys (`pageToken`, …) are ignored.
#[derive(Deserialize)]
struct Lists<'a> {
    #[serde(borrow, default)]
    data: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    organisations: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    persons: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    groups: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    duties: Option<Vec<&'a RawValue>>,
}

#[derive(Clone, Copy)]
enum Kind {
    Organisations,
    Persons,
    Groups,
    Duties,
}

impl Kind {
    /// What a file named `name` lists: the plural it begins with.
    fn of_file(name: &str) -> Option<Self> {
        [
            ("organisations", Kind::Organisations),
            ("persons", Kind::Persons),
            ("groups", Kind::Groups),
            ("duties", Kind::Duties),
        ]
        .into_iter()
        .find(|(plural, _)| name.starts_with(plural))
        .map(|(_, k)| k)
    }
}

/// Reads a dump: a folder of list files or one document.
pub fn read(path: &Path) -> Result<Dump, FileError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| FileError::Io(shown.clone(), e))?;
    let files: Vec<PathBuf> = if meta.is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| FileError::Io(shown.clone(), e))? {
            let p = entry.map_err(|e| FileError::Io(shown.clone(), e))?.path();
            if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
        // Pages in name order, so `persons-2.json` follows `persons-1.json`.
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut dump = Dump::default();
    let mut lists = 0;
    for file in &files {
        lists += read_file(file, &mut dump)?;
    }
    if lists == 0 {
        return Err(FileError::Empty(shown));
    }
    Ok(dump)
}

/// Adds one file's lists to `dump`; returns how many lists it held.
fn read_file(path: &Path, dump: &mut Dump) -> Result<usize, FileError> {
    let shown = path.display().to_string();
    let contents = std::fs::read_to_string(path).map_err(|e| FileError::Io(shown.clone(), e))?;
    // Windows tools often start a UTF-8 file with a byte order mark, which JSON does not allow.
    let text = contents.strip_prefix('\u{feff}').unwrap_or(&contents);
    let lists: Lists = serde_json::from_str(text).map_err(|e| FileError::Json(shown.clone(), e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut file = File {
        name: shown.clone(),
        text,
        line_starts: None,
    };
    let mut found = 0;
    if let Some(data) = lists.data {
        let kind = Kind::of_file(&name).ok_or_else(|| FileError::Unnamed(shown.clone()))?;
        file.add(kind, &data, dump);
        found += 1;
    }
    for (kind, list) in [
        (Kind::Organisations, lists.organisations),
        (Kind::Persons, lists.persons),
        (Kind::Groups, lists.groups),
        (Kind::Duties, lists.duties),
    ] {
        if let Some(list) = list {
            file.add(kind, &list, dump);
            found += 1;
        }
    }
    Ok(found)
}

/// One file being read: its text, and where its lines start (counted on the first bad
/// record, which most files never have).
struct File<'a> {
    name: String,
    text: &'a str,
    line_starts: Option<Vec<usize>>,
}

impl File<'_> {
    fn add(&mut self, kind: Kind, records: &[&RawValue], dump: &mut Dump) {
        let s = &mut dump.snapshot;
        match kind {
            Kind::Organisations => {
                self.parse(records, &mut s.organisations, &mut s.report, &mut dump.bad)
            }
            Kind::Persons => self.parse(records, &mut s.persons, &mut s.report, &mut dump.bad),
            Kind::Groups => self.parse(records, &mut s.groups, &mut s.report, &mut dump.bad),
            Kind::Duties => self.parse(records, &mut s.duties, &mut s.report, &mut dump.bad),
        }
    }

    fn parse<T: Entity>(
        &mut self,
        records: &[&RawValue],
        into: &mut Vec<T>,
        report: &mut ParseReport,
        bad: &mut Vec<BadRecord>,
    ) {
        for raw in records {
            let mut own = ParseReport::default();
            let parsed = serde_json::from_str(raw.get())
                .ok()
                .and_then(|v| T::from_value(v, &mut own));
            match parsed {
                Some(item) => into.push(item),
                None => {
                    let reason = own
                        .skipped
                        .keys()
                        .next()
                        .cloned()
                        .unwrap_or_else(|| format!("{}: unreadable record", T::NAME));
                    bad.push(BadRecord {
                        file: self.name.clone(),
                        line: self.line_of(raw),
                        reason,
                    });
                }
            }
            report.merge(own);
        }
    }

    /// The 1-based line on which `raw` (a slice of this file's text) begins.
    fn line_of(&mut self, raw: &RawValue) -> usize {
        let offset = raw.get().as_ptr() as usize - self.text.as_ptr() as usize;
        let starts = self.line_starts.get_or_insert_with(|| {
            self.text
                .bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1)
                .collect()
        });
        starts.partition_point(|&start| start <= offset) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const UNIT: &str = r#"{"id": "u1", "displayName": "Skolan", "organisationType": "Skolenhet",
        "schoolUnitCode": "12345678"}"#;

    #[test]
    fn a_folder_of_list_responses_and_one_document_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("dump");
        std::fs::create_dir(&folder).unwrap();
        write(
            &folder,
            "organisations.json",
            &format!(r#"{{"data": [{UNIT}], "pageToken": null}}"#),
        );
        write(
            &folder,
            "persons-1.json",
            r#"{"data": [{"id": "p1", "givenName": "Alva", "familyName": "Lind"}]}"#,
        );
        write(
            &folder,
            "persons-2.json",
            r#"{"data": [{"id": "p2", "givenName": "Erik", "familyName": "Berg"}]}"#,
        );
        write(&folder, "README.txt", "not read");
        let from_folder = read(&folder).unwrap();
        let doc = write(
            dir.path(),
            "all.json",
            &format!(
                r#"{{"organisations": [{UNIT}], "persons": [
                {{"id": "p1", "givenName": "Alva", "familyName": "Lind"}},
                {{"id": "p2", "givenName": "Erik", "familyName": "Berg"}}]}}"#
            ),
        );
        let from_doc = read(&doc).unwrap();
        for dump in [&from_folder, &from_doc] {
            assert!(dump.bad.is_empty());
            let ids: Vec<&str> = dump
                .snapshot
                .persons
                .iter()
                .map(|p| p.id.as_str())
                .collect();
            assert_eq!(ids, ["p1", "p2"]);
            assert_eq!(dump.snapshot.organisations.len(), 1);
        }
    }

    #[test]
    fn a_bad_record_is_named_by_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let doc = write(
            dir.path(),
            "register.json",
            "{\n  \"persons\": [\n    {\"id\": \"p1\", \"givenName\": \"A\", \"familyName\": \"B\"},\n    \
             {\"givenName\": \"No\", \"familyName\": \"Id\"},\n    \"not an object\"\n  ]\n}\n",
        );
        let dump = read(&doc).unwrap();
        assert_eq!(dump.snapshot.persons.len(), 1);
        // The same with a byte order mark before it: read, and the lines are the same.
        let text = std::fs::read_to_string(&doc).unwrap();
        std::fs::write(&doc, format!("\u{feff}{text}")).unwrap();
        let with_bom = read(&doc).unwrap();
        assert_eq!(with_bom.bad, dump.bad);
        let shown = doc.display().to_string();
        assert_eq!(
            dump.bad,
            [
                BadRecord {
                    file: shown.clone(),
                    line: 4,
                    reason: "Person: missing id".into()
                },
                BadRecord {
                    file: shown,
                    line: 5,
                    reason: dump.bad[1].reason.clone()
                },
            ]
        );
        assert!(dump.bad[1].reason.starts_with("Person: "), "{:?}", dump.bad);
    }

    #[test]
    fn what_is_not_a_dump_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let broken = write(dir.path(), "persons.json", "{\"data\": [\n{\"id\": ");
        let err = read(&broken).unwrap_err().to_string();
        assert!(
            err.contains("persons.json is not an SS 12000 list") && err.contains("line 2"),
            "{err}"
        );
        let unnamed = write(dir.path(), "export.json", r#"{"data": []}"#);
        assert!(matches!(read(&unnamed), Err(FileError::Unnamed(_))));
        let nothing = write(dir.path(), "other.json", r#"{"pageToken": null}"#);
        assert!(matches!(read(&nothing), Err(FileError::Empty(_))));
        let empty_dir = dir.path().join("empty");
        std::fs::create_dir(&empty_dir).unwrap();
        assert!(matches!(read(&empty_dir), Err(FileError::Empty(_))));
        assert!(matches!(
            read(&dir.path().join("missing")),
            Err(FileError::Io(..))
        ));
    }
}
