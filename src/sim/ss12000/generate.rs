//! A synthetic municipality in SS 12000 v2.1 shape, deterministic from a seed, for the mock
//! server (demo, tests, benchmark). Every person is fictional: names come from short lists,
//! civic numbers are random but Luhn-valid and unique, usernames carry no name.
//!
//! Shape (specs/ss12000.md §5, §8): one huvudman; about one school unit per 1,000 persons
//! (GR, every fourth GY); ~45 % students with one enrolment for the current school year,
//! a class and a teaching group; ~48 % guardians (siblings share them); ~7 % staff with
//! duties (one Rektor per unit, teachers with Mentor assignments for classes). No
//! `eduPersonPrincipalNames`: Portvakt makes its own.

use super::mock::{Dataset, Kind};
use chrono::{Datelike, NaiveDate};
use std::collections::HashSet;
use std::fmt::Write as _;

/// The context URI of the demo usernames in `externalIdentifiers`.
pub const USERNAME_CONTEXT: &str = "urn:portvakt:demo:username";

/// Given names of the generated people (public for the people search benchmark).
pub const GIVEN_NAMES: &[&str] = &[
    "Åsa", "Alva", "Elsa", "Maja", "Ebba", "Saga", "Wilma", "Agnes", "Märta", "Linnéa", "Tove",
    "Ingrid", "Astrid", "Signe", "Ylva", "Klara", "Freja", "Lovisa", "Elin", "Karin", "Britt",
    "Anna", "Erik", "Lars", "Olle", "Björn", "Nils", "Oskar", "Hugo", "Elias", "Viktor", "Axel",
    "Måns", "Göran", "Östen", "Sture", "Lennart", "Anders", "Johan", "Emil", "Leo", "Sixten",
    "Ture", "Åke", "Sölve", "Ängla", "Örjan", "Kjell",
];

pub const FAMILY_NAMES: &[&str] = &[
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Svensson",
    "Gustafsson",
    "Öberg",
    "Ängström",
    "Åberg",
    "Lindqvist",
    "Sandberg",
    "Björk",
    "Löfgren",
    "Hägglund",
    "Sjöberg",
    "Ström",
    "Nyström",
    "Bäckström",
    "Forsberg",
    "Söderberg",
    "Åkesson",
    "Ekström",
    "Holmgren",
    "Lundgren",
    "Wallin",
    "Engström",
    "Öhman",
    "Älvström",
];

/// (name, mail domain, municipality code); fictional, codes outside the real range.
const TOWNS: &[(&str, &str, &str)] = &[
    ("Exempelby", "exempelby.se", "9901"),
    ("Gröntorp", "grontorp.se", "9902"),
    ("Åkerby", "akerby.se", "9903"),
    ("Älvhamn", "alvhamn.se", "9904"),
    ("Östersand", "ostersand.se", "9905"),
];

const SCHOOL_NAMES: &[&str] = &[
    "Björk",
    "Ek",
    "Lind",
    "Sjö",
    "Ängs",
    "Åsen",
    "Tallbacka",
    "Solberg",
    "Hög",
    "Norr",
    "Söder",
    "Väster",
    "Öster",
    "Strand",
    "Kvarn",
    "Lövsta",
    "Gärdes",
    "Hagby",
    "Mål",
    "Älv",
];

const PROGRAMMES: &[&str] = &["NA", "SA", "TE", "EK", "ES"];

const CLASS_SIZE: usize = 25;

/// splitmix64: small, fast and good enough for fictional data; no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn range(&mut self, lo: i64, hi_inclusive: i64) -> i64 {
        lo + self.below((hi_inclusive - lo + 1) as u64) as i64
    }

    fn per_mille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn uuid(&mut self) -> String {
        let bytes = ((self.next() as u128) << 64 | self.next() as u128).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .to_string()
    }
}

/// The Luhn check digit of the digits in `s` (personnummer and organisationsnummer rule).
pub fn luhn_digit(s: &str) -> u32 {
    let sum: u32 = s
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .enumerate()
        .map(|(i, d)| {
            let v = if i % 2 == 0 { d * 2 } else { d };
            v / 10 + v % 10
        })
        .sum();
    (10 - sum % 10) % 10
}

/// The school year `today` belongs to: Aug 18 – June 12. In the summer break (June 13 –
/// Aug 17) the coming year, so a generated municipality always has enrolments to show.
pub fn school_year(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let y = today.year();
    let md = (today.month(), today.day());
    let start_year = if md >= (6, 13) { y } else { y - 1 };
    let start = NaiveDate::from_ymd_opt(start_year, 8, 18).unwrap_or(today);
    let end = NaiveDate::from_ymd_opt(start_year + 1, 6, 12).unwrap_or(today);
    (start, end)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Student,
    Guardian,
    Staff,
}

struct Human {
    id: String,
    given: &'static str,
    family: &'static str,
    civic: String,
    username: String,
    protected: bool,
    role: Role,
    /// Unit index, school type, school year (students).
    enrolment: Option<(usize, &'static str, i64)>,
    /// (person index, relation type).
    responsibles: Vec<(usize, &'static str)>,
}

struct Unit {
    id: String,
    name: String,
    code: String,
    school_type: &'static str,
    years: std::ops::RangeInclusive<i64>,
    staff: Vec<usize>,
}

struct DutyRow {
    id: String,
    person: usize,
    unit: usize,
    role: &'static str,
    start: NaiveDate,
    mentor_of: Vec<String>,
}

struct GroupRow {
    id: String,
    name: String,
    kind: &'static str,
    unit: usize,
    members: Vec<usize>,
}

struct Gen {
    rng: Rng,
    civics: HashSet<u64>,
    humans: Vec<Human>,
    seq: [usize; 3],
}

impl Gen {
    fn civic(&mut self, birth_year: i64) -> String {
        loop {
            let month = self.rng.range(1, 12);
            let day = self.rng.range(1, 28);
            let serial = self.rng.below(1000);
            let short = format!("{:02}{month:02}{day:02}{serial:03}", birth_year % 100);
            let full = format!(
                "{birth_year:04}{month:02}{day:02}{serial:03}{}",
                luhn_digit(&short)
            );
            if let Ok(n) = full.parse::<u64>()
                && self.civics.insert(n)
            {
                return full;
            }
        }
    }

    fn human(&mut self, role: Role, birth_year: i64, family: Option<&'static str>) -> usize {
        let (prefix, slot) = match role {
            Role::Student => ("elev", 0),
            Role::Guardian => ("vh", 1),
            Role::Staff => ("pers", 2),
        };
        self.seq[slot] += 1;
        let h = Human {
            id: self.rng.uuid(),
            given: self.rng.pick(GIVEN_NAMES),
            family: family.unwrap_or_else(|| self.rng.pick(FAMILY_NAMES)),
            civic: self.civic(birth_year),
            username: format!("{prefix}{}", 1000 + self.seq[slot]),
            // About 0.2 % live at a protected address.
            protected: self.rng.per_mille(2),
            role,
            enrolment: None,
            responsibles: Vec::new(),
        };
        self.humans.push(h);
        self.humans.len() - 1
    }
}

/// A municipality of about `persons` Person objects (students, guardians and staff).
pub fn generate(seed: u64, persons: usize, today: NaiveDate) -> Dataset {
    let (sy_start, sy_end) = school_year(today);
    let stamp_day = today.pred_opt().unwrap_or(today);
    let stamp = stamp_day
        .and_hms_opt(2, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp());
    let stamp_text = super::mock::rfc3339(stamp);
    let mut g = Gen {
        rng: Rng(seed ^ 0x5EED_5EED_5EED_5EED),
        civics: HashSet::with_capacity(persons),
        humans: Vec::with_capacity(persons + 8),
        seq: [0; 3],
    };
    let (town, domain, municipality) = g.rng.pick(TOWNS);
    let huvudman_id = g.rng.uuid();
    let org_short = format!("212000{:03}", g.rng.below(1000));
    let org_number = format!(
        "{}-{}{}",
        &org_short[..6],
        &org_short[6..],
        luhn_digit(&org_short)
    );

    let unit_count = (persons / 1000).max(2);
    let staff_target = (persons * 7 / 100).max(unit_count * 3);
    let student_target = (persons * 45 / 100).max(unit_count);
    let guardian_target = persons.saturating_sub(staff_target + student_target);

    let mut codes = HashSet::new();
    let mut units = Vec::with_capacity(unit_count);
    for i in 0..unit_count {
        let gy = i % 4 == 1;
        let code = loop {
            let c = g.rng.range(10_000_000, 99_999_999).to_string();
            if codes.insert(c.clone()) {
                break c;
            }
        };
        let base = SCHOOL_NAMES[i % SCHOOL_NAMES.len()];
        let round = i / SCHOOL_NAMES.len();
        let mut name = if gy {
            format!("{base} gymnasium")
        } else {
            format!("{base}skolan")
        };
        if round > 0 {
            let _ = write!(name, " {}", round + 1);
        }
        units.push(Unit {
            id: g.rng.uuid(),
            name,
            code,
            school_type: if gy { "GY" } else { "GR" },
            years: if gy { 1..=3 } else { 1..=9 },
            staff: Vec::new(),
        });
    }

    // Students come in families that share one or two guardians.
    let sy = i64::from(sy_start.year());
    let mut students = 0;
    let mut guardians = 0;
    while students < student_target {
        let kids = match g.rng.below(100) {
            0..50 => 1,
            50..85 => 2,
            _ => 3,
        }
        .min(student_target - students);
        let want = if g.rng.per_mille(800) { 2 } else { 1 };
        let n_guardians = want.min(guardian_target - guardians);
        let family = g.rng.pick(FAMILY_NAMES);
        let mut parents = Vec::new();
        for _ in 0..n_guardians {
            let born = g.rng.range(sy - 55, sy - 28);
            parents.push(g.human(Role::Guardian, born, Some(family)));
            guardians += 1;
        }
        if parents.is_empty() && guardians > 0 {
            // The guardian budget is spent: share an existing guardian.
            let any = g.humans.iter().rposition(|h| h.role == Role::Guardian);
            parents.extend(any);
        }
        for _ in 0..kids {
            let unit = students % unit_count;
            let u = &units[unit];
            let year = g.rng.range(*u.years.start(), *u.years.end());
            // Year y of grundskola starts the autumn the child turns 6 + y.
            let born = if u.school_type == "GY" {
                sy - 15 - year
            } else {
                sy - 6 - year
            };
            let school_type = u.school_type;
            let s = g.human(Role::Student, born, Some(family));
            g.humans[s].enrolment = Some((unit, school_type, year));
            g.humans[s].responsibles = parents.iter().map(|&p| (p, "Vårdnadshavare")).collect();
            if g.rng.per_mille(10)
                && let Some(other) = g.humans[..parents.first().copied().unwrap_or(s)]
                    .iter()
                    .rposition(|h| h.role == Role::Guardian)
            {
                g.humans[s].responsibles.push((other, "Annan ansvarig"));
            }
            students += 1;
        }
    }

    let mut duties = Vec::new();
    for i in 0..staff_target {
        let unit = i % unit_count;
        let born = g.rng.range(sy - 64, sy - 24);
        let p = g.human(Role::Staff, born, None);
        let role = match units[unit].staff.len() {
            0 => "Rektor",
            1 => "Skoladministratör",
            n if n % 12 == 2 => "Kurator",
            _ => "Lärare",
        };
        units[unit].staff.push(duties.len());
        let start_year = g.rng.range(sy - 12, sy) as i32;
        duties.push(DutyRow {
            id: g.rng.uuid(),
            person: p,
            unit,
            role,
            start: NaiveDate::from_ymd_opt(start_year, 8, 1).unwrap_or(sy_start),
            mentor_of: Vec::new(),
        });
    }

    // At least one protected identity in any real-sized municipality.
    if persons >= 100
        && !g.humans.iter().any(|h| h.protected)
        && let Some(first) = g.humans.iter_mut().find(|h| h.role == Role::Student)
    {
        first.protected = true;
    }

    // Classes of at most CLASS_SIZE per unit and year, one teaching group per unit and year.
    let mut by_unit_year: Vec<Vec<Vec<usize>>> =
        units.iter().map(|_| vec![Vec::new(); 10]).collect();
    for (i, h) in g.humans.iter().enumerate() {
        if let Some((unit, _, year)) = h.enrolment {
            by_unit_year[unit][year as usize].push(i);
        }
    }
    let mut groups = Vec::new();
    for (ui, years) in by_unit_year.iter().enumerate() {
        let teachers: Vec<usize> = units[ui]
            .staff
            .iter()
            .copied()
            .filter(|&d| duties[d].role == "Lärare")
            .collect();
        let mut class_no = 0;
        for (year, members) in years.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            for (ci, chunk) in members.chunks(CLASS_SIZE).enumerate() {
                let letter = char::from(b'A' + (ci % 26) as u8);
                let name = if units[ui].school_type == "GY" {
                    format!("{}{year}{letter}", PROGRAMMES[ci % PROGRAMMES.len()])
                } else {
                    format!("{year}{letter}")
                };
                let id = g.rng.uuid();
                if !teachers.is_empty() {
                    duties[teachers[class_no % teachers.len()]]
                        .mentor_of
                        .push(id.clone());
                }
                class_no += 1;
                groups.push(GroupRow {
                    id,
                    name,
                    kind: "Klass",
                    unit: ui,
                    members: chunk.to_vec(),
                });
            }
            groups.push(GroupRow {
                id: g.rng.uuid(),
                name: format!("Engelska {year}"),
                kind: "Undervisning",
                unit: ui,
                members: members.iter().copied().step_by(2).collect(),
            });
        }
    }

    // Serialise once, straight to JSON text.
    let meta = format!(r#""meta":{{"created":"{stamp_text}","modified":"{stamp_text}"}}"#);
    let mut data = Dataset::new();
    let mut o = String::new();
    let _ = write!(
        o,
        r#"{{"id":"{huvudman_id}",{meta},"displayName":"{town} kommun","organisationType":"Huvudman","organisationNumber":"{org_number}","municipalityCode":"{municipality}","startDate":"2000-01-01"}}"#
    );
    data.insert_json(Kind::Organisation, &huvudman_id, stamp, o);
    for u in &units {
        let o = format!(
            r#"{{"id":"{}",{meta},"displayName":"{}","organisationType":"Skolenhet","schoolUnitCode":"{}","schoolTypes":["{}"],"municipalityCode":"{municipality}","parentOrganisation":{{"id":"{huvudman_id}"}},"startDate":"2000-08-01"}}"#,
            u.id, u.name, u.code, u.school_type
        );
        data.insert_json(Kind::Organisation, &u.id, stamp, o);
    }
    let mut p = String::with_capacity(1024);
    for h in &g.humans {
        p.clear();
        let _ = write!(
            p,
            r#"{{"id":"{}",{meta},"givenName":"{}","familyName":"{}","externalIdentifiers":[{{"value":"{}","context":"{USERNAME_CONTEXT}","globallyUnique":false}}],"civicNo":{{"value":"{}","nationality":"SE"}},"securityMarking":"{}","personStatus":"Aktiv""#,
            h.id,
            h.given,
            h.family,
            h.username,
            h.civic,
            if h.protected {
                "Skyddad folkbokföring"
            } else {
                "Ingen"
            }
        );
        match h.role {
            Role::Student => {
                let _ = write!(
                    p,
                    r#","emails":[{{"value":"{}@elev.{domain}","type":"Skola elev"}}]"#,
                    h.username
                );
            }
            Role::Staff => {
                let _ = write!(
                    p,
                    r#","emails":[{{"value":"{}@{domain}","type":"Skola personal"}}]"#,
                    h.username
                );
            }
            Role::Guardian => {}
        }
        if let Some((unit, school_type, year)) = h.enrolment {
            let _ = write!(
                p,
                r#","enrolments":[{{"enroledAt":{{"id":"{}"}},"schoolType":"{school_type}","schoolYear":{year},"startDate":"{sy_start}","endDate":"{sy_end}"}}]"#,
                units[unit].id
            );
        }
        if !h.responsibles.is_empty() {
            p.push_str(r#","responsibles":["#);
            for (i, (r, rel)) in h.responsibles.iter().enumerate() {
                if i > 0 {
                    p.push(',');
                }
                let _ = write!(
                    p,
                    r#"{{"person":{{"id":"{}"}},"relationType":"{rel}"}}"#,
                    g.humans[*r].id
                );
            }
            p.push(']');
        }
        p.push('}');
        data.insert_json(Kind::Person, &h.id, stamp, p.clone());
    }
    for gr in &groups {
        let u = &units[gr.unit];
        let mut j = String::with_capacity(200 + gr.members.len() * 100);
        let _ = write!(
            j,
            r#"{{"id":"{}",{meta},"displayName":"{}","groupType":"{}","schoolType":"{}","organisation":{{"id":"{}"}},"startDate":"{sy_start}","endDate":"{sy_end}","groupMemberships":["#,
            gr.id, gr.name, gr.kind, u.school_type, u.id
        );
        for (i, m) in gr.members.iter().enumerate() {
            if i > 0 {
                j.push(',');
            }
            let _ = write!(
                j,
                r#"{{"person":{{"id":"{}"}},"startDate":"{sy_start}","endDate":"{sy_end}"}}"#,
                g.humans[*m].id
            );
        }
        j.push_str("]}");
        data.insert_json(Kind::Group, &gr.id, stamp, j);
    }
    for d in &duties {
        let mut j = String::with_capacity(400);
        let _ = write!(
            j,
            r#"{{"id":"{}",{meta},"person":{{"id":"{}"}},"dutyAt":{{"id":"{}"}},"dutyRole":"{}","dutyPercent":100,"startDate":"{}""#,
            d.id, g.humans[d.person].id, units[d.unit].id, d.role, d.start
        );
        if !d.mentor_of.is_empty() {
            j.push_str(r#","assignmentRole":["#);
            for (i, group) in d.mentor_of.iter().enumerate() {
                if i > 0 {
                    j.push(',');
                }
                let _ = write!(
                    j,
                    r#"{{"group":{{"id":"{group}"}},"assignmentRoleType":"Mentor","startDate":"{sy_start}","endDate":"{sy_end}"}}"#
                );
            }
            j.push(']');
        }
        j.push('}');
        data.insert_json(Kind::Duty, &d.id, stamp, j);
    }
    data
}

#[cfg(test)]
mod tests;
