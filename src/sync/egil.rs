//! EGIL, the SCIM 2.0 profile of SS 12000:2018 (specs/egil-scim.md): the seven resource
//! types a push source sends, read strictly at the edge, and their mapping onto the SS 12000
//! facts the plan works with (User ↔ person, Employment ↔ duty, StudentGroup ↔ group,
//! SchoolUnit / SchoolUnitGroup / Organisation ↔ organisation; an Activity links teachers'
//! employments to groups, as a duty's assignments do).
//!
//! A resource is kept as the client sent it (`body`), so a GET returns what was pushed; the
//! typed [`Fact`] is what the directory learns from it.

use super::ss12000::types as ss;
use serde_json::{Map, Value};

/// The core User schema; the other resource types have only their SIS schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const SIS: &str = "urn:scim:schemas:extension:sis:school:1.0:";
/// The User extension's URN, also the key of its attributes in a User.
pub const USER_EXTENSION: &str = "urn:scim:schemas:extension:sis:school:1.0:User";

/// The assignment kind an Activity gives a teacher's duty for each of its groups.
pub const ACTIVITY_ASSIGNMENT: &str = "Undervisning";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Organisation,
    SchoolUnitGroup,
    SchoolUnit,
    User,
    Employment,
    StudentGroup,
    Activity,
}

impl Kind {
    /// In EGIL's send order: what a resource refers to comes before it.
    pub const ALL: [Kind; 7] = [
        Kind::Organisation,
        Kind::SchoolUnitGroup,
        Kind::SchoolUnit,
        Kind::User,
        Kind::Employment,
        Kind::StudentGroup,
        Kind::Activity,
    ];

    /// The resource type's name (`meta.resourceType`, the stored kind).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Organisation => "Organisation",
            Kind::SchoolUnitGroup => "SchoolUnitGroup",
            Kind::SchoolUnit => "SchoolUnit",
            Kind::User => "User",
            Kind::Employment => "Employment",
            Kind::StudentGroup => "StudentGroup",
            Kind::Activity => "Activity",
        }
    }

    /// The endpoint under the SCIM base, without its slash.
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::Organisation => "Organisations",
            Kind::SchoolUnitGroup => "SchoolUnitGroups",
            Kind::SchoolUnit => "SchoolUnits",
            Kind::User => "Users",
            Kind::Employment => "Employments",
            Kind::StudentGroup => "StudentGroups",
            Kind::Activity => "Activities",
        }
    }

    /// The main schema: a resource must list it in `schemas`.
    pub fn schema(self) -> String {
        match self {
            Kind::User => USER_SCHEMA.to_string(),
            k => format!("{SIS}{}", k.name()),
        }
    }

    pub fn from_endpoint(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.endpoint() == s)
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// Why a resource cannot be read: the body's structure (`invalidSyntax`) or a value
/// (`invalidValue`), with a message naming the attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    Syntax(String),
    Value(String),
}

/// A reference to another resource of the same source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ref {
    pub kind: Kind,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEnrolment {
    /// A SchoolUnit's id, or (as some senders do) its school unit code; resolved to the
    /// id before the directory sees it.
    pub unit: String,
    pub school_year: Option<i32>,
    pub school_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub user: String,
    pub relation_type: String,
}

/// What the directory learns from a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// An Organisation (a huvudman) or a SchoolUnitGroup.
    Org { display_name: String },
    SchoolUnit {
        display_name: String,
        code: String,
        organisation: Option<String>,
        group: Option<String>,
        school_types: Vec<String>,
    },
    User {
        user_name: String,
        given_name: String,
        family_name: String,
        emails: Vec<(String, Option<String>)>,
        enrolments: Vec<UserEnrolment>,
        civic_no: Option<String>,
        security_marking: bool,
        relations: Vec<Relation>,
    },
    Employment {
        employed_at: String,
        user: String,
        role: String,
    },
    StudentGroup {
        display_name: String,
        owner: String,
        group_type: Option<String>,
        school_type: Option<String>,
        members: Vec<String>,
    },
    Activity {
        owner: String,
        groups: Vec<String>,
        teachers: Vec<String>,
        parents: Vec<String>,
    },
}

/// A resource as read: its id, the attributes to store (without `id` and `meta`, which the
/// server owns) and its facts.
#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: Kind,
    pub id: String,
    pub body: Map<String, Value>,
    pub fact: Fact,
}

impl Resource {
    /// The key that must be unique among the source's resources of this kind: a User's
    /// userName (case-insensitively), a SchoolUnit's code.
    pub fn unique_key(&self) -> Option<String> {
        match &self.fact {
            Fact::User { user_name, .. } => Some(user_name.to_lowercase()),
            Fact::SchoolUnit { code, .. } => Some(code.clone()),
            _ => None,
        }
    }

    /// The resources this one refers to. An enrolment naming a school unit code instead
    /// of an id is resolved first (`resolve_enrolments`).
    pub fn refs(&self) -> Vec<Ref> {
        let r = |kind, id: &String| Ref {
            kind,
            id: id.clone(),
        };
        let mut out = Vec::new();
        match &self.fact {
            Fact::Org { .. } => {}
            Fact::SchoolUnit {
                organisation,
                group,
                ..
            } => {
                out.extend(organisation.iter().map(|o| r(Kind::Organisation, o)));
                out.extend(group.iter().map(|g| r(Kind::SchoolUnitGroup, g)));
            }
            Fact::User {
                enrolments,
                relations,
                ..
            } => {
                out.extend(enrolments.iter().map(|e| r(Kind::SchoolUnit, &e.unit)));
                out.extend(relations.iter().map(|x| r(Kind::User, &x.user)));
            }
            Fact::Employment {
                employed_at, user, ..
            } => {
                out.push(r(Kind::SchoolUnit, employed_at));
                out.push(r(Kind::User, user));
            }
            Fact::StudentGroup { owner, members, .. } => {
                out.push(r(Kind::SchoolUnit, owner));
                out.extend(members.iter().map(|m| r(Kind::User, m)));
            }
            Fact::Activity {
                owner,
                groups,
                teachers,
                parents,
            } => {
                out.push(r(Kind::SchoolUnit, owner));
                out.extend(groups.iter().map(|g| r(Kind::StudentGroup, g)));
                out.extend(teachers.iter().map(|t| r(Kind::Employment, t)));
                out.extend(parents.iter().map(|p| r(Kind::Activity, p)));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Replaces each enrolment's unit by the id `resolve` gives for it (a code → its
    /// SchoolUnit's id); an unknown one stays, and the reference check names it.
    pub fn resolve_enrolments(&mut self, resolve: impl Fn(&str) -> Option<String>) {
        if let Fact::User { enrolments, .. } = &mut self.fact {
            for e in enrolments {
                if let Some(id) = resolve(&e.unit) {
                    e.unit = id;
                }
            }
        }
    }
}

/// Whether `id` may name a resource: EGIL sends UUIDs; anything that fits in a path
/// segment without escaping, up to 128 characters, is taken.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:".contains(&b))
}

/// Reads a resource of `kind` from a request body. `path_id` is the id in the URL (a PUT);
/// without it the id is the body's `externalId` (EGIL uses the object's UUID as both), or
/// for the EGIL PUT without an id in the path the body's `id` or `externalId`.
pub fn read(kind: Kind, body: Value, path_id: Option<&str>) -> Result<Resource, Invalid> {
    let Value::Object(mut body) = body else {
        return Err(Invalid::Syntax("the body must be a JSON object".into()));
    };
    let schemas: Vec<String> = match body.get("schemas") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Invalid::Syntax("schemas must be a list of strings".into()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Invalid::Syntax("schemas must be a list of strings".into())),
        None => return Err(Invalid::Syntax("schemas is missing".into())),
    };
    let main = kind.schema();
    if !schemas.contains(&main) {
        return Err(Invalid::Syntax(format!(
            "schemas must list {main} for a {}",
            kind.name()
        )));
    }
    if let Some(unknown) = schemas
        .iter()
        .find(|s| **s != main && !(kind == Kind::User && s.as_str() == USER_EXTENSION))
    {
        return Err(Invalid::Syntax(format!(
            "unknown schema {unknown} for a {}",
            kind.name()
        )));
    }
    let external = opt_str(&body, "externalId")?;
    let given_id = opt_str(&body, "id")?;
    let id = match path_id {
        Some(p) => {
            if given_id.as_deref().is_some_and(|i| i != p) {
                return Err(Invalid::Value(format!(
                    "id {} in the body differs from {p} in the path",
                    given_id.unwrap_or_default()
                )));
            }
            p.to_string()
        }
        None => match (&given_id, &external) {
            (Some(i), _) => i.clone(),
            (None, Some(e)) => e.clone(),
            (None, None) => return Err(Invalid::Value("externalId is required".into())),
        },
    };
    let Some(external) = external else {
        return Err(Invalid::Value("externalId is required".into()));
    };
    if external != id {
        return Err(Invalid::Value(format!(
            "externalId {external} must equal the resource's id {id} (EGIL uses the object's \
             UUID as both)"
        )));
    }
    if !valid_id(&id) {
        return Err(Invalid::Value(format!(
            "the id {id:?} is not usable: up to 128 letters, digits and -._~:"
        )));
    }
    body.remove("id");
    body.remove("meta");
    let fact = fact(kind, &body)?;
    Ok(Resource {
        kind,
        id,
        body,
        fact,
    })
}

fn fact(kind: Kind, b: &Map<String, Value>) -> Result<Fact, Invalid> {
    Ok(match kind {
        Kind::Organisation | Kind::SchoolUnitGroup => Fact::Org {
            display_name: req_str(b, "displayName")?,
        },
        Kind::SchoolUnit => Fact::SchoolUnit {
            display_name: req_str(b, "displayName")?,
            code: req_str(b, "schoolUnitCode")?,
            organisation: opt_ref(b, "organisation")?,
            group: opt_ref(b, "schoolUnitGroup")?,
            school_types: str_list(b, "schoolTypes")?,
        },
        Kind::User => user(b)?,
        Kind::Employment => Fact::Employment {
            employed_at: req_ref(b, "employedAt")?,
            user: req_ref(b, "user")?,
            role: req_str(b, "employmentRole")?,
        },
        Kind::StudentGroup => Fact::StudentGroup {
            display_name: req_str(b, "displayName")?,
            owner: req_ref(b, "owner")?,
            group_type: opt_str(b, "studentGroupType")?,
            school_type: opt_str(b, "schoolType")?,
            members: ref_list(b, "studentMemberships")?,
        },
        Kind::Activity => {
            req_str(b, "displayName")?;
            let mut groups = ref_list(b, "groups")?;
            // Older clients send a single `group`.
            groups.extend(opt_ref(b, "group")?);
            Fact::Activity {
                owner: req_ref(b, "owner")?,
                groups,
                teachers: ref_list(b, "teachers")?,
                parents: ref_list(b, "parentActivity")?,
            }
        }
    })
}

fn user(b: &Map<String, Value>) -> Result<Fact, Invalid> {
    let user_name = req_str(b, "userName")?;
    req_str(b, "displayName")?;
    let Some(Value::Object(name)) = b.get("name") else {
        return Err(Invalid::Value("name is required".into()));
    };
    let given_name = req_str(name, "givenName").map_err(|_| within("name.givenName"))?;
    let family_name = req_str(name, "familyName").map_err(|_| within("name.familyName"))?;
    let mut emails = Vec::new();
    for e in objects(b, "emails")? {
        let value = req_str(e, "value").map_err(|_| within("emails.value"))?;
        emails.push((value, opt_str(e, "type")?));
    }
    let empty = Map::new();
    let ext = match b.get(USER_EXTENSION) {
        Some(Value::Object(x)) => x,
        Some(_) => {
            return Err(Invalid::Syntax(format!(
                "{USER_EXTENSION} must be an object"
            )));
        }
        None => &empty,
    };
    let mut enrolments = Vec::new();
    for e in objects(ext, "enrolments")? {
        let unit = reference(e).map_err(|_| within("enrolments.value"))?;
        let school_year = match e.get("schoolYear") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
            // Some templates render it as a string.
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(_) => return Err(Invalid::Value("enrolments.schoolYear: a number".into())),
        };
        enrolments.push(UserEnrolment {
            unit,
            school_year,
            school_type: opt_str(e, "schoolType")?,
        });
    }
    let mut relations = Vec::new();
    for r in objects(ext, "userRelations")? {
        relations.push(Relation {
            user: reference(r).map_err(|_| within("userRelations.value"))?,
            relation_type: req_str(r, "relationType")
                .map_err(|_| within("userRelations.relationType"))?,
        });
    }
    let security_marking = match ext.get("securityMarking") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(v)) => *v,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(_) => return Err(Invalid::Value("securityMarking: true or false".into())),
    };
    Ok(Fact::User {
        user_name,
        given_name,
        family_name,
        emails,
        enrolments,
        civic_no: opt_str(ext, "civicNo")?,
        security_marking,
        relations,
    })
}

fn within(attr: &str) -> Invalid {
    Invalid::Value(format!("{attr} is required"))
}

fn opt_str(b: &Map<String, Value>, key: &str) -> Result<Option<String>, Invalid> {
    match b.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(Invalid::Value(format!("{key} must be a string"))),
    }
}

fn req_str(b: &Map<String, Value>, key: &str) -> Result<String, Invalid> {
    opt_str(b, key)?.ok_or_else(|| Invalid::Value(format!("{key} is required")))
}

fn str_list(b: &Map<String, Value>, key: &str) -> Result<Vec<String>, Invalid> {
    match b.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Invalid::Value(format!("{key} must be a list of strings")))
            })
            .collect(),
        Some(_) => Err(Invalid::Value(format!("{key} must be a list of strings"))),
    }
}

fn objects<'a>(
    b: &'a Map<String, Value>,
    key: &str,
) -> Result<Vec<&'a Map<String, Value>>, Invalid> {
    match b.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_object()
                    .ok_or_else(|| Invalid::Value(format!("{key} must be a list of objects")))
            })
            .collect(),
        Some(_) => Err(Invalid::Value(format!("{key} must be a list of objects"))),
    }
}

/// A SCIM reference `{ "value": id, "$ref": "Endpoint/id" }`: its value.
fn reference(o: &Map<String, Value>) -> Result<String, Invalid> {
    req_str(o, "value")
}

fn opt_ref(b: &Map<String, Value>, key: &str) -> Result<Option<String>, Invalid> {
    match b.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => reference(o)
            .map(Some)
            .map_err(|_| Invalid::Value(format!("{key}.value is required"))),
        Some(_) => Err(Invalid::Value(format!(
            "{key} must be a reference {{\"value\": …, \"$ref\": …}}"
        ))),
    }
}

fn req_ref(b: &Map<String, Value>, key: &str) -> Result<String, Invalid> {
    opt_ref(b, key)?.ok_or_else(|| Invalid::Value(format!("{key} is required")))
}

fn ref_list(b: &Map<String, Value>, key: &str) -> Result<Vec<String>, Invalid> {
    objects(b, key)?
        .into_iter()
        .map(|o| reference(o).map_err(|_| Invalid::Value(format!("{key}.value is required"))))
        .collect()
}

/// The SS 12000 organisation a SchoolUnit, SchoolUnitGroup or Organisation stands for.
pub fn organisation(r: &Resource, now: i64) -> Option<ss::Organisation> {
    let base = |display_name: &str, kind: &str| ss::Organisation {
        id: r.id.clone(),
        display_name: display_name.to_string(),
        organisation_type: kind.to_string(),
        school_unit_code: None,
        organisation_code: None,
        organisation_number: None,
        parent: None,
        school_types: Vec::new(),
        start_date: None,
        end_date: None,
        modified: now,
    };
    match (&r.fact, r.kind) {
        (Fact::Org { display_name }, Kind::Organisation) => Some(base(display_name, "Huvudman")),
        (Fact::Org { display_name }, _) => Some(base(display_name, "Skola")),
        (
            Fact::SchoolUnit {
                display_name,
                code,
                organisation,
                group,
                school_types,
            },
            _,
        ) => Some(ss::Organisation {
            school_unit_code: Some(code.clone()),
            // The huvudman is found through the parent chain; a SchoolUnitGroup has none.
            parent: organisation.clone().or_else(|| group.clone()),
            school_types: school_types.clone(),
            ..base(display_name, "Skolenhet")
        }),
        _ => None,
    }
}

/// The SS 12000 person a User stands for.
pub fn person(r: &Resource, now: i64) -> Option<ss::Person> {
    let Fact::User {
        user_name,
        given_name,
        family_name,
        emails,
        enrolments,
        civic_no,
        security_marking,
        relations,
    } = &r.fact
    else {
        return None;
    };
    const KINDS: [&str; 4] = ["Privat", "Skola elev", "Skola personal", "Arbete övrigt"];
    Some(ss::Person {
        id: r.id.clone(),
        given_name: given_name.clone(),
        family_name: family_name.clone(),
        civic_no: civic_no.clone(),
        eppns: vec![user_name.clone()],
        external_identifiers: Vec::new(),
        // EGIL has a flag; SS 12000's milder marking is what it can say.
        security_marking: Some(
            if *security_marking {
                "Sekretessmarkering"
            } else {
                "Ingen"
            }
            .into(),
        ),
        person_status: None,
        emails: emails
            .iter()
            .map(|(value, kind)| ss::Email {
                value: value.clone(),
                // An EGIL type that is no SS 12000 kind is a work address.
                kind: kind
                    .as_deref()
                    .filter(|k| KINDS.contains(k))
                    .unwrap_or("Arbete övrigt")
                    .to_string(),
            })
            .collect(),
        enrolments: enrolments
            .iter()
            .map(|e| ss::Enrolment {
                enroled_at: e.unit.clone(),
                school_type: e.school_type.clone(),
                school_year: e.school_year,
                start_date: None,
                end_date: None,
                cancelled: false,
            })
            .collect(),
        responsibles: relations
            .iter()
            .map(|x| ss::Responsible {
                person: x.user.clone(),
                relation_type: Some(x.relation_type.clone()),
            })
            .collect(),
        modified: now,
    })
}

/// The SS 12000 group a StudentGroup stands for.
pub fn group(r: &Resource, now: i64) -> Option<ss::Group> {
    let Fact::StudentGroup {
        display_name,
        owner,
        group_type,
        school_type,
        members,
    } = &r.fact
    else {
        return None;
    };
    Some(ss::Group {
        id: r.id.clone(),
        display_name: display_name.clone(),
        group_type: group_type.clone().unwrap_or_else(|| "Undervisning".into()),
        school_type: school_type.clone(),
        organisation: owner.clone(),
        start_date: None,
        end_date: None,
        memberships: members
            .iter()
            .map(|m| ss::Membership {
                person: m.clone(),
                start_date: None,
                end_date: None,
            })
            .collect(),
        modified: now,
    })
}

/// The SS 12000 duty an Employment stands for, with an assignment to each group of the
/// `activities` that name it as a teacher.
pub fn duty<'a>(
    r: &Resource,
    activities: impl IntoIterator<Item = &'a Resource>,
    now: i64,
) -> Option<ss::Duty> {
    let Fact::Employment {
        employed_at,
        user,
        role,
    } = &r.fact
    else {
        return None;
    };
    let mut groups: Vec<&str> = Vec::new();
    for a in activities {
        if let Fact::Activity {
            groups: g,
            teachers,
            ..
        } = &a.fact
            && teachers.contains(&r.id)
        {
            groups.extend(g.iter().map(String::as_str));
        }
    }
    groups.sort_unstable();
    groups.dedup();
    Some(ss::Duty {
        id: r.id.clone(),
        person: Some(user.clone()),
        duty_at: employed_at.clone(),
        duty_role: role.clone(),
        start_date: None,
        end_date: None,
        assignment_roles: groups
            .into_iter()
            .map(|g| ss::AssignmentRole {
                group: g.to_string(),
                kind: ACTIVITY_ASSIGNMENT.into(),
                start_date: None,
                end_date: None,
            })
            .collect(),
        modified: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn student() -> Value {
        json!({
            "schemas": [USER_SCHEMA, USER_EXTENSION],
            "externalId": "cf21d41c-076c-4968-b3d9-ebba52cf86f5",
            "userName": "alva.l7a25@edu.gronkoping.se",
            "displayName": "Alva Lindqvist",
            "name": { "familyName": "Lindqvist", "givenName": "Alva" },
            "emails": [ { "value": "alva.lindqvist@elev.gronkoping.se" } ],
            USER_EXTENSION: {
                "enrolments": [
                    { "value": "957809cb-9934-4389-98d4-5060032485a0",
                      "$ref": "SchoolUnits/957809cb-9934-4389-98d4-5060032485a0",
                      "schoolYear": 7 }
                ],
                "civicNo": "201001012386",
                "userRelations": [ { "value": "g1", "relationType": "Vårdnadshavare" } ]
            }
        })
    }

    #[test]
    fn the_spec_pages_student_reads_and_maps_to_a_person() {
        let r = read(Kind::User, student(), None).unwrap();
        assert_eq!(r.id, "cf21d41c-076c-4968-b3d9-ebba52cf86f5");
        assert_eq!(
            r.unique_key().as_deref(),
            Some("alva.l7a25@edu.gronkoping.se")
        );
        let p = person(&r, 7).unwrap();
        assert_eq!(
            (p.given_name.as_str(), p.family_name.as_str()),
            ("Alva", "Lindqvist")
        );
        assert_eq!(p.eppns, ["alva.l7a25@edu.gronkoping.se"]);
        assert_eq!(p.civic_no.as_deref(), Some("201001012386"));
        assert_eq!(
            p.enrolments[0].enroled_at,
            "957809cb-9934-4389-98d4-5060032485a0"
        );
        assert_eq!(p.enrolments[0].school_year, Some(7));
        assert_eq!(p.responsibles[0].person, "g1");
        assert_eq!(p.security_marking.as_deref(), Some("Ingen"));
        assert_eq!(p.emails[0].kind, "Arbete övrigt");
        assert_eq!(
            r.refs(),
            [
                Ref {
                    kind: Kind::SchoolUnit,
                    id: "957809cb-9934-4389-98d4-5060032485a0".into()
                },
                Ref {
                    kind: Kind::User,
                    id: "g1".into()
                },
            ]
        );
    }

    #[test]
    fn missing_attributes_and_unknown_schemas_are_named() {
        let mut b = student();
        b["name"].as_object_mut().unwrap().remove("givenName");
        assert_eq!(
            read(Kind::User, b, None).unwrap_err(),
            Invalid::Value("name.givenName is required".into())
        );
        let mut b = student();
        b["schemas"] = json!([USER_SCHEMA, "urn:example:other"]);
        assert!(
            matches!(read(Kind::User, b, None), Err(Invalid::Syntax(m)) if m.contains("urn:example:other"))
        );
        let b =
            json!({"schemas": [Kind::SchoolUnit.schema()], "externalId": "u1", "displayName": "X"});
        assert_eq!(
            read(Kind::SchoolUnit, b, None).unwrap_err(),
            Invalid::Value("schoolUnitCode is required".into())
        );
        let b = json!({"schemas": [Kind::Organisation.schema()], "displayName": "X"});
        assert_eq!(
            read(Kind::Organisation, b, None).unwrap_err(),
            Invalid::Value("externalId is required".into())
        );
        assert!(matches!(
            read(Kind::Organisation, json!([1]), None),
            Err(Invalid::Syntax(_))
        ));
    }

    #[test]
    fn the_path_id_must_agree_with_the_body() {
        let b = json!({"schemas": [Kind::Organisation.schema()], "externalId": "o1", "displayName": "X"});
        assert!(read(Kind::Organisation, b.clone(), Some("o1")).is_ok());
        assert!(matches!(
            read(Kind::Organisation, b.clone(), Some("o2")),
            Err(Invalid::Value(_))
        ));
        let mut bad = b;
        bad["externalId"] = json!("a/b");
        assert!(
            matches!(read(Kind::Organisation, bad, None), Err(Invalid::Value(m)) if m.contains("not usable"))
        );
    }

    #[test]
    fn activities_give_their_teachers_duties_assignments() {
        let emp = read(
            Kind::Employment,
            json!({"schemas": [Kind::Employment.schema()], "externalId": "e1",
                   "employedAt": {"value": "su"}, "user": {"value": "t1"}, "employmentRole": "Lärare"}),
            None,
        )
        .unwrap();
        let act = read(
            Kind::Activity,
            json!({"schemas": [Kind::Activity.schema()], "externalId": "a1", "displayName": "Ma 7A",
                   "owner": {"value": "su"}, "groups": [{"value": "g7a"}], "group": {"value": "g7b"},
                   "teachers": [{"value": "e1", "$ref": "Employments/e1"}]}),
            None,
        )
        .unwrap();
        let d = duty(&emp, [&act], 1).unwrap();
        assert_eq!(d.person.as_deref(), Some("t1"));
        let groups: Vec<_> = d
            .assignment_roles
            .iter()
            .map(|a| a.group.as_str())
            .collect();
        assert_eq!(groups, ["g7a", "g7b"]);
        assert!(duty(&emp, [], 1).unwrap().assignment_roles.is_empty());
    }
}
