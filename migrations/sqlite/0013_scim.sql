-- EGIL SCIM push sources (issue 17). (Both dialects share this file's text.)

-- What each push source sent, as it sent it (a GET returns it), with the server's version
-- (the ETag). `unique_key` is a User's userName (lowercased) or a SchoolUnit's code: unique
-- per source and kind. `held_run`: the sync run that holds this resource's delete.
CREATE TABLE scim_resources (
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    unique_key TEXT,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    modified_at BIGINT NOT NULL,
    held_run BIGINT,
    PRIMARY KEY (source, kind, id)
);
CREATE UNIQUE INDEX scim_resources_unique ON scim_resources (source, kind, unique_key);
-- A resource of another source is refused by its id.
CREATE INDEX scim_resources_id ON scim_resources (kind, id);
CREATE INDEX scim_resources_held ON scim_resources (held_run) WHERE held_run IS NOT NULL;

-- Which resources each resource refers to: the check that a reference resolves, and the
-- way back (the Activities that name an Employment).
CREATE TABLE scim_refs (
    source TEXT NOT NULL,
    from_kind TEXT NOT NULL,
    from_id TEXT NOT NULL,
    to_kind TEXT NOT NULL,
    to_id TEXT NOT NULL,
    PRIMARY KEY (source, from_kind, from_id, to_kind, to_id)
);
CREATE INDEX scim_refs_to ON scim_refs (source, to_kind, to_id);
