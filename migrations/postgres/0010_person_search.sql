-- Search keys without diacritics: persons.search_name is now directory::ident::fold of
-- "given family" (casefolded, å ä ö é ü æ ø … folded to a a o e u ae o), so "asa oberg"
-- finds Åsa Öberg. Existing keys are refolded here for the letters of Nordic names (the
-- SQL has no general decomposition); a key that still holds a letter outside ASCII loses
-- its sync_hash so the next sync run rewrites it with the full table in Rust.
UPDATE persons SET search_name = lower(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(search_name, 'å', 'a'), 'ä', 'a'), 'ö', 'o'), 'é', 'e'), 'è', 'e'), 'ü', 'u'), 'æ', 'ae'), 'ø', 'o'), 'á', 'a'), 'à', 'a'), 'Å', 'a'), 'Ä', 'a'), 'Ö', 'o'), 'É', 'e'), 'È', 'e'), 'Ü', 'u'), 'Æ', 'ae'), 'Ø', 'o'));
UPDATE persons SET sync_hash = NULL WHERE search_name ~ '[^ -~]';
