#!/usr/bin/env python3
"""scim2-client (a SCIM 2.0 client we did not write) against Portvakt's EGIL SCIM server,
to check that the server answers like a SCIM service provider does.

    scim_client.py --base-url URL --school-unit-code CODE --user-name EPPN
                   [--token TOKEN | --token-file FILE] [--ca FILE] [--cert FILE --key FILE]
                   [--teacher-user-name EPPN] [--civic-no PN] [--keep]

    --base-url          the SCIM base URL, e.g. http://127.0.0.1:PORT/scim/v2 (loopback only)
    --token             the push source's bearer token; or --token-file, a file holding it;
                        or the environment variable PORTVAKT_SCIM_TOKEN (in that order)
    --ca                for an https base URL: the test CA (PEM), the only one trusted
    --cert, --key       a client certificate and its key (PEM), for mutual TLS
    --school-unit-code  the created SchoolUnit's schoolUnitCode
    --user-name         the student's userName (EPPN); the teacher's is --teacher-user-name,
                        by default "teacher-<8 hex>@" and the student's domain
    --civic-no          put this civicNo in the student's school extension
    --keep              stop before the deletes, leaving everything in place

The steps, with scim2-client's synchronous client on an httpx2 client (scim2-client 0.9
moved from httpx to httpx2, pydantic's fork of it; the two live side by side in the venv):

1. discover(): /ResourceTypes, /Schemas and /ServiceProviderConfig; the client builds its
   resource models from what the server publishes, and every request below is checked
   against them (and every answer read with them).
2. create, in EGIL's send order, each with a fresh UUID as externalId (EGIL uses the same
   UUID as externalId and as the id in the path; the server must make id = externalId):
   an Organisation, a SchoolUnit, the student User (enrolled at the unit, school year 7),
   a teacher User, the teacher's Employment at the unit ("Lärare"), a StudentGroup
   ("Klass", the student in it) and an Activity (the group and the employment).
3. replace (PUT, If-Match: the version it was created with) the student with a new
   familyName, read it back (GET) and check the name and that meta.version changed.
4. list Users a page at a time (startIndex/count) and check the counts.
5. unless --keep: delete everything in reverse order, and check that a GET of the deleted
   student is a SCIM error with status 404.

On success one JSON object goes to stdout and the exit code is 0:

    {"ids": {"organisation", "school_unit", "student", "teacher", "employment",
             "student_group", "activity"},
     "discovered": {"resource_types": [...], "schemas": [...], "etag": bool, "patch": bool,
                    "bulk": bool, "filter": bool, "sort": bool},
     "student": {"userName", "givenName", "familyName"},      (after the replace)
     "versions": {"created", "if_match", "replaced", "read"},  (the student's meta.version)
     "users": {"total", "page": {"startIndex", "itemsPerPage", "resources", "total"},
               "listed", "pages", "count"},
     "kept": bool, "deleted": ["Activities/<id>", ...], "gone": {"status", "scimType"}}

(`deleted` is [] and `gone` null with --keep.) On any failure the step, the error and the
SCIM error body the server sent, if any, go to stderr and the exit code is 1.
"""

import argparse
import inspect
import json
import os
import re
import ssl
import sys
import traceback
import uuid

try:
    import scim2_client
    from scim2_models import Context, Error, SearchRequest

    # The base classes of what the client raises: scim2-client's own, and the SCIM
    # errors the server answered (scim2-models' SCIMException); old releases (0.7)
    # called them SCIMClientError and SCIMResponseErrorObject.
    CLIENT_ERRORS = tuple(
        getattr(module, name)
        for module, name in (
            (scim2_client, "SCIMClientException"),
            (scim2_client, "SCIMClientError"),
            (scim2_client, "SCIMResponseErrorObject"),
            (__import__("scim2_models"), "SCIMException"),
        )
        if hasattr(module, name)
    )

    try:
        # scim2-client 0.8 and later.
        import httpx2 as http
        from scim2_client.engines.httpx2 import SyncSCIMClient
    except ImportError:
        # Up to 0.8 it drove httpx itself.
        import httpx as http
        from scim2_client.engines.httpx import SyncSCIMClient
except ImportError as e:
    sys.exit(f"{e}: run scripts/interop-setup.sh (the venv with scim2-client)")

SIS = "urn:scim:schemas:extension:sis:school:1.0:"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
TIMEOUT = 10
# Users are listed PAGE at a time, or more when that would take over MAX_PAGES pages.
PAGE = 2
MAX_PAGES = 20
LOOPBACK = re.compile(r"^https?://(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?/")


class Failed(Exception):
    """A check that did not hold."""


# What the script is doing, for the error message.
STEP = ["start"]


def step(name):
    STEP[0] = name


def check(cond, message):
    if not cond:
        raise Failed(message)


def ref(endpoint, id_):
    """An EGIL reference: {value: uuid, $ref: "<Endpoint>/<uuid>"}."""
    return {"value": id_, "$ref": f"{endpoint}/{id_}"}


def dump(resource):
    """A resource as the server sent it (SCIM names), for reading fields back."""
    return resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def version(resource):
    meta = getattr(resource, "meta", None)
    return getattr(meta, "version", None)


def http_client(args, token):
    """httpx2's (or httpx's) synchronous client on the SCIM base URL: the bearer token on
    every request, no proxy from the environment, and for https only the test CA."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verify = True
    if args.base_url.startswith("https://"):
        verify = ssl.create_default_context(cafile=args.ca)
        if args.cert:
            verify.load_cert_chain(args.cert, args.key)
    return http.Client(
        base_url=args.base_url,
        headers=headers,
        verify=verify,
        timeout=TIMEOUT,
        trust_env=False,
    )


def described(scim):
    """The discovered ServiceProviderConfig and ResourceTypes: recent scim2-client releases
    keep them in a ScimProvider, old ones (0.7) in attributes of their own."""
    provider = getattr(scim, "provider", None)
    if provider is not None:
        return provider.config, tuple(provider.resource_types)
    return scim.service_provider_config, tuple(scim.resource_types or ())


def query_kwargs(scim, start_index, count):
    """startIndex/count for a list query, under the parameter name this scim2-client
    release takes (query_parameters; search_request in old releases)."""
    req = SearchRequest(start_index=start_index, count=count)
    params = inspect.signature(scim.query).parameters
    name = "query_parameters" if "query_parameters" in params else "search_request"
    return {name: req}


class Run:
    def __init__(self, scim, args):
        self.scim = scim
        self.args = args
        self.models = {}
        self.created = []  # (resource type, endpoint, resource), in creation order
        self.out = {"ids": {}, "kept": args.keep, "deleted": [], "gone": None}

    def model(self, name):
        m = self.scim.get_resource_model(name)
        check(m is not None, f"the server published no resource type {name}")
        return m

    def discover(self):
        step("discover")
        self.scim.discover()
        spc, rts = described(self.scim)
        check(spc is not None, "no ServiceProviderConfig")
        self.endpoints = {str(rt.name): str(rt.endpoint).lstrip("/") for rt in rts}
        self.out["discovered"] = {
            "resource_types": sorted(str(rt.name) for rt in rts),
            "schemas": sorted(
                {str(rt.schema_) for rt in rts}
                | {str(e.schema_) for rt in rts for e in rt.schema_extensions or []}
            ),
            **{
                cap: bool(getattr(spc, cap) and getattr(spc, cap).supported)
                for cap in ("etag", "patch", "bulk", "filter", "sort")
            },
        }
        for name in ("Organisation", "SchoolUnit", "User", "Employment", "StudentGroup",
                     "Activity"):
            self.models[name] = self.model(name)

    def create(self, key, type_name, body):
        """POSTs an EGIL resource with a fresh UUID as externalId, checked by the client
        against the discovered model; the server must take the UUID as the id."""
        step(f"create {key}")
        model = self.models[type_name]
        external_id = str(uuid.uuid4())
        schemas = [CORE_USER] if type_name == "User" else [SIS + type_name]
        if type_name == "User" and SIS + "User" in body:
            schemas.append(SIS + "User")
        doc = {"schemas": schemas, "externalId": external_id, **body}
        resource = model.model_validate(doc, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        created = self.scim.create(resource)
        check(created.id == external_id,
              f"{type_name}: id {created.id!r} is not the externalId {external_id!r}")
        check(created.external_id == external_id,
              f"{type_name}: externalId came back as {created.external_id!r}")
        self.created.append((type_name, self.endpoints[type_name], created))
        self.out["ids"][key] = created.id
        return created

    def populate(self):
        a = self.args
        org = self.create("organisation", "Organisation",
                          {"displayName": "Portvakts interoptest"})
        unit = self.create("school_unit", "SchoolUnit", {
            "displayName": "Interoptestskolan",
            "schoolUnitCode": a.school_unit_code,
            "organisation": ref("Organisations", org.id),
            "schoolTypes": ["GR"],
        })
        extension = {"enrolments": [{**ref("SchoolUnits", unit.id), "schoolYear": 7}]}
        if a.civic_no:
            extension["civicNo"] = a.civic_no
        self.student = self.create("student", "User", {
            "userName": a.user_name,
            "name": {"familyName": "Lindqvist", "givenName": "Alva"},
            "displayName": "Alva Lindqvist",
            SIS + "User": extension,
        })
        got = dump(self.student)
        check(got.get("userName") == a.user_name, f"student userName: {got.get('userName')!r}")
        enrolments = (got.get(SIS + "User") or {}).get("enrolments") or []
        check([e.get("value") for e in enrolments] == [unit.id],
              f"student enrolments came back as {enrolments!r}")
        teacher = self.create("teacher", "User", {
            "userName": a.teacher_user_name,
            "name": {"familyName": "Sandberg", "givenName": "Erik"},
            "displayName": "Erik Sandberg",
        })
        employment = self.create("employment", "Employment", {
            "employedAt": ref("SchoolUnits", unit.id),
            "user": ref("Users", teacher.id),
            "employmentRole": "Lärare",
        })
        group = self.create("student_group", "StudentGroup", {
            "displayName": "7A",
            "owner": ref("SchoolUnits", unit.id),
            "studentGroupType": "Klass",
            "studentMemberships": [ref("Users", self.student.id)],
        })
        self.create("activity", "Activity", {
            "displayName": "Matematik 7A",
            "owner": ref("SchoolUnits", unit.id),
            "groups": [ref("StudentGroups", group.id)],
            "teachers": [ref("Employments", employment.id)],
        })

    def replace_student(self):
        step("replace student")
        created_version = version(self.student)
        check(created_version, "the created student has no meta.version (etag is supported)")
        doc = dump(self.student)
        doc["name"]["familyName"] = "Lindqvist Berg"
        doc["displayName"] = "Alva Lindqvist Berg"
        # The whole resource, id and meta included: the client sends If-Match from
        # meta.version and the id in the path.
        User = self.models["User"]
        replaced = self.scim.replace(User.model_validate(doc))
        step("read student")
        read = self.scim.query(User, self.student.id)
        got = dump(read)
        check(got["name"].get("familyName") == "Lindqvist Berg",
              f"the student's familyName is {got['name'].get('familyName')!r} after the PUT")
        check(got.get("displayName") == "Alva Lindqvist Berg",
              f"the student's displayName is {got.get('displayName')!r} after the PUT")
        check(version(read) and version(read) != created_version,
              f"meta.version did not change: {created_version!r} -> {version(read)!r}")
        self.student = read
        self.out["student"] = {
            "userName": got.get("userName"),
            "givenName": got["name"].get("givenName"),
            "familyName": got["name"].get("familyName"),
        }
        self.out["versions"] = {
            "created": created_version,
            # What the client sent as If-Match (only when the server declares etag).
            "if_match": created_version if self.out["discovered"]["etag"] else None,
            "replaced": version(replaced),
            "read": version(read),
        }

    def list_users(self):
        step("list users")
        User = self.models["User"]
        first = self.scim.query(User, **query_kwargs(self.scim, 1, 1))
        page = {
            "startIndex": first.start_index,
            "itemsPerPage": first.items_per_page,
            "resources": len(first.resources or []),
            "total": first.total_results,
        }
        total = first.total_results
        check(isinstance(total, int) and total >= 2,
              f"totalResults {total!r} with two users created")
        check(page["resources"] == 1, f"count=1 gave {page['resources']} resources")
        check(first.start_index in (None, 1), f"startIndex {first.start_index!r}, not 1")
        # Every page until totalResults are seen; each page brings at least one user, so
        # this ends.
        size = max(PAGE, -(-total // MAX_PAGES))
        ids, start, pages = [], 1, 0
        while start <= total:
            step(f"list users from {start}")
            r = self.scim.query(User, **query_kwargs(self.scim, start, size))
            got = r.resources or []
            check(r.total_results == total,
                  f"totalResults changed from {total} to {r.total_results} between pages")
            check(0 < len(got) <= size, f"startIndex={start} count={size}: {len(got)} users")
            ids += [u.id for u in got]
            start += len(got)
            pages += 1
        check(len(ids) == total, f"{len(ids)} users listed, totalResults {total}")
        check(len(set(ids)) == len(ids), "a user was listed twice")
        for key in ("student", "teacher"):
            check(self.out["ids"][key] in ids, f"the {key} is not in the list")
        self.out["users"] = {"total": total, "page": page, "listed": len(ids), "pages": pages,
                             "count": size}

    def delete_all(self):
        for type_name, endpoint, resource in reversed(self.created):
            step(f"delete {endpoint}/{resource.id}")
            # By the model and the id alone: no If-Match.
            self.scim.delete(self.models[type_name], resource.id)
            self.out["deleted"].append(f"{endpoint}/{resource.id}")
        step("read deleted student")
        r = self.scim.query(self.models["User"], self.student.id, raise_scim_errors=False)
        check(isinstance(r, Error), f"the deleted student is still there: {r!r}")
        self.out["gone"] = {"status": r.status, "scimType": r.scim_type}
        check(r.status == 404, f"a GET of the deleted student answered {r.status}, not 404")


def scim_error_body(e):
    """The SCIM error the server sent, or the raw body of the response, if any."""
    error = getattr(e, "error", None)
    if error is not None:
        return json.dumps(error.model_dump(), ensure_ascii=False)
    source = getattr(e, "source", None)
    text = getattr(source, "text", None)
    if text:
        return f"HTTP {getattr(source, 'status_code', '?')}: {text}"
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", required=True)
    p.add_argument("--token")
    p.add_argument("--token-file")
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--school-unit-code", required=True)
    p.add_argument("--user-name", required=True)
    p.add_argument("--teacher-user-name")
    p.add_argument("--civic-no")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    if not LOOPBACK.match(args.base_url):
        p.error(f"only loopback http(s) URLs: {args.base_url}")
    if args.base_url.startswith("https://") and not args.ca:
        p.error("an https base URL needs --ca")
    if bool(args.cert) != bool(args.key):
        p.error("--cert and --key go together")
    token = args.token
    if token is None and args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.read().strip()
    if token is None:
        token = os.environ.get("PORTVAKT_SCIM_TOKEN")
    if not token and not args.cert:
        p.error("no bearer token: --token, --token-file or PORTVAKT_SCIM_TOKEN")
    if not args.teacher_user_name:
        domain = args.user_name.rpartition("@")[2] or "example.se"
        args.teacher_user_name = f"teacher-{uuid.uuid4().hex[:8]}@{domain}"

    try:
        with http_client(args, token) as client:
            run = Run(SyncSCIMClient(client), args)
            run.discover()
            run.populate()
            run.replace_student()
            run.list_users()
            if not args.keep:
                run.delete_all()
    except Failed as e:
        print(f"scim_client.py: {STEP[0]}: {e}", file=sys.stderr)
        sys.exit(1)
    except CLIENT_ERRORS as e:
        body = scim_error_body(e)
        notes = "".join(f"\n{n}" for n in getattr(e, "__notes__", []))
        print(f"scim_client.py: {STEP[0]}: {type(e).__name__}: {e}{notes}", file=sys.stderr)
        if body:
            print(f"scim_client.py: the server's answer: {body}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 (anything else is a failure too, with its trace)
        traceback.print_exc()
        print(f"scim_client.py: {STEP[0]}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(run.out, ensure_ascii=False, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
