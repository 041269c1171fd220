-- A grant is bound to the signing peer (decisions.md, Authorisation): `via` lists the peers
-- allowed to relay calls for the grant's people besides their home host, as normalised
-- wwwroots separated by one space ('*' = any peer). Wwwroots never hold spaces, and the list is
-- always read and replaced whole with its grant, so one column keeps the grant one row.
-- Grants made before this migration get the empty list: home host only.
ALTER TABLE grants ADD COLUMN via TEXT NOT NULL DEFAULT '';
